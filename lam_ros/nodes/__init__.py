"""rclpy node shells (the only place lam_ros imports rclpy).

Each module has ``main()`` (the console script ``ros2 run lam_ros <node>``
starts) and one ``Node`` subclass that only wires topics, parameters and
timers to the ROS-free classes in :mod:`lam_ros.pipeline`, :mod:`lam_ros.safety`,
:mod:`lam_ros.adapters` and :mod:`lam_ros.recording`.
"""
