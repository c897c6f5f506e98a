#!/usr/bin/env bash
# Sets up the environment (reused when the lock file is unchanged) and runs the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k sim -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}" HF_HUB_OFFLINE=1
exec "${LAM_ROS_VENV:-.venv}/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
