"""Run the VLA policy on a robot: ``ros2 launch lam_ros policy.launch.py robot:=widowx checkpoint:=/path``.

Dry run by default: commands are computed, logged and published on
/policy_node/dry_run_command only. Pass ``dry_run:=false`` to move the arm.
``ros2 launch lam_ros policy.launch.py --show-args`` lists every argument.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

# name -> (default, description). Strings stay strings (ParameterValue(value_type=str)).
ARGS = {
    "robot": ("widowx", "robot to command: widowx | piper"),
    "checkpoint": ("", "VLA checkpoint directory (required)"),
    "cameras": ("", "comma-separated camera names; empty = the checkpoint's cameras"),
    "camera_topics": ("", "comma-separated image topics, one per camera; empty = <camera>/image_raw"),
    "image_transport": ("raw", "raw | compressed"),
    "camera_qos": ("sensor_data", "sensor_data (BEST_EFFORT) | reliable"),
    "camera_queue_depth": ("30", "frames held per camera while the node is busy (30 = 1 s at 30 Hz)"),
    "device": ("cpu", "torch device: cpu | cuda | cuda:N"),
    "control_hz": ("5.0", "control rate in Hz"),
    "dry_run": ("true", "true: compute and log commands without sending them"),
    "instruction": ("", "task instruction (also settable on the /instruction topic)"),
    "stale_after_s": ("0.2", "watchdog limit: stop if a camera/state/policy output is older (s)"),
    "workspace_min": ("", "x,y,z lower corner of the allowed EE box (m); empty = robot default"),
    "workspace_max": ("", "x,y,z upper corner of the allowed EE box (m); empty = robot default"),
    "max_step_translation_m": ("0.05", "largest EE translation per command (m)"),
    "max_step_rotation_rad": ("0.35", "largest EE rotation per command (rad)"),
    "ee_pose_topic": ("auto", "measured EE pose topic; empty = FK from joint_states (WidowX); "
                              "auto = the driver's (WidowX: FK, Piper: end_pose)"),
    "ee_pose_type": ("auto", "PoseStamped | Pose (stamped on arrival); auto = the driver's (Piper end_pose: Pose)"),
    "joint_states_topic": ("auto", "the arm's sensor_msgs/JointState; auto = the driver's "
                                   "(WidowX: /<robot_name>/joint_states, Piper: joint_states_single)"),
    "piper_units": ("m_rad", "Piper pos_cmd units: m_rad | mm_deg (match your piper_ros version)"),
    "robot_name": ("wx250s", "Interbotix robot name (/<robot_name>/commands/joint_group)"),
    "publish_driver": ("true", "also publish the driver's own message (needs piper_msgs / interbotix_xs_msgs)"),
    "with_latent_actions": ("false", "also start latent_action_node on the same cameras"),
    "lam_checkpoint": ("", "latent action model checkpoint (with_latent_actions:=true)"),
    "use_sim_time": ("false", "true: the nodes' clock is /clock (a simulator's time; stamps must be sim time too)"),
}
STRING_PARAMS = {"robot", "checkpoint", "cameras", "camera_topics", "image_transport", "camera_qos", "device",
                 "instruction", "workspace_min", "workspace_max", "ee_pose_topic", "ee_pose_type", "joint_states_topic",
                 "piper_units", "robot_name"}
NODE_ONLY = {"with_latent_actions", "lam_checkpoint"}


def _param(name):
    value = LaunchConfiguration(name)
    return ParameterValue(value, value_type=str) if name in STRING_PARAMS else value


def generate_launch_description():
    declared = [DeclareLaunchArgument(n, default_value=d, description=desc) for n, (d, desc) in ARGS.items()]
    policy = Node(
        package="lam_ros",
        executable="policy_node",
        name="policy_node",
        output="screen",
        parameters=[{n: _param(n) for n in ARGS if n not in NODE_ONLY}],
    )
    latent = Node(
        package="lam_ros",
        executable="latent_action_node",
        name="latent_action_node",
        output="screen",
        condition=IfCondition(LaunchConfiguration("with_latent_actions")),
        parameters=[{
            "checkpoint": ParameterValue(LaunchConfiguration("lam_checkpoint"), value_type=str),
            "cameras": ParameterValue(LaunchConfiguration("cameras"), value_type=str),
            "camera_topics": ParameterValue(LaunchConfiguration("camera_topics"), value_type=str),
            "image_transport": ParameterValue(LaunchConfiguration("image_transport"), value_type=str),
            "camera_qos": ParameterValue(LaunchConfiguration("camera_qos"), value_type=str),
            "device": ParameterValue(LaunchConfiguration("device"), value_type=str),
            "use_sim_time": LaunchConfiguration("use_sim_time"),
        }],
    )
    return LaunchDescription(declared + [policy, latent])
