"""policy_node: cameras + robot state + instruction -> VLA -> safety -> robot commands.

Subscribes
  <camera>/image_raw (sensor_msgs/Image, or CompressedImage with image_transport:=compressed),
      sensor-data QoS unless camera_qos:=reliable, holding camera_queue_depth frames per camera
      (default 30: 1 s at 30 Hz) while a control tick runs
  ee_pose_topic: measured EE pose in the base frame (geometry_msgs/PoseStamped, or Pose
      with ee_pose_type:=Pose, stamped on arrival); "" -> FK from the joint states (WidowX)
  joint_states_topic (sensor_msgs/JointState): the arm's joints, the IK seed for the WidowX
  Both default to "auto" = the robot's real driver (sim.robots): WidowX (interbotix_xs_sdk)
  /<robot_name>/joint_states and FK (the driver publishes no EE pose); Piper (piper_ros)
  joint_states_single and end_pose (geometry_msgs/Pose). The simulator publishes
  ee_pose (PoseStamped) and joint_states: sim.launch.py passes those.
  instruction (std_msgs/String), estop (std_msgs/Bool, true latches the e-stop)
Publishes (only when the safety layer allows: never in dry run)
  ee_command (geometry_msgs/PoseStamped) + gripper_command (std_msgs/Float32, 1 open..0 closed)
  the driver's own command through the adapter (Piper pos_cmd / WidowX joint_group)
Always publishes
  ~/dry_run_command (PoseStamped): the command as computed (also in dry run, for RViz)
  /diagnostics (diagnostic_msgs/DiagnosticArray) once a second
Services
  ~/reset_estop (std_srvs/Trigger)
Runtime parameters: ``ros2 param set /policy_node dry_run false``; ``instruction``. Every other parameter is
read-only (set at start-up; ``ros2 param set`` on one is refused).
"""

from __future__ import annotations

import collections
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from geometry_msgs.msg import Pose, PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger

from lam_ros.adapters import ROBOTS, MissingVendorPackage, make_adapter
from lam_ros.nodes._common import (
    camera_callback_group, csv_list, declare, declare_camera_params, float_list, now_s, run_node, subscribe_cameras,
)
from lam_ros.pipeline import PolicyController
from lam_ros.recording.images import msg_to_rgb
from lam_ros.ros_conversions import fill_header, fill_pose_stamped, pose_stamped_to_pose6, stamp_to_sec
from lam_ros.safety import SafetyConfig, SafetyLayer
from sim.robots import get_robot

EE_POSE_TYPES = ("PoseStamped", "Pose")
#: Camera frames kept per camera between two control ticks (newest last). Only the newest
#: usable one is used; a few more keep a burst of future-stamped frames from hiding a good one.
INBOX_DEPTH = 8


def resolve_state_topics(robot: str, robot_name: str, ee_pose_topic: str, js_topic: str, ee_pose_type: str):
    """"auto" -> the robot's real driver topics and EE pose type (``sim.robots``' driver entry)."""
    driver = get_robot(robot).driver
    if ee_pose_topic == "auto":
        ee_pose_topic = driver["ee_pose_topic"].format(robot_name=robot_name.strip("/"))
    if js_topic == "auto":
        js_topic = driver["joint_states_topic"].format(robot_name=robot_name.strip("/"))
    if ee_pose_type == "auto":
        ee_pose_type = driver["ee_pose_type"]
    if ee_pose_type not in EE_POSE_TYPES:
        raise ValueError(f"parameter ee_pose_type must be auto or one of {EE_POSE_TYPES}, got {ee_pose_type!r}")
    if not js_topic:
        raise ValueError("parameter joint_states_topic must name a topic (or be 'auto')")
    return ee_pose_topic, js_topic, ee_pose_type


class PolicyNode(Node):
    def __init__(self, policy=None, adapter=None, **kwargs):
        """``policy``/``adapter`` may be injected (tests); otherwise built from parameters."""
        super().__init__("policy_node", **kwargs)
        P = lambda n, d, desc: declare(self, n, d, desc)  # noqa: E731
        robot = P("robot", "widowx", f"robot the commands are for: {' | '.join(ROBOTS)}")
        checkpoint = P("checkpoint", "", "VLA checkpoint directory (lam-ros finetune-vla output)")
        device = P("device", "cpu", "torch device for the policy: cpu | cuda | cuda:N")
        cameras = P("cameras", "", "comma-separated camera names; empty = the checkpoint's cameras")
        cam_params = declare_camera_params(self)
        control_hz = P("control_hz", 5.0, "control rate (Hz); Bridge data is 5 Hz")
        instruction = declare(self, "instruction", "", "task instruction; also settable on the instruction topic and "
                              "at run time (ros2 param set)", live=True)
        dry_run = declare(self, "dry_run", True, "compute and log commands but do not send them (default true); "
                          "settable at run time", live=True)
        stale = P("stale_after_s", 0.2, "watchdog: stop sending if a camera, the state or the policy is older (s)")
        input_threads = P("input_threads", 1, "1: one executor thread (default); 2: cameras and state in their own "
                                              "callback group on a second thread, taken while a slow tick runs")
        if input_threads not in (1, 2):
            raise ValueError(f"input_threads must be 1 or 2, got {input_threads!r}")
        ws_min = P("workspace_min", "", "x,y,z (m, base frame) lower corner of the allowed box; empty = robot default")
        ws_max = P("workspace_max", "", "x,y,z (m, base frame) upper corner of the allowed box; empty = robot default")
        max_t = P("max_step_translation_m", 0.05, "largest EE translation per command (m)")
        max_r = P("max_step_rotation_rad", 0.35, "largest EE rotation per command (rad)")
        ee_pose_topic = P("ee_pose_topic", "auto",
                          "measured EE pose topic; empty = FK from joint_states (WidowX); auto = the robot driver's")
        js_topic = P("joint_states_topic", "auto", "sensor_msgs/JointState of the arm; auto = the robot driver's")
        ee_pose_type = P("ee_pose_type", "auto", "PoseStamped | Pose (no header: stamped on arrival); auto = the driver's")
        publish_driver = P("publish_driver", True, "also publish the robot driver's own message (needs vendor msgs)")
        piper_units = P("piper_units", "m_rad", "Piper pos_cmd units: m_rad (newer driver) | mm_deg (older)")
        robot_name = P("robot_name", "wx250s", "Interbotix robot name (topic prefix /<robot_name>/commands/...)")
        frame_id = P("frame_id", "base_link", "frame of the published target poses")
        self.frame_id = frame_id
        if robot not in ROBOTS:
            raise ValueError(f"parameter robot must be one of {sorted(ROBOTS)}, got {robot!r}")
        if not control_hz > 0:
            raise ValueError(f"parameter control_hz must be > 0, got {control_hz}")
        ee_pose_topic, js_topic, ee_pose_type = resolve_state_topics(
            robot, robot_name, ee_pose_topic, js_topic, ee_pose_type)
        if not ee_pose_topic and robot != "widowx":
            raise ValueError(f"parameter ee_pose_topic is empty: FK from joint states exists for the WidowX only, not {robot!r}")
        self.arm_joints = list(get_robot(robot).arm_joints)
        self.robot_spec = get_robot(robot)
        self.state_topics = {"ee_pose": ee_pose_topic, "joint_states": js_topic, "ee_pose_type": ee_pose_type}

        if adapter is None and publish_driver:
            kw = {"units": piper_units} if robot == "piper" else {"robot_name": robot_name}
            adapter = make_adapter(robot, **kw)
        self.adapter = adapter
        self._no_driver_reason = ""
        self._driver_pubs = {}
        if adapter is not None:
            try:
                for topic, msg_type in adapter.publisher_specs():
                    self._driver_pubs[topic] = self.create_publisher(msg_type, topic, 10)
            except MissingVendorPackage as exc:
                if not dry_run:
                    raise
                self.get_logger().warning(f"driver output disabled (dry run): {exc}")
                self.adapter = None
                self._no_driver_reason = str(exc)  # and dry_run stays true: see _on_set_parameters

        config = SafetyConfig.for_robot(
            robot, float_list(ws_min, 3, "workspace_min"), float_list(ws_max, 3, "workspace_max"),
            max_step_translation_m=max_t, max_step_rotation_rad=max_r, stale_after_s=stale, dry_run=dry_run,
        )
        self.safety = SafetyLayer(config, logger=self.get_logger())

        if policy is None:
            if not checkpoint:
                raise ValueError("parameter checkpoint is required (a VLA or LeRobot ACT / Diffusion checkpoint directory)")
            from lam_ros.policy import load_policy  # torch: only when really loading

            self.get_logger().info(f"loading policy {checkpoint} on {device} ...")
            policy = load_policy(checkpoint, device=device, robot=robot)
            if getattr(policy, "needs_env_state", False):
                raise ValueError(f"{checkpoint} is the simulator-only privileged-state baseline; it cannot drive a robot")
            self.get_logger().info(
                f"policy: cameras={policy.cameras} input {policy.image_size}px state={'yes' if policy.uses_state else 'no'} "
                f"actions={policy.action_convention}")
        cams = csv_list(cameras) or list(policy.cameras)
        self.controller = PolicyController(
            policy, self.safety, cams, instruction, adapter=self.adapter, decode=msg_to_rgb,
            clock=lambda: now_s(self), logger=self.get_logger(),
        )

        # Threading: camera frames and the robot state arrive in a callback group of their own
        # (the input group); with run_node's MultiThreadedExecutor they are taken while the control
        # tick (decode + inference) runs in the node's default group with every other callback
        # (e-stop, instruction, services, parameters), which therefore never runs concurrently with
        # the tick. Input callbacks touch only the inboxes and counters, under _lock; each tick
        # first hands them, in arrival order, to the (plain, single-threaded) PolicyController. A
        # long tick therefore no longer leaves frames in DDS's KEEP_LAST reader history, where newer
        # ones overwrite them, nor delays the state until it looks stale.
        self._lock = threading.Lock()
        self._tick_lock = threading.Lock()  # held while a tick runs: destroy_node waits for it
        self._inbox: dict[str, collections.deque] = {c: collections.deque(maxlen=INBOX_DEPTH) for c in cams}
        self._state_inbox: collections.deque = collections.deque(maxlen=INBOX_DEPTH)  # ("pose" | "joints", msg), arrival order
        self.frames_received: dict[str, int] = {c: 0 for c in cams}
        self.frames_lost_dds: dict[str, int] = {c: 0 for c in cams}  # DDS message-lost events per camera
        input_group = camera_callback_group()
        # Opt-in: on this 2-core dev machine the 2-thread executor (rclpy's Python MultiThreadedExecutor)
        # made the closed-loop and sim-time graph tests fail on an idle machine (inputs ~210-240 ms old
        # at every tick, commands blocked as stale), while one thread passes them; with a slow policy it
        # keeps frames flowing (tests/test_ros_graph.py). See docs/ros.md.
        self.spin_threads = 1 if input_group is None else input_threads
        self.camera_topics = subscribe_cameras(self, cams, cam_params, self._on_image, callback_group=input_group,
                                               on_lost=self._on_lost)
        if ee_pose_topic:
            pose_type = PoseStamped if ee_pose_type == "PoseStamped" else Pose
            self.create_subscription(pose_type, ee_pose_topic, self._on_pose, 10, callback_group=input_group)
        self._fk_state = not ee_pose_topic
        if self._fk_state:  # the WidowX model's FK (the same one the IK uses), even with driver output off
            self._fk = (adapter if adapter is not None else make_adapter("widowx", robot_name=robot_name)).forward
        self.create_subscription(JointState, js_topic, self._on_joints, 10, callback_group=input_group)
        self.create_subscription(String, "instruction", lambda m: self.controller.set_instruction(m.data), 10)
        self.create_subscription(Bool, "estop", self._on_estop, 10)
        self.create_service(Trigger, "~/reset_estop", self._on_reset_estop)
        self.pub_cmd = self.create_publisher(PoseStamped, "ee_command", 10)
        self.pub_grip = self.create_publisher(Float32, "gripper_command", 10)
        self.pub_dry = self.create_publisher(PoseStamped, "~/dry_run_command", 10)
        # seconds from the oldest camera frame a computed command used to its publication (benchmarks)
        self.pub_latency = self.create_publisher(Float32, "~/camera_to_command", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.timer = self.create_timer(1.0 / control_hz, self._on_timer)
        self._diag_every = max(1, int(round(control_hz)))
        self.last_result = None
        self._tick_max_s = 0.0  # longest control tick (decode + policy + safety) since the last diagnostics
        self.get_logger().info(
            f"policy_node: robot={robot} cameras={self.camera_topics} control_hz={control_hz} "
            f"dry_run={dry_run} stale_after_s={stale} state={self.state_topics} driver={list(self._driver_pubs)}"
        )

    # -- callbacks ---------------------------------------------------------------
    def _on_image(self, camera, msg):
        """Camera callback group: store the frame (decoded only at the control rate, in the tick)."""
        stamp = stamp_to_sec(msg.header.stamp)
        with self._lock:
            self._inbox[camera].append((stamp, msg))
            self.frames_received[camera] += 1

    def _on_lost(self, camera, n):
        with self._lock:
            self.frames_lost_dds[camera] += n

    def _take_inputs(self):
        """Hand the state and frames received since the last tick to the controller, in arrival
        order (its rules - future stamps refused, latest arrival wins - see every one of them)."""
        with self._lock:
            states = list(self._state_inbox)
            self._state_inbox.clear()
            pending = [(c, list(q)) for c, q in self._inbox.items() if q]
            for q in self._inbox.values():
                q.clear()
        for kind, msg in states:
            (self._apply_pose if kind == "pose" else self._apply_joints)(msg)
        for camera, frames in pending:
            for stamp, msg in frames:
                self.controller.on_image(camera, stamp, msg)

    def _on_pose(self, msg):
        """Input group: queue the pose for the next tick (a header-less Pose stamped now, on arrival)."""
        if isinstance(msg, Pose):  # piper_ros' end_pose has no header: it is as old as its arrival
            stamped = PoseStamped()
            stamped.pose = msg
            fill_header(stamped.header, now_s(self), self.frame_id)
            msg = stamped
        with self._lock:
            self._state_inbox.append(("pose", msg))

    def _on_joints(self, msg):
        """Input group: queue the joint state for the next tick."""
        with self._lock:
            self._state_inbox.append(("joints", msg))

    def _apply_pose(self, msg):
        try:
            pose6, stamp, _ = pose_stamped_to_pose6(msg)
        except ValueError as exc:
            self.get_logger().warning(f"policy: ignored an EE pose: {exc}")
            return
        self.controller.on_state(pose6, stamp)

    def _apply_joints(self, msg):
        """The arm's joints seed the WidowX IK (and give the EE pose by FK when ee_pose_topic is empty);
        a finger joint, when present, gives the measured gripper opening of the policy's state."""
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in self.arm_joints if n not in index]
        if missing or len(msg.position) < len(msg.name):
            if not getattr(self, "_warned_joints", False):
                self._warned_joints = True
                self.get_logger().warning(f"policy: joint state without the arm's joints {missing} ignored")
            return
        q = np.array([float(msg.position[index[n]]) for n in self.arm_joints])
        opening = self.robot_spec.opening_from_joint_state(msg.name, msg.position)
        if opening is not None:  # the measured opening is the state's gripper value (else: the last command)
            self.controller.gripper = opening
        if self._fk_state:
            self.controller.on_state(self._fk(q), stamp_to_sec(msg.header.stamp), q)
        else:
            self.controller.on_joints(q, stamp_to_sec(msg.header.stamp))

    def _on_estop(self, msg):
        if msg.data:
            self.safety.estop("estop topic")

    def _on_reset_estop(self, request, response):
        self.controller.reset_estop()
        response.success = True
        response.message = "e-stop reset"
        return response

    def _on_set_parameters(self, params):
        """The live parameters (``dry_run``, ``instruction``); rclpy itself refuses the read-only rest."""
        for p in params:
            if p.name == "dry_run":
                if not isinstance(p.value, bool):
                    return SetParametersResult(successful=False, reason="dry_run must be a bool")
                if not p.value and self._no_driver_reason:
                    # the node would publish bare EE targets without the driver's IK and joint checks
                    return SetParametersResult(successful=False, reason="cannot leave dry run: the robot driver output "
                                               f"was disabled at start-up ({self._no_driver_reason})")
                self.safety.set_dry_run(p.value)
            elif p.name == "instruction":
                self.controller.set_instruction(str(p.value))
        return SetParametersResult(successful=True)

    def _on_timer(self):
        with self._tick_lock:
            self._tick()

    def _tick(self):
        t_tick = time.perf_counter()
        self._take_inputs()
        result = self.controller.tick()
        self._tick_max_s = max(self._tick_max_s, time.perf_counter() - t_tick)
        self.last_result = result
        cmd = result.decision.command
        t = now_s(self)
        if cmd is not None:
            self.pub_dry.publish(fill_pose_stamped(PoseStamped(), cmd.pose6, t, self.frame_id))
            if result.image_stamps:
                self.pub_latency.publish(Float32(data=float(t - min(result.image_stamps.values()))))
        if result.sent:
            self.pub_cmd.publish(fill_pose_stamped(PoseStamped(), cmd.pose6, t, self.frame_id))
            self.pub_grip.publish(Float32(data=float(cmd.gripper)))
            for topic, msg in result.publications:
                self._driver_pubs[topic].publish(msg)
        if self.controller.ticks % self._diag_every == 0:
            self._publish_diagnostics(result, t)

    def _publish_diagnostics(self, result, t):
        status = DiagnosticStatus()
        status.name = f"{self.get_name()}: safety"
        status.hardware_id = "lam_ros"
        status.level = DiagnosticStatus.OK if result.sent else DiagnosticStatus.WARN
        status.message = "sending" if result.sent else result.decision.reason
        with self._lock:
            received, lost = dict(self.frames_received), dict(self.frames_lost_dds)
        values = {**{k: str(v) for k, v in self.safety.counts.items()}, "inference_ms": f"{result.inference_s * 1e3:.1f}",
                  "max_tick_ms": f"{self._tick_max_s * 1e3:.1f}",
                  **{f"frames_received.{c}": str(n) for c, n in received.items()},
                  **{f"frames_lost_dds.{c}": str(n) for c, n in lost.items()}}
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        arr = DiagnosticArray()
        fill_header(arr.header, t)
        arr.status = [status]
        self.pub_diag.publish(arr)
        self._tick_max_s = 0.0

    def destroy_node(self):
        """Wait (bounded) for a control tick still running in an executor thread, then destroy."""
        got = self._tick_lock.acquire(timeout=10.0)
        try:
            return super().destroy_node()
        finally:
            if got:
                self._tick_lock.release()


def main(args=None) -> int:
    return run_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
