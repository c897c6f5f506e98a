"""The rclpy double itself behaves like rclpy where the nodes depend on it."""

import array

import numpy as np
import pytest

import rclpy_double


def test_messages_check_types_like_rclpy(monkeypatch):
    rclpy_double.install(monkeypatch)
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import Float32MultiArray

    m = Float32MultiArray()
    with pytest.raises(AssertionError):
        m.data = np.zeros(3, np.float32)  # rclpy rejects NumPy arrays for float32[]
    m.data = array.array("f", [1.0, 2.0])
    p = PoseStamped()
    with pytest.raises(AssertionError):
        p.pose.position.x = np.float32(1.0)  # not a Python float
    with pytest.raises(AssertionError):
        p.header.stamp.sec = 1.5
    p.pose.position.x = np.float64(1.0)  # a float subclass: accepted, as in rclpy


def test_qos_mismatch_is_silent_like_dds(monkeypatch):
    ros = rclpy_double.install(monkeypatch)
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from std_msgs.msg import String

    got = []
    node = Node("n")
    node.create_subscription(String, "t", got.append, QoSProfile(depth=10))
    pub = node.create_publisher(String, "t", qos_profile_sensor_data)
    pub.publish(String(data="x"))
    assert got == [] and pub.get_subscription_count() == 0
    assert ros.deliver("/t", String(data="y")) == 1 and got[0].data == "y"
