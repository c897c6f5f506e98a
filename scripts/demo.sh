#!/usr/bin/env bash
# Sets up the environment (reused when the lock file is unchanged) and runs the main job:
# `lam-ros demo` (see `lam-ros demo --help`). Extra arguments go to `lam-ros demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}" HF_HUB_OFFLINE=1
exec "${LAM_ROS_VENV:-.venv}/bin/lam-ros" demo "$@"
