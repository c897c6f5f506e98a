"""ROS image messages to RGB: encodings, row padding, and refused bad input."""

from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from lam_ros.recording.images import ImageDecodeError, compressed_to_rgb, image_to_rgb, msg_to_rgb
from _recording_helpers import frame_image, make_compressed_msg, make_image_msg

TS = get_typestore(Stores.ROS2_HUMBLE)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
@pytest.mark.parametrize("pad", [0, 5])
def test_color_encodings_with_and_without_padding(encoding, pad):
    img = np.random.default_rng(1).integers(0, 255, (6, 7, 3), dtype=np.uint8)
    out = image_to_rgb(make_image_msg(TS, img, 1.0, encoding, pad=pad))
    assert out.shape == (6, 7, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, img)


def test_mono8_becomes_three_equal_channels():
    img = frame_image(0, 3, 4, 5)
    out = image_to_rgb(make_image_msg(TS, img, 1.0, "mono8", pad=3))
    assert out.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], img[..., 0])


def test_last_row_padding_may_be_missing():
    img = frame_image(1, 2, 4, 5)
    msg = make_image_msg(TS, img, 1.0, "rgb8", pad=4)
    msg = SimpleNamespace(encoding="rgb8", height=4, width=5, step=19, data=np.asarray(msg.data)[:-4])
    np.testing.assert_array_equal(image_to_rgb(msg), img)


def raw(**kw):
    base = dict(encoding="rgb8", height=4, width=5, step=15, data=np.zeros(60, np.uint8))
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("kw, pattern", [
    (dict(step=14), r"step=14 is smaller than width x channels = 5 x 3 = 15"),
    (dict(data=np.zeros(40, np.uint8)), r"truncated"),
    (dict(data=np.zeros(80, np.uint8)), r"more than step x height"),
    (dict(encoding="yuv422"), r"unknown image encoding 'yuv422'"),
    (dict(encoding="16UC1"), r"depth"),
    (dict(encoding="32FC1"), r"depth"),
    (dict(height=0), r"height=0"),
])
def test_bad_raw_images_are_refused(kw, pattern):
    with pytest.raises(ImageDecodeError, match=pattern):
        image_to_rgb(raw(**kw), topic="/cam/image_raw")


def test_error_names_topic():
    with pytest.raises(ImageDecodeError, match="/wrist/image_raw"):
        image_to_rgb(raw(step=3), topic="/wrist/image_raw")


def test_compressed_png_exact_and_jpeg_close():
    img = frame_image(2, 5, 16, 16)
    np.testing.assert_array_equal(msg_to_rgb(make_compressed_msg(TS, img, 1.0, "png")), img)
    jpg = compressed_to_rgb(make_compressed_msg(TS, img, 1.0, "jpeg"))
    assert np.abs(jpg.astype(int) - img.astype(int)).mean() < 4


def test_compressed_truncated_and_unknown_format_refused():
    msg = make_compressed_msg(TS, frame_image(0, 0, 16, 16), 1.0, "png")
    with pytest.raises(ImageDecodeError, match="could not be decoded"):
        compressed_to_rgb(SimpleNamespace(format="png", data=np.asarray(msg.data)[:20]))
    with pytest.raises(ImageDecodeError, match="unknown compressed image format 'tiff'"):
        compressed_to_rgb(SimpleNamespace(format="tiff", data=np.asarray(msg.data)))
    with pytest.raises(ImageDecodeError, match="depth"):
        compressed_to_rgb(SimpleNamespace(format="16UC1; compressedDepth png", data=np.asarray(msg.data)))
