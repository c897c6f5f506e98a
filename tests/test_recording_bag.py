"""rosbag2 (sqlite3 and mcap) to LeRobot: round trip per camera, the stored
action, the report, and bad bags refused with clear errors."""

import json

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from lam_ros.recording.bag import BagError, BagOptions, bags_to_lerobot
from lam_ros.recording.images import ImageDecodeError
from lam_ros.recording.sync import CameraTimeoutError
from lam_ros.recording.writer import load_dataset
from _recording_helpers import frame_image, make_image_msg, write_bag

CAMS = ["/cam_a/image_raw", "/cam_b/image_raw"]


def opts(**kw):
    base = dict(cameras=CAMS, state_topic="/joint_states", action_topic="/cmd", fps=10, task="pick the carrot")
    base.update(kw)
    return BagOptions(**base)


def check_frames(ds, n, cams=("cam_a", "cam_b"), episode_offset=0):
    for k in range(n):
        item = ds[episode_offset + k]
        for i, cam in enumerate(cams):
            got = (item[f"observation.images.{cam}"].numpy().transpose(1, 2, 0) * 255).round()
            want = frame_image(i, k).astype(np.float64)
            assert np.abs(got - want).mean() < 6, (cam, k)  # video compression aside
        np.testing.assert_allclose(item["observation.state"].numpy(), [k, -k])
        np.testing.assert_allclose(item["action"].numpy(), [k + 0.5, 1.0])  # the command sent after frame k
        assert item["task"] == "pick the carrot"


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_round_trip_two_bags_two_episodes(tmp_path, storage):
    write_bag(tmp_path / "bags" / "ep0", storage=storage, encodings={CAMS[1]: "bgr8"})
    write_bag(tmp_path / "bags" / "ep1", storage=storage, compressed=(CAMS[1],))
    bags_to_lerobot([tmp_path / "bags"], tmp_path / "ds", opts(), robot_type="widowx", progress=False)
    ds = load_dataset(tmp_path / "ds")
    assert ds.num_episodes == 2 and len(ds) == 24
    assert ds.meta.robot_type == "widowx"
    check_frames(ds, 12)
    check_frames(ds, 12, episode_offset=12)
    item = ds[3]
    assert item["sync.capture_time"].shape == (2,) and item["sync.skew"].item() < 0.02
    assert abs(item["sync.capture_time"][0].item() - 100.3) < 0.01
    d = json.loads((tmp_path / "ds" / "recording_report.json").read_text())
    assert d["episodes"] == 2 and d["frames"] == 24 and d["dropped_frames"] == {"cam_a": 0, "cam_b": 0}
    assert (tmp_path / "ds" / "recording_report.md").is_file()


def test_dropped_frame_counted_and_held(tmp_path):
    write_bag(tmp_path / "b", drop={CAMS[1]: {5}})
    bags_to_lerobot([tmp_path / "b"], tmp_path / "ds", opts(), progress=False)
    ds = load_dataset(tmp_path / "ds")
    assert len(ds) == 12
    assert ds[5]["sync.held"].item() == 1.0 and ds[4]["sync.held"].item() == 0.0
    d = json.loads((tmp_path / "ds" / "recording_report.json").read_text())
    assert d["dropped_frames"] == {"cam_a": 1, "cam_b": 0} and d["held_frames"] == 1
    assert any("repeated" in w for w in d["warnings"])


def test_without_action_topic_action_is_next_state(tmp_path):
    write_bag(tmp_path / "b", with_action=False, n=6)
    bags_to_lerobot([tmp_path / "b"], tmp_path / "ds", opts(action_topic=None), progress=False)
    ds = load_dataset(tmp_path / "ds")
    np.testing.assert_allclose(ds[2]["action"].numpy(), [3, -3])
    np.testing.assert_allclose(ds[5]["action"].numpy(), [5, -5])  # last frame holds its own state


def test_missing_topic_names_it_and_lists_topics(tmp_path):
    write_bag(tmp_path / "b", n=3)
    with pytest.raises(BagError, match=r"no topic '/cam_c/image_raw'.*/cam_a/image_raw"):
        bags_to_lerobot([tmp_path / "b"], tmp_path / "ds", opts(cameras=[CAMS[0], "/cam_c/image_raw"]), progress=False)


def test_stalled_camera_raises(tmp_path):
    write_bag(tmp_path / "b", n=30, drop={CAMS[1]: set(range(8, 30))})
    with pytest.raises(CameraTimeoutError, match="cam_b"):
        bags_to_lerobot([tmp_path / "b"], tmp_path / "ds", opts(timeout=0.5), progress=False)


def bad_image_bag(tmp_path):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    bad = make_image_msg(ts, frame_image(1, 4), 100.4, "rgb8")
    bad.data = np.asarray(bad.data)[:100]  # truncated
    return write_bag(tmp_path / "b", drop={CAMS[1]: {4}}, extra=[(CAMS[1], "sensor_msgs/msg/Image", 100.4, bad)])


def test_truncated_image_is_an_error_by_default(tmp_path):
    bad_image_bag(tmp_path)
    with pytest.raises(ImageDecodeError, match=r"/cam_b/image_raw.*truncated"):
        bags_to_lerobot([tmp_path / "b"], tmp_path / "ds", opts(), progress=False)


def test_truncated_image_skipped_and_counted_when_asked(tmp_path):
    bad_image_bag(tmp_path)
    bags_to_lerobot([tmp_path / "b"], tmp_path / "ds", opts(bad_images="skip"), progress=False)
    d = json.loads((tmp_path / "ds" / "recording_report.json").read_text())
    assert d["dropped_frames"]["cam_b"] == 1 and d["held_frames"] == 1
    assert any("truncated" in w for w in d["warnings"])


def test_depth_camera_refused(tmp_path):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    depth = make_image_msg(ts, frame_image(0, 0), 100.0, "rgb8")
    depth.encoding, depth.step, depth.data = "16UC1", 64, np.zeros(32 * 64, np.uint8)
    write_bag(tmp_path / "b", n=3, extra=[("/depth/image_raw", "sensor_msgs/msg/Image", 100.0, depth)])
    with pytest.raises(ImageDecodeError, match="depth"):
        bags_to_lerobot([tmp_path / "b"], tmp_path / "ds", opts(cameras=[CAMS[0], "/depth/image_raw"]), progress=False)


def test_resume_appends_and_refuses_without_flag(tmp_path):
    write_bag(tmp_path / "b0", n=5)
    write_bag(tmp_path / "b1", n=4)
    bags_to_lerobot([tmp_path / "b0"], tmp_path / "ds", opts(), progress=False)
    with pytest.raises(ValueError, match="--resume"):
        bags_to_lerobot([tmp_path / "b1"], tmp_path / "ds", opts(), progress=False)
    bags_to_lerobot([tmp_path / "b1"], tmp_path / "ds", opts(), resume=True, progress=False)
    ds = load_dataset(tmp_path / "ds")
    assert ds.num_episodes == 2 and len(ds) == 9
    check_frames(ds, 4, episode_offset=5)
    assert json.loads((tmp_path / "ds" / "recording_report.json").read_text())["episodes"] == 2


def test_cli_modules_bag2lerobot_and_recover(tmp_path, capsys):
    import argparse

    from lam_ros.commands import bag2lerobot, recover as recover_cmd

    write_bag(tmp_path / "b", n=4, storage="mcap")
    p = argparse.ArgumentParser()
    bag2lerobot.configure(p)
    args = p.parse_args([str(tmp_path / "b"), "-o", str(tmp_path / "ds"), "--cameras", ",".join(CAMS),
                         "--state-topic", "/joint_states", "--action-topic", "/cmd", "--fps", "10",
                         "--task", "pick the carrot", "--robot-type", "piper"])
    assert bag2lerobot.run(args) == 0
    assert "wrote 1 episode(s), 4 frames" in capsys.readouterr().out
    p = argparse.ArgumentParser()
    recover_cmd.configure(p)
    assert recover_cmd.run(p.parse_args([str(tmp_path / "ds")])) == 0
    assert "1 committed episode(s) kept" in capsys.readouterr().out
    p = argparse.ArgumentParser()
    bag2lerobot.configure(p)
    with pytest.raises(ValueError, match="--camera-names has 1 names for 2"):
        bag2lerobot.run(p.parse_args([str(tmp_path / "b"), "-o", str(tmp_path / "x"), "--cameras", ",".join(CAMS),
                                      "--camera-names", "one", "--state-topic", "/s", "--fps", "10", "--task", "t"]))
