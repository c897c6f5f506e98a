"""latent_action_node against the rclpy double: sync over cameras, frame gap, stamps, diagnostics.

Why the double: these tests feed hand-crafted stamps (jitter, drops, a clock that jumps) one
message at a time and check each published latent action, which a real graph's wall-clock
delivery cannot reproduce deterministically. The node on real rclpy + Fast DDS, as a separate
process with a real LAM checkpoint, is covered by tests/test_ros_graph.py."""

import numpy as np
import pytest

import rclpy_double


class FakeLAM:
    """Same infer() contract as lam_ros.latent_actions: codes (B, n) int64, embeddings (B, n, dim) float32."""

    def __init__(self):
        self.calls = []

    def infer(self, frames_t, frames_tk):
        self.calls.append((frames_t, frames_tk))
        b = next(iter(frames_t.values())).shape[0]
        # encode the brightness difference so the test can see which frames were paired
        diff = float(frames_tk["third_person"].mean() - frames_t["third_person"].mean())
        return np.full((b, 4), 3, np.int64), np.full((b, 4, 8), diff, np.float32)


@pytest.fixture
def ros(monkeypatch):
    return rclpy_double.install(monkeypatch)


def send(ros, t, value, cams=("third_person", "side"), jitter=0.005):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from lam_ros.ros_conversions import fill_image

    for i, cam in enumerate(cams):
        img = np.full((6, 6, 3), value, np.uint8)
        ros.deliver(f"/{cam}/image_raw", fill_image(Image(), img, t + i * jitter, cam), qos=qos_profile_sensor_data)


def test_publishes_codes_and_embeddings_with_pair_stamp(ros):
    from lam_ros.nodes.latent_action_node import LatentActionNode
    from lam_ros.ros_conversions import multiarray_to_numpy

    lam = FakeLAM()
    node = LatentActionNode(model=lam)
    from rclpy.qos import ReliabilityPolicy

    assert node.subscriptions["/side/image_raw"].qos.reliability == ReliabilityPolicy.BEST_EFFORT
    for k in range(8):  # 5 Hz, frame gap 0.6 s = 3 sets
        send(ros, 100.0 + 0.2 * k, 10 * k)
    codes_msgs = node.publishers["/latent_actions/codes"].msgs
    emb_msgs = node.publishers["/latent_actions/embeddings"].msgs
    assert len(codes_msgs) == len(emb_msgs) == 5  # sets 3..7 have a partner 0.6 s earlier
    codes, stamp = multiarray_to_numpy(codes_msgs[0], np.int64)
    assert codes.tolist() == [3, 3, 3, 3]
    emb, stamp_e = multiarray_to_numpy(emb_msgs[0], np.float32)
    assert emb.shape == (4, 8)
    assert stamp == stamp_e == pytest.approx(100.6 + 0.0025, abs=1e-6)  # mean stamp of the later set
    assert emb[0, 0] == pytest.approx(30.0)  # paired with the set 3 frames earlier
    assert [d.label for d in emb_msgs[0].layout.dim][1:] == ["token", "dim"]


def test_unsynchronised_cameras_produce_nothing_and_show_in_diagnostics(ros):
    from lam_ros.nodes.latent_action_node import LatentActionNode

    node = LatentActionNode(model=FakeLAM())
    for k in range(6):
        send(ros, 100.0 + 0.2 * k, k, jitter=0.1)  # 100 ms apart > slop 20 ms
    assert node.publishers["/latent_actions/codes"].msgs == []
    node.timers[0].fire()
    [diag] = node.publishers["/diagnostics"].msgs
    values = {kv.key: kv.value for kv in diag.status[0].values}
    assert diag.status[0].level == b"\x01"
    assert int(values["unmatched_frames.third_person"]) > 0 and "rate_hz" in values


def test_needs_checkpoint_without_injected_model(ros):
    from lam_ros.nodes.latent_action_node import LatentActionNode

    with pytest.raises(ValueError, match="checkpoint"):
        LatentActionNode()
