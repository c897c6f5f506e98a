"""The ROS-free core of the live recorder node: start / stop / discard, the
stored action is the command sent, a stalled camera ends the episode early."""

import json

import numpy as np
import pytest

from lam_ros.recording.live import LiveRecorder
from lam_ros.recording.writer import RecordingError, load_dataset
from _recording_helpers import frame_image

CAMS = ["front", "wrist"]


def feed(rec, k0, k1, fps=10.0, start=50.0, skip=()):
    """Frames k0..k1-1 from both cameras with jitter, joint states and the (clamped) commands sent."""
    rng = np.random.default_rng(k0)
    for k in range(k0, k1):
        t = start + k / fps
        rec.add_state(t - 0.01, [k, -k])
        for i, cam in enumerate(CAMS):
            if (cam, k) not in skip:
                rec.add_image(cam, t + rng.uniform(-0.003, 0.003), frame_image(i, k))
        rec.add_action(t + 0.03, [min(k + 0.5, 3.0), 1.0])  # the driver clamps the command at 3.0


def test_start_stop_discard_round_trip(tmp_path):
    rec = LiveRecorder(tmp_path / "ds", CAMS, fps=10, task="stack the cube", state_names=["a", "b"],
                       action_names=["x", "g"], robot_type="piper")
    feed(rec, 0, 2)  # before start: nothing recorded
    rec.start_episode()
    feed(rec, 2, 10)
    assert rec.stop_episode() == 0
    rec.start_episode()
    feed(rec, 10, 15)
    rec.discard_episode()
    rec.start_episode(task="second task")
    feed(rec, 15, 22)
    assert rec.stop_episode() == 1
    rec.close()
    ds = load_dataset(tmp_path / "ds")
    assert ds.num_episodes == 2 and ds.meta.robot_type == "piper"
    lens = [ds.meta.episodes[i]["length"] for i in range(2)]
    assert lens == [8, 7]
    first = ds[0]
    np.testing.assert_allclose(first["observation.state"].numpy(), [2, -2])
    np.testing.assert_allclose(first["action"].numpy(), [2.5, 1.0])
    np.testing.assert_allclose(ds[3]["action"].numpy(), [3.0, 1.0])  # clamped command stored, not k + 0.5
    got = ds[0]["observation.images.wrist"].numpy().transpose(1, 2, 0) * 255
    assert np.abs(got - frame_image(1, 2)).mean() < 6
    assert ds[8]["task"] == "second task"
    np.testing.assert_allclose(ds[8]["observation.state"].numpy(), [15, -15])
    report = json.loads((tmp_path / "ds" / "recording_report.json").read_text())
    assert report["episodes"] == 2 and report["frames"] == 15


def test_stalled_camera_ends_episode_early_and_keeps_frames(tmp_path):
    rec = LiveRecorder(tmp_path / "ds", CAMS, fps=10, task="t", state_names=["a", "b"], action_names=["x", "g"],
                       timeout=0.5)
    feed(rec, 0, 1)
    rec.start()
    feed(rec, 1, 30, skip={("wrist", k) for k in range(8, 30)})
    rec.check_timeout()
    assert not rec.recording and "wrist" in rec.status()["last_error"]
    rec.close()
    ds = load_dataset(tmp_path / "ds")
    assert ds.num_episodes == 1 and len(ds) == 7
    report = json.loads((tmp_path / "ds" / "recording_report.json").read_text())
    assert any("ended early" in w and "wrist" in w for w in report["warnings"])


def test_episode_without_images_names_the_silent_camera(tmp_path):
    rec = LiveRecorder(tmp_path / "ds", CAMS, fps=10, task="t", state_names=["a", "b"], action_names=["x", "g"])
    rec.start_episode()
    for k in range(5):  # only the front camera arrives (e.g. the wrist camera's QoS does not match)
        rec.add_image("front", 1.0 + k / 10, frame_image(0, k))
    with pytest.raises(RecordingError, match=r"no image from camera\(s\) \['wrist'\].*BEST_EFFORT"):
        rec.stop_episode()
    rec.close()
    with pytest.raises(RecordingError, match="fps must be a positive whole number"):
        LiveRecorder(tmp_path / "x", CAMS, fps=7.5)
