"""Helpers for the real-graph tests: node processes, a probe node, the launch files' parameters.

Everything here uses the real rclpy + Fast DDS (the pinned Jazzy wheels, or a sourced ROS 2).
Each test gets its own ``ROS_DOMAIN_ID`` (processes and the in-test probe alike), and
cross-process discovery uses ``FASTDDS_BUILTIN_TRANSPORTS=UDPv4`` (set in conftest.py):
with Fast DDS's default transports processes on sandboxed machines may not find each other.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_used_domains: set[int] = set()


def fresh_domain() -> int:
    """A ROS_DOMAIN_ID no other test of this run used (random start: parallel runs rarely collide)."""
    rng = random.Random(os.getpid() * 7919 + time.monotonic_ns())
    while True:
        d = rng.randint(1, 101)
        if d not in _used_domains:
            _used_domains.add(d)
            return d


def ros_arg(name: str, value) -> list[str]:
    """``-p name:=value`` typed like launch_ros passes it: str stays str (YAML-quoted)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = "'" + str(value).replace("'", "''") + "'"
    return ["-p", f"{name}:={text}"]


class NodeProc:
    """A node console script (``.venv/bin/<executable>``) as its own process."""

    def __init__(self, executable: str, params: dict, domain: int, log_dir: Path, name: str | None = None,
                 extra_env: dict | None = None, ros_args: tuple = ()):
        self.name = name or executable
        self.log_path = Path(log_dir) / f"{self.name}.log"
        cmd = [str(BIN / executable), "--ros-args", *ros_args]
        for k, v in params.items():
            cmd += ros_arg(k, v)
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0",
                   OMP_NUM_THREADS="1", **(extra_env or {}))
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGINT, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"{self.name} did not exit within {timeout} s of {sig!r}:\n{self.output()[-3000:]}") from None
        self._log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def wait_for(predicate, timeout: float, spin=None, what: str = "condition", procs=()):
    """Bounded polling: spin (if given) until ``predicate()`` is truthy; fail naming ``what``
    (at once, with its log, when one of ``procs`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise AssertionError(f"{p.name} exited ({p.proc.returncode}) while waiting for {what}:\n"
                                     f"{p.output()[-3000:]}")
        if spin is not None:
            spin(0.02)
        else:
            time.sleep(0.02)
        value = predicate()
        if value:
            return value
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Probe:
    """An in-test rclpy node on its own context and domain: publishers, subscriptions, service calls."""

    def __init__(self, domain: int, name: str = "probe"):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin(self, seconds: float = 0.02):
        end = time.monotonic() + seconds
        while True:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.01, end - time.monotonic())))
            if time.monotonic() >= end:
                return

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def collect(self, msg_type, topic: str, qos=10) -> list:
        """Subscribe; returns the list (arrival time, msg) is appended to."""
        got: list = []
        self.node.create_subscription(msg_type, topic, lambda m: got.append((time.monotonic(), m)), qos)
        return got

    def call(self, srv_type, name: str, timeout: float = 10.0):
        client = self.node.create_client(srv_type, name)
        wait_for(lambda: client.service_is_ready(), timeout, self.spin, f"service {name}")
        future = client.call_async(srv_type.Request())
        wait_for(future.done, timeout, self.spin, f"reply of {name}")
        return future.result()

    def close(self):
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


# ---------------------------------------------------------------- launch files ---

class _LaunchConfiguration:
    def __init__(self, name, default=None):
        self.name = name


class _ParameterValue:
    def __init__(self, value, value_type=None):
        self.value, self.value_type = value, value_type


class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def load_launch_file(path: Path) -> tuple[dict, list[dict]]:
    """Run ``generate_launch_description()`` of a launch file against stand-ins of the few
    ``launch`` / ``launch_ros`` names it uses (those packages are on no registry here).
    Nothing is launched: returns ({argument: default}, [{"executable", "parameters", "condition"}])."""
    stubs = {
        "launch": types.SimpleNamespace(LaunchDescription=lambda entities: list(entities)),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=_Recorder),
        "launch.conditions": types.SimpleNamespace(IfCondition=_Recorder),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=_LaunchConfiguration),
        "launch_ros": types.SimpleNamespace(),
        "launch_ros.actions": types.SimpleNamespace(Node=_Recorder),
        "launch_ros.parameter_descriptions": types.SimpleNamespace(ParameterValue=_ParameterValue),
    }
    saved = {k: sys.modules.get(k) for k in stubs}
    try:
        for k, v in stubs.items():
            sys.modules[k] = types.ModuleType(k)
            sys.modules[k].__dict__.update(vars(v))
        namespace: dict = {"__name__": "launch_file_under_test", "__file__": str(path)}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        entities = namespace["generate_launch_description"]()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    args = {e.args[0] if e.args else e.kwargs["name"]: e.kwargs.get("default_value", "")
            for e in entities if isinstance(e, _Recorder) and "executable" not in e.kwargs}
    nodes = []
    for e in entities:
        if isinstance(e, _Recorder) and "executable" in e.kwargs:
            params = {}
            for d in e.kwargs.get("parameters", []):
                params.update(d)
            cond = e.kwargs.get("condition")
            nodes.append({"executable": e.kwargs["executable"], "parameters": params,
                          "condition": cond.args[0].name if cond is not None else None})
    return args, nodes


def resolve_parameters(params: dict, values: dict) -> dict:
    """Launch arguments -> the typed values launch_ros would hand the node: a
    ``ParameterValue(..., value_type=str)`` stays a string, a bare ``LaunchConfiguration``
    is YAML-parsed (``"5.0"`` -> float, ``"true"`` -> bool, ``"0"`` -> int), literals stay."""
    import yaml

    out = {}
    for name, v in params.items():
        if isinstance(v, _ParameterValue):
            raw = values[v.value.name] if isinstance(v.value, _LaunchConfiguration) else v.value
            out[name] = v.value_type(raw) if v.value_type is not None else yaml.safe_load(str(raw))
        elif isinstance(v, _LaunchConfiguration):
            raw = values[v.name]
            parsed = yaml.safe_load(raw) if raw != "" else ""
            out[name] = raw if parsed is None else parsed
        else:
            out[name] = v
    return out


def launch_node_params(launch_file: str, executable: str, **overrides) -> dict:
    """The typed parameters ``launch_file`` passes ``executable`` with ``overrides`` as launch arguments."""
    args, nodes = load_launch_file(REPO / "launch" / launch_file)
    unknown = set(overrides) - set(args)
    if unknown:
        raise ValueError(f"{launch_file} declares no launch argument(s) {sorted(unknown)}")
    values = {**args, **{k: str(v) for k, v in overrides.items()}}
    [node] = [n for n in nodes if n["executable"] == executable]
    return resolve_parameters(node["parameters"], values)


def require_rclpy():
    """rclpy must be importable: CI (CI=true) fails loudly without it, elsewhere the module is skipped."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("rclpy") is not None:
        return
    why = ("rclpy is not importable: `bash scripts/test.sh` installs the pinned ROS 2 Jazzy wheels "
           "(requirements/ros-jazzy.txt), or source a ROS 2 Humble/Jazzy setup.bash")
    if os.environ.get("CI"):
        raise RuntimeError(why)
    pytest.skip(why, allow_module_level=True)


def forget_node_modules_bound_to_the_double() -> None:
    """Make ``lam_ros.nodes.*`` import against the real rclpy in this process.

    tests/rclpy_double.py forgets the node modules while a test runs and monkeypatch restores the ones imported
    before it, but a node module first imported under the double stays bound to it (its ``Node`` is the double's).
    If any node module is bound to something other than the real rclpy, all are forgotten and re-imported."""
    import rclpy
    import rclpy.node

    modules = {name: mod for name, mod in sys.modules.items() if name.startswith("lam_ros.nodes") and mod is not None}
    stale = [name for name, mod in modules.items()
             if getattr(mod, "rclpy", rclpy) is not rclpy or getattr(mod, "Node", rclpy.node.Node) is not rclpy.node.Node]
    if stale:
        for name in modules:
            del sys.modules[name]
