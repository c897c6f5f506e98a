"""recorder_node: live multi-view recording into a LeRobot dataset.

A thin shell over ``lam_ros.recording.live.LiveRecorder`` (synchronisation,
resampling to ``fps``, crash-safe writing all live there).

Subscribes
  <camera>/image_raw per camera (Image or CompressedImage, sensor-data QoS by default)
  ee_pose (geometry_msgs/PoseStamped) + joint_states (the robot's finger joint, if present, as the
      gripper opening 1 open .. 0 closed, ``RobotSpec.opening_from_joint_state``):
      observation.state = [x, y, z, roll, pitch, yaw, gripper]
  ee_command (PoseStamped) + gripper_command (std_msgs/Float32):
      action = [x, y, z, roll, pitch, yaw, gripper] as commanded (absolute target)
  instruction (std_msgs/String): the task text stored with the next episode
Services (std_srvs/Trigger): ~/start_episode, ~/stop_episode (save), ~/discard_episode
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, String
from std_srvs.srv import Trigger

from lam_ros.nodes._common import csv_list, declare, declare_camera_params, run_node, subscribe_cameras
from lam_ros.recording.images import msg_to_rgb
from lam_ros.ros_conversions import pose_stamped_to_pose6, stamp_to_sec
from sim.robots import get_robot


def make_live_recorder(**kwargs):
    from lam_ros.recording.live import LiveRecorder  # lerobot: only when really recording

    return LiveRecorder(**kwargs)


class RecorderNode(Node):
    def __init__(self, recorder=None, **kwargs):
        super().__init__("recorder_node", **kwargs)
        P = lambda n, d, desc: declare(self, n, d, desc)  # noqa: E731
        output_dir = P("output_dir", "", "dataset root directory (created; must not exist yet)")
        repo_id = P("repo_id", "local/lam_ros_live", "LeRobot repo id stored in the dataset metadata")
        cameras = csv_list(P("cameras", "third_person,side,wrist", "comma-separated camera names"))
        cam_params = declare_camera_params(self)
        fps = P("fps", 5.0, "dataset frame rate (Hz)")
        robot = P("robot", "widowx", "the arm (its finger joint gives the gripper opening); robot_type stored in the dataset")
        self.task = declare(self, "task", "", "instruction stored with each episode started after it is set (also from "
                            "the instruction topic; settable at run time)", live=True)
        if not cameras:
            raise ValueError("parameter cameras must name at least one camera")
        self.robot_spec = get_robot(robot)  # a ValueError naming the known robots otherwise
        if recorder is None:
            if not output_dir:
                raise ValueError("parameter output_dir is required (where the dataset is written)")
            recorder = make_live_recorder(root=output_dir, repo_id=repo_id, cameras=cameras, fps=fps, robot_type=robot)
        self.recorder = recorder
        self.recording = False
        self._gripper_state = 1.0
        self._gripper_cmd = 1.0
        self.camera_topics = subscribe_cameras(self, cameras, cam_params, self._on_image)
        self.create_subscription(PoseStamped, "ee_pose", self._on_pose, 10)
        self.create_subscription(JointState, "joint_states", self._on_joints, 10)
        self.create_subscription(PoseStamped, "ee_command", self._on_command, 10)
        self.create_subscription(Float32, "gripper_command", self._on_gripper_cmd, 10)
        self.create_subscription(String, "instruction", self._on_instruction, 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_service(Trigger, "~/start_episode", self._srv(self._start))
        self.create_service(Trigger, "~/stop_episode", self._srv(self._stop))
        self.create_service(Trigger, "~/discard_episode", self._srv(self._discard))
        self.get_logger().info(f"recorder_node: cameras={self.camera_topics} fps={fps} -> {output_dir or '(injected)'}")

    # -- services ------------------------------------------------------------
    def _srv(self, fn):
        def handler(request, response):
            try:
                response.message = fn() or "ok"
                response.success = True
            except (ValueError, RuntimeError, OSError) as exc:
                response.success, response.message = False, str(exc)
                self.get_logger().error(f"recorder: {exc}")
            return response

        return handler

    def _start(self):
        if not self.task:
            raise ValueError("no task instruction: set the 'task' parameter or publish on 'instruction' first")
        self.recorder.start_episode(self.task)
        self.recording = True
        return f"recording episode: {self.task!r}"

    def _stop(self):
        self.recording = False
        result = self.recorder.stop_episode()
        return f"episode saved: {result}"

    def _discard(self):
        self.recording = False
        self.recorder.discard_episode()
        return "episode discarded"

    # -- data --------------------------------------------------------------
    def _on_image(self, camera, msg):
        if not self.recording:
            return
        try:
            image = msg_to_rgb(msg, self.camera_topics[camera])
        except ValueError as exc:
            self.get_logger().warning(f"recorder: dropped a frame from {camera}: {exc}")
            return
        self.recorder.add_image(camera, stamp_to_sec(msg.header.stamp), image)

    def _on_set_parameters(self, params):
        """``task`` is live (the next episode's instruction); rclpy refuses the read-only rest."""
        for p in params:
            if p.name == "task":
                self.task = str(p.value).strip()
        return SetParametersResult(successful=True)

    def _on_joints(self, msg):
        opening = self.robot_spec.opening_from_joint_state(msg.name, msg.position)
        if opening is not None:
            self._gripper_state = opening

    def _on_pose(self, msg):
        if self.recording:
            pose6, stamp, _ = pose_stamped_to_pose6(msg)
            self.recorder.add_state(stamp, np.append(pose6, self._gripper_state).astype(np.float32))

    def _on_gripper_cmd(self, msg):
        self._gripper_cmd = float(msg.data)

    def _on_command(self, msg):
        if self.recording:
            pose6, stamp, _ = pose_stamped_to_pose6(msg)
            self.recorder.add_action(stamp, np.append(pose6, self._gripper_cmd).astype(np.float32))

    def _on_instruction(self, msg):
        self.task = msg.data.strip()

    def destroy_node(self):
        if self.recording:  # do not lose what was recorded on Ctrl-C
            self.get_logger().warning("recorder: shutting down while recording: saving the episode")
            try:
                self._stop()
            except (ValueError, RuntimeError, OSError) as exc:
                self.get_logger().error(f"recorder: could not save the last episode: {exc}")
        close = getattr(self.recorder, "close", None)
        if close is not None:
            close()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
