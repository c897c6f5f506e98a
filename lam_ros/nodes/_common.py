"""Helpers shared by the node shells: parameters with descriptions, QoS, camera subscriptions, main()."""

from __future__ import annotations

import logging
import sys

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

CAMERA_QOS_CHOICES = ("sensor_data", "reliable")


def declare(node, name: str, default, description: str, live: bool = False):
    """Declare a parameter with a description (shown by `ros2 param describe`) and return its value.

    Parameters are read once, at start-up (launch files and ``--ros-args -p`` set them), so they are declared
    read-only: ``ros2 param set`` on one is refused by rclpy ("Trying to set a read-only parameter") instead of
    reporting success while the node keeps the old value (a safety limit changed on a moving arm would do
    nothing). ``live=True`` for the few a node applies while running (its on-set-parameters callback)."""
    return node.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=not live)).value


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


SENSOR_DATA_DEPTH = 5  # rclpy's qos_profile_sensor_data
# Camera subscribers hold 1 s of frames at 30 Hz: the longest control tick measured on the 2-core
# dev CPU was 531 ms (the first ticks after start), which a depth of 5 turned into lost frames.
DEFAULT_CAMERA_QUEUE_DEPTH = 30


def camera_qos(kind: str, depth: int = SENSOR_DATA_DEPTH) -> QoSProfile:
    """sensor_data (BEST_EFFORT, KEEP_LAST ``depth``) matches camera drivers; a RELIABLE
    subscriber would silently never match a BEST_EFFORT camera publisher.

    ``depth`` is how many frames per camera the reader holds while the node is busy: at
    30 Hz the sensor-data default of 5 is 166 ms, so a longer control tick in a
    single-threaded node overwrites frames before they are taken (docs/ros.md)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"camera_queue_depth must be a positive integer, got {depth!r}")
    if kind == "sensor_data":
        return QoSProfile(
            depth=depth, reliability=qos_profile_sensor_data.reliability, history=HistoryPolicy.KEEP_LAST,
            durability=qos_profile_sensor_data.durability,
        )
    if kind == "reliable":
        return QoSProfile(
            depth=depth, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
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
        "depth": declare(node, "camera_queue_depth", DEFAULT_CAMERA_QUEUE_DEPTH,
                         "frames held per camera while the node is busy (KEEP_LAST depth; 30 = 1 s at 30 Hz)"),
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


def qos_event_callbacks(node, topic: str, qos_name: str, on_lost=None):
    """Event callbacks of a camera subscription: the incompatible-QoS warning and, with
    ``on_lost(total_count_change)``, DDS's message-lost event (samples the reader never got:
    sequence-number gaps, incomplete fragmented samples; not samples it got and then replaced
    in its KEEP_LAST history)."""
    from rclpy.event_handler import SubscriptionEventCallbacks

    kw = {}
    if on_lost is not None:
        kw["message_lost"] = lambda info: on_lost(int(getattr(info, "total_count_change", 1)))
    return SubscriptionEventCallbacks(incompatible_qos=incompatible_qos_warning(node, topic, qos_name), **kw)


def subscribe_cameras(node, cameras: list[str], params: dict, callback, callback_group=None,
                      on_lost=None) -> dict[str, str]:
    """One image subscription per camera calling ``callback(camera, msg)``; returns camera -> topic.

    Each subscription warns (once per incompatible publisher) when a camera publisher's QoS
    cannot match it, instead of waiting silently; ``on_lost(camera, n)`` (optional) counts the
    frames DDS reports lost. ``callback_group``: see :func:`camera_callback_group`."""
    img_type = image_msg_type(params["transport"])
    img_qos = camera_qos(params["qos"], params.get("depth", DEFAULT_CAMERA_QUEUE_DEPTH))
    topics = dict(zip(cameras, camera_topics(cameras, params["topics"], params["transport"])))
    for cam, topic in topics.items():
        lost = None if on_lost is None else (lambda n, c=cam: on_lost(c, n))
        node.create_subscription(img_type, topic, lambda m, c=cam: callback(c, m), img_qos,
                                 event_callbacks=qos_event_callbacks(node, topic, params["qos"], lost),
                                 callback_group=callback_group)
    return topics


def camera_callback_group():
    """A callback group of its own for camera (and robot state) subscriptions, or a camera
    timer, so that a node spun by a ``MultiThreadedExecutor`` (``run_node`` with
    ``node.spin_threads > 1``) takes or publishes frames while its control tick (model
    inference, a simulator step) runs in the default group. ``None`` where
    rclpy has no callback groups (the rclpy test double: everything then runs in one group)."""
    try:
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
    except ImportError:
        return None
    return MutuallyExclusiveCallbackGroup()


def now_s(node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


def run_node(make_node, args=None) -> int:
    """rclpy.init -> spin -> clean shutdown; a bad parameter prints one line and exits 2.

    A node with ``spin_threads > 1`` (policy_node: cameras in their own callback group) is
    spun by a ``MultiThreadedExecutor`` with that many threads, others by rclpy's default
    single-threaded executor. SIGINT and SIGTERM (rclpy's signal handlers shut the context down, so ``spin``
    raises ``ExternalShutdownException``, or ``KeyboardInterrupt`` without them)
    end the node normally: ``destroy_node`` runs (the recorder saves its open
    episode there) and the process exits 0 without a traceback."""
    from rclpy.executors import ExternalShutdownException

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rclpy.init(args=args)
    node = executor = None
    try:
        try:
            node = make_node()
        except (ValueError, ImportError, FileNotFoundError) as exc:
            print(f"[lam_ros] cannot start: {exc}", file=sys.stderr)
            return 2
        threads = int(getattr(node, "spin_threads", 1) or 1)
        if threads > 1:
            from rclpy.executors import MultiThreadedExecutor

            executor = MultiThreadedExecutor(num_threads=threads)
        try:
            rclpy.spin(node, executor)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            # A callback that was running when SIGINT/SIGTERM shut the context down fails to
            # publish ("publisher's context is invalid"): that is the shutdown, not an error.
            if rclpy.ok():
                raise
    finally:
        if executor is not None:
            try:  # let a callback still running in a worker thread finish before the node goes
                executor.shutdown(timeout_sec=10.0)
            except KeyboardInterrupt:
                pass
        if node is not None:
            try:
                node.destroy_node()
            except KeyboardInterrupt:  # a second Ctrl-C while saving: still no traceback
                pass
        rclpy.try_shutdown()
    return 0
