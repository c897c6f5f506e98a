"""Every parameter a launch file passes is one the node really declares, with the same type.

``launch`` / ``launch_ros`` are on no registry reachable here, so the launch files cannot run:
each launch file's ``generate_launch_description()`` is evaluated against stand-ins of the few
launch names it uses (tests/_ros_graph.py), giving the typed parameters launch_ros would pass
for every ``robot:=`` choice. Each node is then started with real rclpy (in this process, on its
own domain) and its declared parameters (names and types) are read back from the node.
"""

import numpy as np
import pytest

from _ros_graph import (
    REPO, forget_node_modules_bound_to_the_double, fresh_domain, launch_node_params, load_launch_file, require_rclpy,
)

require_rclpy()

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

LAUNCH_FILES = sorted(p.name for p in (REPO / "launch").glob("*.launch.py"))
ROBOTS = ("widowx", "piper")


class _Policy:
    cameras = ["third_person", "wrist"]

    def act(self, images, instruction):
        return np.zeros(7)


class _Env:
    cameras = ("third_person", "side", "wrist")
    instruction = "put the carrot on the plate"

    def reset(self, seed=None):
        obs = {"images": {c: np.zeros((4, 4, 3), np.uint8) for c in self.cameras}, "ee_pose": np.zeros(6),
               "gripper": np.array([1.0]), "joint_pos": np.zeros(6)}
        return obs, {}


class _Recorder:
    def close(self):
        pass


def _start(executable, context, overrides):
    """The node with real rclpy; injected stand-ins replace only what would load models or write data."""
    kw = {"context": context, "parameter_overrides": overrides}
    if executable == "policy_node":
        from lam_ros.nodes.policy_node import PolicyNode

        return PolicyNode(policy=_Policy(), **kw)
    if executable == "sim_node":
        from lam_ros.nodes.sim_node import SimNode

        return SimNode(env=_Env(), **kw)
    if executable == "latent_action_node":
        from lam_ros.nodes.latent_action_node import LatentActionNode

        model = type("LAM", (), {"config": type("Cfg", (), {"views": ["third_person", "side"]})()})()
        return LatentActionNode(model=model, **kw)
    if executable == "recorder_node":
        from lam_ros.nodes.recorder_node import RecorderNode

        return RecorderNode(recorder=_Recorder(), **kw)
    raise AssertionError(f"a launch file starts an unknown executable {executable!r}")


@pytest.fixture(scope="module")
def context():
    forget_node_modules_bound_to_the_double()  # earlier tests may have imported them under tests/rclpy_double.py
    ctx = Context()
    rclpy.init(context=ctx, domain_id=fresh_domain())
    yield ctx
    rclpy.try_shutdown(context=ctx)


_DECLARED = {}


def declared_parameters(executable, context):
    """name -> rclpy Parameter.Type the node declares (read from a node started with defaults);
    includes ``use_sim_time`` (BOOL), which rclpy declares on every node (policy.launch.py passes it)."""
    if executable not in _DECLARED:
        node = _start(executable, context, [])
        _DECLARED[executable] = {name: p.type_ for name, p in node._parameters.items()}
        node.destroy_node()
    return _DECLARED[executable]


CASES = [(lf, n["executable"], robot) for lf in LAUNCH_FILES for n in load_launch_file(REPO / "launch" / lf)[1]
         for robot in ROBOTS]


def test_every_launch_file_and_node_is_covered():
    assert set(LAUNCH_FILES) == {"policy.launch.py", "record.launch.py", "sim.launch.py"}
    assert {c[1] for c in CASES} == {"policy_node", "sim_node", "latent_action_node", "recorder_node"}


@pytest.mark.parametrize("launch_file,executable,robot", CASES)
def test_launch_parameters_are_declared_with_their_types(launch_file, executable, robot, context):
    args, _ = load_launch_file(REPO / "launch" / launch_file)
    overrides = {"robot": robot} if "robot" in args else {}
    passed = launch_node_params(launch_file, executable, **overrides)
    declared = declared_parameters(executable, context)
    undeclared = sorted(set(passed) - set(declared))
    assert not undeclared, f"{launch_file} passes {executable} parameters it does not declare: {undeclared}"
    for name, value in passed.items():
        got = Parameter.Type.from_parameter_value(value)
        assert got == declared[name], (
            f"{launch_file} robot:={robot}: {executable} parameter {name!r} = {value!r} is {got.name}, "
            f"the node declares {declared[name].name}")
    # and the node really starts with exactly these values (rclpy checks the types itself)
    node = _start(executable, context, [Parameter(k, value=v) for k, v in passed.items()])
    try:
        for name, value in passed.items():
            assert node.get_parameter(name).value == value
    finally:
        node.destroy_node()


def test_a_wrongly_typed_launch_value_is_caught(context):
    """The check above would fail: control_hz passed as an int is not the double the node declares."""
    declared = declared_parameters("policy_node", context)
    assert Parameter.Type.from_parameter_value(5) != declared["control_hz"]
    with pytest.raises(Exception, match="control_hz"):
        _start("policy_node", context, [Parameter("control_hz", value=5)])


def test_state_topics_default_to_each_robots_real_driver(context):
    from lam_ros.nodes.policy_node import resolve_state_topics

    assert resolve_state_topics("widowx", "wx250s", "auto", "auto", "auto") == ("", "/wx250s/joint_states", "PoseStamped")
    assert resolve_state_topics("piper", "wx250s", "auto", "auto", "auto") == ("end_pose", "joint_states_single", "Pose")
    sim = launch_node_params("sim.launch.py", "policy_node")
    assert (sim["ee_pose_topic"], sim["joint_states_topic"]) == ("ee_pose", "joint_states")  # what sim_node publishes
    real = launch_node_params("policy.launch.py", "policy_node", robot="piper")
    node = _start("policy_node", context, [Parameter(k, value=v) for k, v in real.items()])
    try:
        assert node.state_topics == {"ee_pose": "end_pose", "joint_states": "joint_states_single", "ee_pose_type": "Pose"}
    finally:
        node.destroy_node()


LIVE_PARAMETERS = {"policy_node": {"dry_run", "instruction"}, "recorder_node": {"task"}}


@pytest.mark.parametrize("executable", ["policy_node", "sim_node", "latent_action_node", "recorder_node"])
def test_only_live_parameters_can_change_at_run_time(executable, context):
    """Every other parameter is read once at start-up: real rclpy refuses `ros2 param set` on it instead of
    reporting success while the node keeps using the start-up value (e.g. a step limit on a moving arm)."""
    node = _start(executable, context, [])
    try:
        live = LIVE_PARAMETERS.get(executable, set())
        for name, param in node._parameters.items():
            if name == "use_sim_time" or name in live:
                continue
            [result] = node.set_parameters([Parameter(name, value=param.value)])
            assert not result.successful and "read-only" in result.reason, (executable, name, result)
            assert node.describe_parameter(name).read_only
        if executable == "policy_node":
            [result] = node.set_parameters([Parameter("max_step_translation_m", value=0.005)])
            assert not result.successful and node.get_parameter("max_step_translation_m").value == 0.05
            assert node.safety.config.max_step_translation_m == 0.05
            [result] = node.set_parameters([Parameter("dry_run", value=False)])
            if node._no_driver_reason:  # no vendor messages here: leaving dry run would skip the driver's checks
                assert not result.successful and "cannot leave dry run" in result.reason and node.safety.dry_run
                node.destroy_node()
                node = _start(executable, context, [Parameter("publish_driver", value=False)])  # as sim.launch.py
                [result] = node.set_parameters([Parameter("dry_run", value=False)])
            assert result.successful and not node.safety.dry_run
            assert node.set_parameters([Parameter("instruction", value="stack the cube")])[0].successful
            assert node.controller.instruction == "stack the cube"
        if executable == "recorder_node":
            assert node.set_parameters([Parameter("task", value="put the spoon on the towel")])[0].successful
            assert node.task == "put the spoon on the towel"
    finally:
        node.destroy_node()
