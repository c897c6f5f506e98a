"""The whole closed loop without a robot: simulator + policy (+ optional latent actions).

``ros2 launch lam_ros sim.launch.py checkpoint:=/path task:=carrot_on_plate``. The
simulated arm moves by default (dry_run:=false here, unlike policy.launch.py).
``--show-args`` lists every argument.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

ARGS = {
    "robot": ("widowx", "simulated arm: widowx | piper"),
    "task": ("carrot_on_plate", "carrot_on_plate | stack_cube | spoon_on_towel | eggplant_in_basket"),
    "cameras": ("third_person,side,wrist", "comma-separated simulated cameras (the policy uses its own subset)"),
    "image_size": ("128x128", "camera resolution WxH"),
    "checkpoint": ("", "VLA checkpoint directory (required)"),
    "device": ("cpu", "torch device: cpu | cuda | cuda:N"),
    "control_hz": ("5.0", "control and simulation rate (Hz)"),
    "camera_hz": ("30.0", "simulated camera rate (Hz), independent of control_hz"),
    "stale_after_s": ("0.2", "watchdog limit: stop if a camera/state/policy output is older (s)"),
    "dry_run": ("false", "simulated arm: moves by default"),
    "instruction": ("", "task instruction; empty = the simulator publishes the task's own"),
    "seed": ("0", "first episode seed (-1 = random)"),
    "max_steps": ("0", "control steps per episode; 0 = the task's own limit"),
    "with_latent_actions": ("false", "also start latent_action_node"),
    "lam_checkpoint": ("", "latent action model checkpoint (with_latent_actions:=true)"),
}


def _s(name):
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def generate_launch_description():
    declared = [DeclareLaunchArgument(n, default_value=d, description=desc) for n, (d, desc) in ARGS.items()]
    sim = Node(
        package="lam_ros", executable="sim_node", name="sim_node", output="screen",
        parameters=[{
            "robot": _s("robot"), "task": _s("task"), "cameras": _s("cameras"), "image_size": _s("image_size"),
            "control_hz": LaunchConfiguration("control_hz"), "camera_hz": LaunchConfiguration("camera_hz"),
            "seed": LaunchConfiguration("seed"), "max_steps": LaunchConfiguration("max_steps"),
        }],
    )
    policy = Node(
        package="lam_ros", executable="policy_node", name="policy_node", output="screen",
        parameters=[{
            "robot": _s("robot"), "checkpoint": _s("checkpoint"), "device": _s("device"),
            "control_hz": LaunchConfiguration("control_hz"), "dry_run": LaunchConfiguration("dry_run"),
            "instruction": _s("instruction"), "publish_driver": False,
            "stale_after_s": LaunchConfiguration("stale_after_s"),
            # what sim_node publishes (not a real driver's topics)
            "ee_pose_topic": "ee_pose", "joint_states_topic": "joint_states", "ee_pose_type": "PoseStamped",
        }],
    )
    latent = Node(
        package="lam_ros", executable="latent_action_node", name="latent_action_node", output="screen",
        condition=IfCondition(LaunchConfiguration("with_latent_actions")),
        parameters=[{"checkpoint": _s("lam_checkpoint"), "cameras": _s("cameras"), "device": _s("device")}],
    )
    return LaunchDescription(declared + [sim, policy, latent])
