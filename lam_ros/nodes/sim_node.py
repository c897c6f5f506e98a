"""sim_node: the MuJoCo simulator as a ROS 2 robot (no hardware needed).

Every control period (``control_hz``, 5 Hz like Bridge) the node applies the
newest robot-neutral command and steps the physics one control period. Cameras
publish at their own rate (``camera_hz``, 30 Hz like real cameras, independent
of the control rate: a watchdog limit of 0.2 s must not equal the camera
period); the scene does not move between control steps, so each camera frame
is the newest render, stamped when it is published. It publishes:

  <camera>/image_raw (sensor_msgs/Image rgb8, sensor-data QoS, frame_id = camera)
  joint_states (sensor_msgs/JointState: the 6 arm joints + both finger joints in m, as the drivers publish them), at camera_hz
  ee_pose (geometry_msgs/PoseStamped, base frame), at camera_hz
  instruction (std_msgs/String: the task's instruction, if publish_instruction)
  ~/episode_outcome (std_msgs/String, JSON {"episode", "success", "steps", "reason"}, transient local)

Subscribes ee_command (geometry_msgs/PoseStamped) + gripper_command
(std_msgs/Float32) - exactly what policy_node publishes - and holds the last
target when no new command arrives. Commands older than ``command_timeout_s``
are ignored (the arm holds). Service ``~/reset`` (std_srvs/Trigger) starts a
new episode; episodes also restart when the task's step limit is reached.

Threads: the node is spun by rclpy's single-threaded executor, and every simulator call
(creation, reset, step = physics + rendering every camera) runs on one worker thread of its
own. The control timer hands a step to that thread and returns at once, so the camera timer
keeps its rate while the simulator works (MuJoCo releases the GIL while stepping and
rendering). One thread, always the same, because the renderer's EGL context belongs to the
thread that made it current. rclpy's MultiThreadedExecutor was tried for this (commit
17cb95f) and starved subscriptions on an idle machine (docs/ros.md); a plain worker thread
needs no executor change.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, String
from std_srvs.srv import Trigger

from lam_ros.nodes._common import camera_qos, csv_list, declare, now_s, run_node
from lam_ros.ros_conversions import fill_image, fill_joint_state, fill_pose_stamped, pose_stamped_to_pose6
from sim.robots import ROBOT_SPECS, get_robot

#: Arm joint names per robot, from the one source (sim.robots).
JOINT_NAMES = {name: list(spec.arm_joints) for name, spec in ROBOT_SPECS.items()}


class SimNode(Node):
    def __init__(self, env=None, **kwargs):
        super().__init__("sim_node", **kwargs)
        P = lambda n, d, desc: declare(self, n, d, desc)  # noqa: E731
        self.robot = P("robot", "widowx", "simulated arm: widowx | piper")
        task = P("task", "carrot_on_plate", "task: carrot_on_plate | stack_cube | spoon_on_towel | eggplant_in_basket")
        cameras = csv_list(P("cameras", "third_person,side,wrist", "comma-separated simulated cameras"))
        size = P("image_size", "128x128", "camera resolution WxH")
        control_hz = P("control_hz", 5.0, "physics advances one control period per tick at this rate (Hz)")
        camera_hz = P("camera_hz", 30.0, "camera publishing rate (Hz), independent of control_hz")
        qos = P("camera_qos", "sensor_data", "QoS of the image publishers: sensor_data | reliable")
        seed = P("seed", 0, "episode seed (-1 = random)")
        self.max_steps = P("max_steps", 0, "control steps per episode; 0 = the task's own limit")
        self.frame_id = P("frame_id", "base_link", "frame of ee_pose")
        self.command_timeout_s = P("command_timeout_s", 1.0, "ignore commands older than this (s)")
        self.publish_instruction = P("publish_instruction", True, "publish the task instruction on 'instruction'")
        if self.robot not in JOINT_NAMES:
            raise ValueError(f"parameter robot must be one of {sorted(JOINT_NAMES)}, got {self.robot!r}")
        if not control_hz > 0:
            raise ValueError(f"parameter control_hz must be > 0, got {control_hz}")
        if not camera_hz > 0:
            raise ValueError(f"parameter camera_hz must be > 0, got {camera_hz}")
        self._sim_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim_node_mujoco")
        self._step: Future | None = None  # the control step in flight on the simulator thread
        self.overruns = 0  # control ticks skipped because the previous step had not finished
        if env is None:
            import sim  # mujoco: only when really simulating

            env = self._in_sim(sim.make_env, robot=self.robot, task=task, cameras=tuple(cameras), image_size=size)
        self.env = env
        self.cameras = list(env.cameras) if hasattr(env, "cameras") else cameras
        self._seed = None if seed < 0 else seed
        img_qos = camera_qos(qos)
        self.pub_img = {c: self.create_publisher(Image, f"{c}/image_raw", img_qos) for c in self.cameras}
        self.pub_js = self.create_publisher(JointState, "joint_states", 10)
        self.pub_pose = self.create_publisher(PoseStamped, "ee_pose", 10)
        self.pub_instr = self.create_publisher(String, "instruction", 10)
        # One JSON line per finished episode: {"episode", "success", "steps", "reason"}; latched-like
        # (transient local) so a late subscriber still gets the last outcome.
        from rclpy.qos import DurabilityPolicy, QoSProfile

        self.pub_outcome = self.create_publisher(
            String, "~/episode_outcome", QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.steps = 0
        self.create_subscription(PoseStamped, "ee_command", self._on_command, 10)
        self.create_subscription(Float32, "gripper_command", self._on_gripper, 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self._target = None  # (pose6, stamp)
        self._gripper = 1.0
        self.episodes = 0
        self._reset_episode()
        self.timer = self.create_timer(1.0 / control_hz, self._on_timer)
        self.camera_timer = self.create_timer(1.0 / camera_hz, self._publish_images)
        self.get_logger().info(f"sim_node: {self.robot} / {task}, control at {control_hz} Hz, "
                               f"cameras {self.cameras} at {camera_hz} Hz")

    def _in_sim(self, fn, *args, **kwargs):
        """Run ``fn`` on the simulator thread and wait for its result (after any step in flight)."""
        return self._sim_thread.submit(fn, *args, **kwargs).result()

    def settle(self, timeout: float | None = None) -> None:
        """Wait until the control step in flight (if any) has finished; re-raises its error."""
        if self._step is not None:
            self._step.result(timeout)

    def destroy_node(self):
        self._sim_thread.shutdown(wait=True, cancel_futures=True)  # a step in flight finishes first
        return super().destroy_node()

    def _reset_episode(self):
        self._in_sim(self._reset_in_sim)

    def _reset_in_sim(self):
        self.obs, _ = self.env.reset(seed=None if self._seed is None else self._seed + self.episodes)
        self.episodes += 1
        self.steps = 0
        self._target = None
        self._gripper = 1.0
        self._publish(self.obs)

    def _on_command(self, msg):
        try:
            pose6, stamp, _ = pose_stamped_to_pose6(msg)
        except ValueError as exc:
            self.get_logger().warning(f"sim: ignored ee_command: {exc}")
            return
        if not np.all(np.isfinite(pose6)):
            self.get_logger().warning(f"sim: ignored non-finite ee_command {pose6.tolist()}")
            return
        self._target = (pose6, stamp)

    def _on_gripper(self, msg):
        if np.isfinite(msg.data):
            self._gripper = float(np.clip(msg.data, 0.0, 1.0))

    def _on_reset(self, request, response):
        self._reset_episode()
        response.success = True
        response.message = f"episode {self.episodes} started"
        return response

    def _on_timer(self):
        """Hand one control step to the simulator thread; skip the tick while the last one runs."""
        if self._step is not None:
            if not self._step.done():
                self.overruns += 1
                if self.overruns in (1, 10, 100) or self.overruns % 1000 == 0:
                    self.get_logger().warning(
                        f"sim: control step slower than the control period, {self.overruns} tick(s) skipped so far")
                return
            self._step.result()  # a step that failed ends the node here, with its traceback
        now = now_s(self)
        if self._target is not None and now - self._target[1] <= self.command_timeout_s:
            pose6 = self._target[0]
        else:
            pose6 = np.asarray(self.obs["ee_pose"], dtype=np.float64)  # hold where it is
        self._step = self._sim_thread.submit(self._step_in_sim, pose6, self._gripper)

    def _step_in_sim(self, pose6, gripper):
        """One control step on the simulator thread: physics + renders, state topics, episode end."""
        self.obs, _, terminated, truncated, info = self.env.step_absolute(pose6, gripper)
        self.steps += 1
        self._publish(self.obs)
        if self.max_steps > 0 and self.steps >= self.max_steps:
            truncated = True
        if terminated or truncated:
            outcome = {"episode": self.episodes, "success": bool(info.get("success", False)), "steps": self.steps,
                       "reason": "terminated" if terminated else "step limit"}
            self.get_logger().info(f"sim: episode {self.episodes} ended, success={outcome['success']}")
            self.pub_outcome.publish(String(data=json.dumps(outcome)))
            self._reset_in_sim()

    def _publish_images(self):
        """Camera frames and the robot state at the camera rate (real drivers publish joint states at
        tens of Hz: a state published at the control period would always look one period old)."""
        obs, t = self.obs, now_s(self)  # one observation: the simulator thread replaces self.obs whole
        for cam, pub in self.pub_img.items():
            pub.publish(fill_image(Image(), obs["images"][cam], t, cam))
        self._publish_state(obs, t)

    def _publish(self, obs):
        self._publish_state(obs, now_s(self))
        if self.publish_instruction and getattr(self.env, "instruction", None):
            self.pub_instr.publish(String(data=str(self.env.instruction)))

    def _publish_state(self, obs, t):
        # as the arms' drivers do: the finger joints' positions (m), from which nodes read the opening
        spec = get_robot(self.robot)
        finger = spec.finger_position(float(np.asarray(obs["gripper"]).reshape(-1)[0]))
        names = JOINT_NAMES[self.robot] + list(spec.finger_joints)
        positions = np.concatenate([np.asarray(obs["joint_pos"], dtype=np.float64), [finger] * len(spec.finger_joints)])
        self.pub_js.publish(fill_joint_state(JointState(), names, positions, t))
        self.pub_pose.publish(fill_pose_stamped(PoseStamped(), obs["ee_pose"], t, self.frame_id))


def main(args=None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
