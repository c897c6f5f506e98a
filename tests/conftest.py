"""Test-wide settings: headless rendering, no hub access, the repo root importable."""

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Real ROS 2 graph tests (tests/test_ros_*.py): Fast DDS over UDPv4 so node processes discover
# each other on sandboxed machines (the default transports found no peer there; FACTS section 3).
# Each test picks its own ROS_DOMAIN_ID (tests/_ros_graph.py).
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
