"""policy_node on simulated time (``use_sim_time:=true``) on a real ROS 2 graph, and /clock jumping back.

A simulator drives ``/clock`` (rosgraph_msgs/Clock) and stamps its cameras and robot state with
its own time; when it resets, that time jumps back. The test is that simulator (a probe node on a
test-private ROS_DOMAIN_ID); ``policy_node`` is its console script with the parameters
``policy.launch.py`` passes (``use_sim_time:=true`` included). Sim time starts at 1000 s, so a
node reading the wall clock (~1.7e9 s) would see every frame as stale and send nothing.

Checked after the jump back (1000 s -> 10 s): the control timer keeps ticking and commands
resume at once, computed from the frames stamped after the jump (input not frozen on the
frames from before it); the watchdog still stops commands within one control period when a
camera goes silent, also when it went silent just before the jump (its last frame, stamped
"in the future" after the jump, must not count as fresh).
"""

import time

import numpy as np
import pytest

from _ros_graph import NodeProc, Probe, fresh_domain, launch_node_params, require_rclpy, wait_for

require_rclpy()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

from lam_ros.ros_conversions import fill_image, fill_joint_state, fill_pose_stamped, stamp_to_sec  # noqa: E402

CAMERAS = ["third_person", "wrist"]  # the tiny VLA's cameras (tests/_vla_helpers.py)
START_TIMEOUT = 150.0  # node start = torch import + checkpoint load, on a shared 2-core machine
CONTROL_HZ = 10.0
STALE_S = 0.2
# stale after STALE_S, checked every control period, + DDS / scheduling slack on a loaded machine
STOP_WITHIN_S = STALE_S + 1.0 / CONTROL_HZ + 0.15


class SimClock:
    """The probe as a simulator: /clock at 100 Hz, cameras (BEST_EFFORT) and state at 33 Hz, all
    stamped with sim time, which advances with the wall clock from ``start`` until :meth:`jump_to`."""

    def __init__(self, probe, start=1000.0):
        node = probe.node
        self.probe = probe
        self.clock = node.create_publisher(Clock, "/clock", 10)
        self.cams = {c: node.create_publisher(Image, f"{c}/image_raw", qos_profile_sensor_data) for c in CAMERAS}
        self.pose = node.create_publisher(PoseStamped, "ee_pose", 10)
        self.joints = node.create_publisher(JointState, "joint_states", 10)
        self.img = np.full((64, 80, 3), 90, np.uint8)
        self.live = set(CAMERAS)
        self.last_frame = {}
        self._base, self._t_ref = start, time.monotonic()
        self._k = 0

    def now(self) -> float:
        return self._base + (time.monotonic() - self._t_ref)

    def jump_to(self, t: float) -> None:
        """A simulator reset: sim time continues from ``t``."""
        self._base, self._t_ref = t, time.monotonic()

    def step(self):
        t = self.now()
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = int(t), int(round((t - int(t)) * 1e9)) % 1_000_000_000
        self.clock.publish(msg)
        self._k += 1
        if self._k % 3:
            return
        for c in self.live:
            self.cams[c].publish(fill_image(Image(), self.img, t, c))
            self.last_frame[c] = time.monotonic()
        self.pose.publish(fill_pose_stamped(PoseStamped(), [0.3, 0.0, 0.2, 0.0, 1.2, 0.0], t))
        self.joints.publish(fill_joint_state(JointState(), ["waist", "shoulder", "elbow", "forearm_roll",
                                                            "wrist_angle", "wrist_rotate", "gripper"], np.zeros(7), t))

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step()
            self.probe.spin(0.01)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    from _vla_helpers import make_action_checkpoint

    root = tmp_path_factory.mktemp("simtime")
    vla = make_action_checkpoint(root / "vla")
    domain = fresh_domain()
    params = launch_node_params("policy.launch.py", "policy_node", checkpoint=str(vla), dry_run="false",
                                publish_driver="false", control_hz=str(CONTROL_HZ), stale_after_s=str(STALE_S),
                                instruction="put the carrot on the plate", ee_pose_topic="ee_pose",
                                joint_states_topic="joint_states", ee_pose_type="PoseStamped", use_sim_time="true")
    assert params["use_sim_time"] is True
    node = NodeProc("policy_node", params, domain, root)
    probe = Probe(domain)
    sim = SimClock(probe)
    rec = {"cmds": probe.collect(PoseStamped, "ee_command"),
           "lat": probe.collect(Float32, "/policy_node/camera_to_command"),
           "diag": probe.collect(DiagnosticArray, "/diagnostics")}
    try:
        def started():
            sim.run(0.05)
            return rec["cmds"]

        wait_for(started, START_TIMEOUT, None, "the first command on sim time", [node])
        yield {"node": node, "probe": probe, "sim": sim, "rec": rec}
    finally:
        probe.close()
        node.kill()


def _after(msgs, t):
    return [m for at, m in msgs if at > t]


def test_commands_flow_on_sim_time(graph):
    sim, rec = graph["sim"], graph["rec"]
    sim.run(1.0)
    t0 = time.monotonic()
    sim.run(1.0)
    cmds = _after(rec["cmds"], t0)
    assert len(cmds) >= 6, f"{len(cmds)} commands in 1 s at {CONTROL_HZ} Hz"
    # commands are stamped with sim time (1000 s + a few), not the wall clock
    assert all(999.0 < stamp_to_sec(m.header.stamp) < 1000.0 + 600.0 for m in cmds)


def test_clock_jump_back_neither_stops_the_timer_nor_freezes_the_input(graph):
    sim, rec, node = graph["sim"], graph["rec"], graph["node"]
    sim.run(0.5)
    sim.jump_to(10.0)  # simulator reset
    t_jump = time.monotonic()
    wait_for(lambda: (sim.run(0.05), len(_after(rec["cmds"], t_jump)) >= 6)[1], 10, None,
             "commands after /clock jumped back (control timer stalled or input frozen?)", [node])
    assert time.monotonic() - t_jump < 3.0, "commands resumed late after the jump"
    sim.run(1.0)
    after = [m for at, m in rec["cmds"] if at > t_jump + 0.5]
    assert len(after) >= 6
    # on the new timeline ...
    assert all(9.0 < stamp_to_sec(m.header.stamp) < 100.0 for m in after)
    # ... and computed from frames taken after the jump: camera -> command within the watchdog limit
    # (frames from before it would give about -990 s)
    lat = [m.data for at, m in rec["lat"] if at > t_jump + 0.5]
    assert lat and all(0.0 <= v <= STALE_S + 0.05 for v in lat), lat
    # diagnostics (published from the control timer) kept coming
    assert len(_after(rec["diag"], t_jump)) >= 1


def test_watchdog_stops_commands_after_the_jump_when_a_camera_goes_silent(graph):
    sim, rec, node = graph["sim"], graph["rec"], graph["node"]
    sim.run(0.5)
    assert _after(rec["cmds"], time.monotonic() - 0.4), "no commands flowing before the test"
    sim.live = {"wrist"}  # third_person stops
    sim.run(1.5)
    stopped_at = sim.last_frame["third_person"]
    late = [at - stopped_at for at, _ in rec["cmds"] if at > stopped_at + STOP_WITHIN_S]
    assert not late, f"commands {[round(x, 3) for x in late]} s after the camera went silent"
    assert "stale inputs" in node.output()
    sim.live = set(CAMERAS)
    t = time.monotonic()
    wait_for(lambda: (sim.run(0.05), len(_after(rec["cmds"], t)) >= 3)[1], 10, None, "commands again", [node])


def test_a_camera_silent_across_the_jump_stays_stale(graph):
    """Its last frame (stamped ~1000 s) lies 'in the future' of the new timeline: it must not look fresh."""
    sim, rec, node = graph["sim"], graph["rec"], graph["node"]
    sim.jump_to(2000.0)
    sim.run(1.0)
    assert _after(rec["cmds"], time.monotonic() - 0.4), "no commands flowing before the test"
    sim.live = {"wrist"}
    sim.run(0.05)
    stopped_at = sim.last_frame["third_person"]
    sim.jump_to(20.0)
    sim.run(2.0)
    late = [at - stopped_at for at, _ in rec["cmds"] if at > stopped_at + STOP_WITHIN_S]
    assert not late, f"commands {[round(x, 3) for x in late]} s after the camera went silent across the jump"
    sim.live = set(CAMERAS)
    t = time.monotonic()
    wait_for(lambda: (sim.run(0.05), len(_after(rec["cmds"], t)) >= 3)[1], 10, None, "commands again", [node])
