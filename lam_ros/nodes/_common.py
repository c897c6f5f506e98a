"""Helpers shared by the node shells: parameters with descriptions, QoS, camera subscriptions, main()."""

from __future__ import annotations

import logging
import sys

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

CAMERA_QOS_CHOICES = ("sensor_data", "reliable")


def declare(node, name: str, default, description: str):
    """Declare a parameter with a description (shown by `ros2 param describe`) and return its value."""
    return node.declare_parameter(name, default, ParameterDescriptor(description=description)).value


def csv_list(value: str) -> list[str]:
    """Comma-separated parameter -> list (string-array parameters are awkward to pass from launch files)."""
    return [v.strip() for v in str(value).split(",") if v.strip()]


def float_list(value: str, n: int, name: str) -> list[float] | None:
    items = csv_list(value)
    if not items:
        return None
    try:
        out = [float(v) for v in items]
    except ValueError:
        raise ValueError(f"parameter {name} must be {n} comma-separated numbers, got {value!r}") from None
    if len(out) != n:
        raise ValueError(f"parameter {name} must have {n} values, got {len(out)}: {value!r}")
    return out


def camera_qos(kind: str) -> QoSProfile:
    """sensor_data (BEST_EFFORT, depth 5): matches camera drivers; a RELIABLE
    subscriber would silently never match a BEST_EFFORT camera publisher."""
    if kind == "sensor_data":
        return qos_profile_sensor_data
    if kind == "reliable":
        return QoSProfile(
            depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
            durability=DurabilityPolicy.VOLATILE,
        )
    raise ValueError(f"camera_qos must be one of {CAMERA_QOS_CHOICES}, got {kind!r}")


def camera_topics(cameras: list[str], topics: str, transport: str) -> list[str]:
    """Topic per camera: explicit comma list, else ``<camera>/image_raw`` (+ ``/compressed``)."""
    explicit = csv_list(topics)
    if explicit and len(explicit) != len(cameras):
        raise ValueError(f"camera_topics has {len(explicit)} entries for {len(cameras)} cameras {cameras}")
    if transport not in ("raw", "compressed"):
        raise ValueError(f"image_transport must be 'raw' or 'compressed', got {transport!r}")
    if explicit:
        return explicit
    suffix = "/image_raw/compressed" if transport == "compressed" else "/image_raw"
    return [f"{c}{suffix}" for c in cameras]


def image_msg_type(transport: str):
    from sensor_msgs.msg import CompressedImage, Image

    return CompressedImage if transport == "compressed" else Image


def declare_camera_params(node) -> dict:
    """The camera topic / transport / QoS parameters every camera-consuming node shares."""
    return {
        "topics": declare(node, "camera_topics", "", "comma-separated image topics, one per camera; empty = <camera>/image_raw"),
        "transport": declare(node, "image_transport", "raw", "raw (sensor_msgs/Image) | compressed (sensor_msgs/CompressedImage)"),
        "qos": declare(node, "camera_qos", "sensor_data", "sensor_data (BEST_EFFORT, matches camera drivers) | reliable"),
    }


def incompatible_qos_warning(node, topic: str, qos_name: str):
    """An ``incompatible_qos`` event callback: DDS never matches a RELIABLE reader with a
    BEST_EFFORT writer, and without this the node would just wait for images silently."""

    def on_incompatible(info):
        policy = getattr(getattr(info, "last_policy_kind", None), "name", str(getattr(info, "last_policy_kind", "?")))
        node.get_logger().warning(
            f"incompatible QoS on {topic}: a publisher offers QoS this subscription ({qos_name}) cannot accept "
            f"(policy {policy}, {getattr(info, 'total_count', '?')} publisher(s)); no messages will arrive from it. "
            "Camera drivers publish BEST_EFFORT: set camera_qos:=sensor_data"
        )

    return on_incompatible


def qos_event_callbacks(node, topic: str, qos_name: str):
    from rclpy.event_handler import SubscriptionEventCallbacks

    return SubscriptionEventCallbacks(incompatible_qos=incompatible_qos_warning(node, topic, qos_name))


def subscribe_cameras(node, cameras: list[str], params: dict, callback) -> dict[str, str]:
    """One image subscription per camera calling ``callback(camera, msg)``; returns camera -> topic.

    Each subscription warns (once per incompatible publisher) when a camera publisher's QoS
    cannot match it, instead of waiting silently."""
    img_type, img_qos = image_msg_type(params["transport"]), camera_qos(params["qos"])
    topics = dict(zip(cameras, camera_topics(cameras, params["topics"], params["transport"])))
    for cam, topic in topics.items():
        node.create_subscription(img_type, topic, lambda m, c=cam: callback(c, m), img_qos,
                                 event_callbacks=qos_event_callbacks(node, topic, params["qos"]))
    return topics


def now_s(node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


def run_node(make_node, args=None) -> int:
    """rclpy.init -> spin -> clean shutdown; a bad parameter prints one line and exits 2.

    SIGINT and SIGTERM (rclpy's signal handlers shut the context down, so ``spin``
    raises ``ExternalShutdownException``, or ``KeyboardInterrupt`` without them)
    end the node normally: ``destroy_node`` runs (the recorder saves its open
    episode there) and the process exits 0 without a traceback."""
    from rclpy.executors import ExternalShutdownException

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = make_node()
        except (ValueError, ImportError, FileNotFoundError) as exc:
            print(f"[lam_ros] cannot start: {exc}", file=sys.stderr)
            return 2
        try:
            rclpy.spin(node)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            # A callback that was running when SIGINT/SIGTERM shut the context down fails to
            # publish ("publisher's context is invalid"): that is the shutdown, not an error.
            if rclpy.ok():
                raise
    finally:
        if node is not None:
            try:
                node.destroy_node()
            except KeyboardInterrupt:  # a second Ctrl-C while saving: still no traceback
                pass
        rclpy.try_shutdown()
    return 0
