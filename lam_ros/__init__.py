"""lam_ros: latent-action VLA policies from MuJoCo simulation to real arms over ROS 2.

Everything importable from this package except ``lam_ros.nodes`` is ROS-free;
``rclpy`` is imported only inside the thin node shells in ``lam_ros/nodes``.
"""

__version__ = "0.1.0"
