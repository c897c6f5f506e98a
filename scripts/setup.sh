#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment in .venv from the pinned
# lock file. Re-running is cheap: when requirements/lock.txt and setup.py have
# not changed since the last successful setup, nothing is installed.
#
#   LAM_ROS_VENV=/path/to/venv   use another location
#   LAM_ROS_PYTHON=python3.12    use another interpreter (3.10 .. 3.12)
#   LAM_ROS_SYSTEM_SITE=1        --system-site-packages (ROS 2 machines: makes rclpy visible)
#   LAM_ROS_ROS_WHEELS=auto|1|0  ROS 2 Jazzy's rclpy + messages as pinned wheels (requirements/ros-jazzy.txt):
#                                auto (default) installs them only when no ROS 2 is sourced (ROS_DISTRO
#                                unset) and rclpy is not importable from outside the venv; never over a
#                                system ROS 2. 1 = always, 0 = never.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LAM_ROS_VENV:-.venv}"
PY="${LAM_ROS_PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
if [ -z "$PY" ]; then echo "setup: no python3 found; install Python 3.10-3.12" >&2; exit 1; fi
if ! "$PY" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)'; then
  echo "setup: $PY is $("$PY" --version 2>&1); lam_ros needs Python 3.10-3.12" >&2; exit 1
fi

# Headless MuJoCo rendering needs EGL (Mesa). Install it on Debian/Ubuntu when missing.
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing EGL/Mesa for headless rendering (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libgl1-mesa-dri libgles2 >/dev/null
  else
    echo "setup: warning: libEGL not found; install libegl1 + libgl1-mesa-dri for MUJOCO_GL=egl rendering" >&2
  fi
fi

install_lock() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $("$PY" --version 2>&1)"
    if [ "${LAM_ROS_SYSTEM_SITE:-0}" = 1 ]; then
      "$PY" -m venv --system-site-packages "$VENV"
    else
      "$PY" -m venv "$VENV"
    fi
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip uv
  # uv installs the ~8 GB pinned set (torch + CUDA runtime wheels, lerobot) in
  # well under a minute once downloaded; plain pip takes several minutes.
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" -r requirements/lock.txt
  # compat mode = a .pth pointing at the checkout, so packages added later import without a reinstall.
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --no-deps -e . --config-settings editable_mode=compat
  echo "$want" > "$stamp"
  echo "setup: done ($VENV)"
}

# ROS 2: a sourced installation (robots: apt Humble/Jazzy) is used as it is; otherwise (laptops, CI)
# the pinned Jazzy wheels go into the venv. Own stamp, so a lock change and a ROS change are independent.
install_ros_wheels() {
  local mode="${LAM_ROS_ROS_WHEELS:-auto}" ros_stamp="$VENV/.lam_ros-ros-stamp" ros_want where
  case "$mode" in auto|1|0) ;; *) echo "setup: LAM_ROS_ROS_WHEELS must be auto, 1 or 0, got '$mode'" >&2; exit 1 ;; esac
  if [ "$mode" = 0 ]; then echo "setup: ROS 2 wheels not installed (LAM_ROS_ROS_WHEELS=0)"; return 0; fi
  if [ "$mode" = auto ] && [ -n "${ROS_DISTRO:-}" ]; then
    echo "setup: ROS 2 $ROS_DISTRO is sourced: using it, installing no ROS wheels"
    return 0
  fi
  ros_want="$(cat requirements/ros-jazzy.txt | sha256sum | cut -d' ' -f1)"
  if [ -f "$ros_stamp" ] && [ "$(cat "$ros_stamp")" = "$ros_want" ]; then
    echo "setup: ROS 2 Jazzy wheels are up to date with requirements/ros-jazzy.txt"
    return 0
  fi
  # rclpy importable from outside the venv (PYTHONPATH, --system-site-packages) = a ROS 2 install: leave it alone.
  where="$("$VENV/bin/python" -c 'import rclpy, os; print(os.path.realpath(rclpy.__file__))' 2>/dev/null || true)"
  if [ "$mode" = auto ] && [ -n "$where" ] && [ "${where#"$(realpath "$VENV")"}" = "$where" ]; then
    echo "setup: rclpy is importable from $where: using it, installing no ROS wheels"
    return 0
  fi
  if [ "$(uname -m)" != x86_64 ]; then
    echo "setup: warning: the ROS 2 Jazzy wheels exist for x86_64 only ($(uname -m) here); source a ROS 2 installation" >&2
    return 0
  fi
  echo "setup: installing ROS 2 Jazzy rclpy + messages (wheels, requirements/ros-jazzy.txt)"
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" -r requirements/ros-jazzy.txt
  echo "$ros_want" > "$ros_stamp"
}

# With PYTHONDONTWRITEBYTECODE set (containers and CI images often set it) Python never caches bytecode,
# so every process recompiles what it imports: 17 s instead of 7 s to import torch + transformers +
# lerobot, paid by each of the demo's ~10 processes and by every node and console script the tests start.
# Compile the venv once (about 50 s on 2 cores), again only after an install changed it.
compile_bytecode() {
  local bc_stamp="$VENV/.lam_ros-bytecode-stamp" bc_want site
  if [ -z "${PYTHONDONTWRITEBYTECODE:-}" ]; then return 0; fi  # Python caches bytecode itself on first import
  bc_want="$(cat "$stamp" "$VENV/.lam_ros-ros-stamp" 2>/dev/null | sha256sum | cut -d' ' -f1)"
  if [ -f "$bc_stamp" ] && [ "$(cat "$bc_stamp")" = "$bc_want" ]; then return 0; fi
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "setup: compiling the venv's bytecode once (PYTHONDONTWRITEBYTECODE is set, so Python would recompile at every start)"
  "$VENV/bin/python" -m compileall -q -j 0 "$site" >/dev/null 2>&1 || echo "setup: warning: some files did not compile" >&2
  echo "$bc_want" > "$bc_stamp"
}

stamp="$VENV/.lam_ros-setup-stamp"
want="$(cat requirements/lock.txt setup.py | sha256sum | cut -d' ' -f1) $("$PY" --version 2>&1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "setup: $VENV is up to date with requirements/lock.txt"
else
  install_lock
fi
install_ros_wheels
compile_bytecode
