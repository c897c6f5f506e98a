"""Record multi-view episodes into a LeRobot dataset: ``ros2 launch lam_ros record.launch.py output_dir:=/data/run1``.

Start/stop with ``ros2 service call /recorder_node/start_episode std_srvs/srv/Trigger``
(and ``stop_episode`` / ``discard_episode``). ``--show-args`` lists every argument.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

ARGS = {
    "output_dir": ("", "dataset root directory to create (required)"),
    "repo_id": ("local/lam_ros_live", "LeRobot repo id stored in the dataset"),
    "cameras": ("third_person,side,wrist", "comma-separated camera names"),
    "camera_topics": ("", "comma-separated image topics, one per camera; empty = <camera>/image_raw"),
    "image_transport": ("raw", "raw | compressed"),
    "camera_qos": ("sensor_data", "sensor_data (BEST_EFFORT) | reliable"),
    "camera_queue_depth": ("30", "frames held per camera while the node is busy (30 = 1 s at 30 Hz)"),
    "fps": ("5.0", "dataset frame rate (Hz)"),
    "robot": ("widowx", "robot_type stored in the dataset: widowx | piper"),
    "task": ("", "instruction stored with each episode (also from /instruction)"),
}
STRING_PARAMS = {"output_dir", "repo_id", "cameras", "camera_topics", "image_transport", "camera_qos", "robot", "task"}


def generate_launch_description():
    declared = [DeclareLaunchArgument(n, default_value=d, description=desc) for n, (d, desc) in ARGS.items()]
    params = {
        n: ParameterValue(LaunchConfiguration(n), value_type=str) if n in STRING_PARAMS else LaunchConfiguration(n)
        for n in ARGS
    }
    recorder = Node(package="lam_ros", executable="recorder_node", name="recorder_node", output="screen",
                    parameters=[params])
    return LaunchDescription(declared + [recorder])
