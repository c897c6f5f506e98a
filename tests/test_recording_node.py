"""recorder_node (rclpy double) driving the real LiveRecorder: topics in, a readable LeRobot dataset out.

Why the double: exact, repeatable message timing for the sync checks; the same recording over
real rclpy + Fast DDS between processes is in tests/test_ros_graph.py."""

import numpy as np
import pytest

import rclpy_double
from _recording_helpers import frame_image


@pytest.fixture
def ros(monkeypatch):
    return rclpy_double.install(monkeypatch)


def test_node_records_a_readable_episode(ros, tmp_path):
    from geometry_msgs.msg import PoseStamped
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32

    from lam_ros.nodes.recorder_node import RecorderNode
    from lam_ros.recording.writer import load_dataset
    from lam_ros.ros_conversions import fill_image, fill_pose_stamped

    out = tmp_path / "ds"
    node = RecorderNode(parameter_overrides=[
        Parameter("output_dir", value=str(out)), Parameter("cameras", value="side,wrist"),
        Parameter("fps", value=5.0), Parameter("task", value="put carrot on plate"),
    ])
    assert node.services["/recorder_node/start_episode"].call().success
    for k in range(8):
        t = 20.0 + k / 5.0
        ros.deliver("/ee_pose", fill_pose_stamped(PoseStamped(), [0.3, 0, 0.2 + k * 0.01, 0, 0, 0], t - 0.01))
        for i, cam in enumerate(("side", "wrist")):
            img = fill_image(Image(), frame_image(i, k), t + 0.002 * i, cam)
            ros.deliver(f"/{cam}/image_raw", img, qos=qos_profile_sensor_data)
        ros.deliver("/gripper_command", Float32(data=0.0))
        ros.deliver("/ee_command", fill_pose_stamped(PoseStamped(), [0.31, 0, 0.2 + k * 0.01, 0, 0, 0], t + 0.05))
    resp = node.services["/recorder_node/stop_episode"].call()
    assert resp.success, resp.message
    node.destroy_node()
    ds = load_dataset(out)
    assert ds.num_episodes == 1 and len(ds) == 8 and ds.meta.robot_type == "widowx"
    item = ds[3]
    np.testing.assert_allclose(item["observation.state"].numpy()[:3], [0.3, 0, 0.23], atol=1e-5)
    np.testing.assert_allclose(item["action"].numpy(), [0.31, 0, 0.23, 0, 0, 0, 0.0], atol=1e-5)
    got = item["observation.images.wrist"].numpy().transpose(1, 2, 0) * 255
    assert np.abs(got - frame_image(1, 3)).mean() < 6
    assert item["task"] == "put carrot on plate"
