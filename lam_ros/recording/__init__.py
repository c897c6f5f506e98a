"""ROS-free multi-view recording into LeRobot datasets.

Three sources share one core: ``sync`` (approximate-time matching across N
cameras, then resampling to the dataset's fixed fps), ``images`` (ROS image
messages to NumPy), ``writer`` (a crash-safe wrapper around lerobot's
``LeRobotDataset``) and ``report`` (what went wrong, counted). The sources are
``bag`` (rosbag2 files via rosbags), ``live`` (the core of the rclpy recorder
node) and ``sim`` (the MuJoCo environments).
"""
