"""latent_action_node: N synchronised cameras -> online latent actions.

Subscribes
  <camera>/image_raw per camera (Image or CompressedImage), sensor-data QoS by default
Publishes
  latent_actions/codes (std_msgs/Int64MultiArray, shape 1 x n_tokens)
  latent_actions/embeddings (std_msgs/Float32MultiArray, shape 1 x n_tokens x dim)
  /diagnostics (rate, camera skew, latency, sets without a partner, dropped frames) once a second

Why standard multi-arrays and not a custom message: a custom message needs a
separate ament_cmake interface package, which would make lam_ros no longer a
single pure-Python package installable with pip. The multi-arrays carry the
frame pair's stamp (the later set's time) in the label of a leading size-1
dimension, ``stamp_ns=<int>``: ``lam_ros.ros_conversions.multiarray_to_numpy``
returns it.

The synchronisation is the shared approximate-time core
(``lam_ros.recording.sync.ApproximateTimeSync``, message_filters semantics);
frame sets ``frame_gap_s`` apart (+- ``tolerance_s``) form a pair.
"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray, Int64MultiArray, MultiArrayDimension

from lam_ros.nodes._common import csv_list, declare, declare_camera_params, now_s, run_node, subscribe_cameras
from lam_ros.pipeline import LatentActionStream, load_latent_model
from lam_ros.recording.images import msg_to_rgb
from lam_ros.ros_conversions import fill_header, fill_multiarray, stamp_to_sec


class LatentActionNode(Node):
    def __init__(self, model=None, **kwargs):
        super().__init__("latent_action_node", **kwargs)
        P = lambda n, d, desc: declare(self, n, d, desc)  # noqa: E731
        checkpoint = P("checkpoint", "", "latent action model checkpoint directory (lam-ros train-lam output)")
        device = P("device", "cpu", "torch device: cpu | cuda | cuda:N")
        cameras = csv_list(P("cameras", "third_person,side",
                             "comma-separated camera names; empty = the views the model was trained on"))
        cam_params = declare_camera_params(self)
        gap = P("frame_gap_s", 0.6, "time between the two frames of a latent action (s); ~0.6 s for robot data")
        slop = P("slop", 0.02, "approximate-time sync: max stamp difference inside one camera set (s)")
        queue = P("queue_size", 10, "approximate-time sync: per-camera queue length")
        tol = P("tolerance_s", 0.15, "how far from frame_gap_s the earlier set may be (s)")
        if model is None:
            if not checkpoint:
                raise ValueError("parameter checkpoint is required (a latent action model directory)")
            self.get_logger().info(f"loading latent action model {checkpoint} on {device} ...")
            model = load_latent_model(checkpoint, device)
        if not cameras:  # policy.launch.py passes its cameras:="" (= the checkpoint's) here too
            cameras = list(getattr(getattr(model, "config", None), "views", None) or [])
        if not cameras:
            raise ValueError("parameter cameras must name at least one camera (the model names no views)")
        self.stream = LatentActionStream(model, cameras, gap, slop, queue, tol, decode=msg_to_rgb)
        self.camera_topics = subscribe_cameras(self, cameras, cam_params, self._on_image)
        self.pub_codes = self.create_publisher(Int64MultiArray, "latent_actions/codes", 10)
        self.pub_emb = self.create_publisher(Float32MultiArray, "latent_actions/embeddings", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        self._window = {"pairs": 0, "latency_s": 0.0, "pipeline_s": 0.0, "t0": time.monotonic()}
        self.get_logger().info(f"latent_action_node: cameras={self.camera_topics} frame_gap_s={gap} slop={slop}")

    def _on_image(self, camera, msg):
        try:
            result = self.stream.add(camera, stamp_to_sec(msg.header.stamp), msg)
        except ValueError as exc:  # an undecodable frame must not kill the node
            self.get_logger().warning(f"latent actions: dropped a frame set: {exc}")
            return
        if result is None:
            return
        n, d = result.embeddings.shape
        codes = fill_multiarray(Int64MultiArray(), result.codes, MultiArrayDimension, ["token"], result.stamp, "int64")
        emb = fill_multiarray(
            Float32MultiArray(), result.embeddings, MultiArrayDimension, ["token", "dim"], result.stamp, "float32"
        )
        self.pub_codes.publish(codes)
        self.pub_emb.publish(emb)
        w = self._window
        w["pairs"] += 1
        w["latency_s"] = max(w["latency_s"], result.latency_s)
        w["pipeline_s"] = max(w["pipeline_s"], now_s(self) - result.stamp)  # frame capture -> published

    def _publish_diagnostics(self):
        w, stats = self._window, self.stream.stats
        elapsed = max(time.monotonic() - w["t0"], 1e-9)
        status = DiagnosticStatus()
        status.name = f"{self.get_name()}: latent actions"
        status.hardware_id = "lam_ros"
        status.level = DiagnosticStatus.OK if w["pairs"] else DiagnosticStatus.WARN
        status.message = "publishing" if w["pairs"] else "no frame pairs in the last period"
        values = {
            "rate_hz": f"{w['pairs'] / elapsed:.2f}",
            "camera_skew_ms": f"{self.stream.last_skew * 1e3:.1f}",
            "max_compute_ms": f"{w['latency_s'] * 1e3:.1f}",
            "max_capture_to_publish_ms": f"{w['pipeline_s'] * 1e3:.1f}",
            "sets_without_partner": str(stats["no_partner"]),
            "late_sets": str(stats["late"]),
            **{f"unmatched_frames.{c}": str(v) for c, v in self.stream.dropped().items()},
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        arr = DiagnosticArray()
        fill_header(arr.header, now_s(self))
        arr.status = [status]
        self.pub_diag.publish(arr)
        self._window = {"pairs": 0, "latency_s": 0.0, "pipeline_s": 0.0, "t0": time.monotonic()}


def main(args=None) -> int:
    return run_node(LatentActionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
