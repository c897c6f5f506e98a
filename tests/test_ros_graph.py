"""The nodes as separate processes on a real ROS 2 graph (real rclpy, Fast DDS over UDPv4).

Each node is its console script (``.venv/bin/<node> --ros-args -p ...``) with exactly the
parameters a launch file passes (evaluated from ``launch/*.launch.py``, tests/_ros_graph.py);
the test itself is a probe node on the same (test-private) ROS_DOMAIN_ID. Checkpoints are
tiny random ones: what is checked is the graph (rates, stamps, safety, shutdown), not skill.

Processes are shared within a module-scoped fixture (starting a node means importing torch
and loading a checkpoint: tens of seconds on a loaded 2-core machine), and the tests of one
group run in file order.
"""

import json
import signal
import time

import numpy as np
import pytest

from _ros_graph import (
    NodeProc, Probe, forget_node_modules_bound_to_the_double, fresh_domain, launch_node_params, require_rclpy, wait_for,
)

require_rclpy()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Bool, Int64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from lam_ros.ros_conversions import fill_image, fill_joint_state, fill_pose_stamped, multiarray_to_numpy, stamp_to_sec  # noqa: E402

CAMERAS = ["third_person", "wrist"]  # the tiny VLA's cameras (tests/_vla_helpers.py)
START_TIMEOUT = 150.0  # node start = torch import + checkpoint load, on a shared 2-core machine


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    import torch

    from _lam_helpers import tiny_config
    from _vla_helpers import make_action_checkpoint
    from models.lam import LatentActionModel, save_lam

    root = tmp_path_factory.mktemp("ckpt")
    vla = make_action_checkpoint(root / "vla")
    nan_vla = make_action_checkpoint(root / "vla_nan")
    # a broken policy: every weight of the action head NaN -> NaN actions
    from safetensors.torch import load_file, save_file

    weights = load_file(nan_vla / "model.safetensors")
    save_file({k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v) for k, v in weights.items()},
              str(nan_vla / "model.safetensors"))
    torch.manual_seed(0)
    lam = root / "lam"
    save_lam(LatentActionModel(tiny_config(views=CAMERAS)), lam)  # 32x32 input; the sim renders 80x64
    return {"vla": str(vla), "vla_nan": str(nan_vla), "lam": str(lam)}


def no_traceback(proc):
    out = proc.output()
    assert "Traceback" not in out and "ExternalShutdownException" not in out, f"{proc.name}:\n{out[-3000:]}"


def safety_counts(diag_msgs):
    """(time, {sent, blocked, ...}) of each policy_node safety diagnostics message."""
    out = []
    for t, msg in diag_msgs:
        for st in msg.status:
            if st.name.startswith("policy_node") and "safety" in st.name:
                out.append((t, {kv.key: kv.value for kv in st.values}))
    return out


# ------------------------------------------------ 1, 2: sim.launch.py + record.launch.py ---

@pytest.fixture(scope="module")
def loop(checkpoints, tmp_path_factory):
    """sim_node + policy_node + latent_action_node as sim.launch.py starts them (latent actions on,
    80x64 renders for 32x32 / processor-sized models), plus recorder_node as record.launch.py does."""
    logs = tmp_path_factory.mktemp("loop_logs")
    domain = fresh_domain()
    sim_args = dict(checkpoint=checkpoints["vla"], lam_checkpoint=checkpoints["lam"], with_latent_actions="true",
                    cameras=",".join(CAMERAS), image_size="80x64", max_steps="10",
                    instruction="put the carrot on the plate")
    procs = {exe: NodeProc(exe, launch_node_params("sim.launch.py", exe, **sim_args), domain, logs)
             for exe in ("sim_node", "policy_node", "latent_action_node")}
    dataset = tmp_path_factory.mktemp("rec") / "dataset"
    procs["recorder_node"] = NodeProc("recorder_node", launch_node_params(
        "record.launch.py", "recorder_node", output_dir=str(dataset), cameras=",".join(CAMERAS), fps="5.0",
        task="put the carrot on the plate"), domain, logs)
    probe = Probe(domain)
    rec = {
        "cmds": probe.collect(PoseStamped, "ee_command"),
        "latent": probe.collect(Int64MultiArray, "latent_actions/codes"),
        "outcome": probe.collect(String, "sim_node/episode_outcome",
                                 QoSProfile(depth=50, durability=DurabilityPolicy.TRANSIENT_LOCAL)),
        "diag": probe.collect(DiagnosticArray, "/diagnostics"),
        "images": probe.collect(Image, "third_person/image_raw", qos_profile_sensor_data),
    }
    try:
        wait_for(lambda: rec["cmds"] and rec["latent"], START_TIMEOUT, probe.spin,
                 "the first command and latent action", list(procs.values()))
        yield {"procs": procs, "probe": probe, "rec": rec, "dataset": dataset}
    finally:
        probe.close()
        for p in procs.values():
            p.kill()


def test_closed_loop_sends_commands_latent_actions_and_reports_episodes(loop):
    probe, rec = loop["probe"], loop["rec"]
    first = safety_counts(rec["diag"])
    wait_for(lambda: len(safety_counts(rec["diag"])) >= len(first) + 5, 30, probe.spin, "5 s of diagnostics",
             list(loop["procs"].values()))
    lat0, t0 = len(rec["latent"]), time.monotonic()
    probe.spin(4.0)
    lat_rate = (len(rec["latent"]) - lat0) / (time.monotonic() - t0)
    counts = safety_counts(rec["diag"])
    (_, a), (_, b) = counts[len(first)], counts[-1]
    sent = int(b["sent"]) - int(a["sent"])
    blocked = int(b["blocked"]) - int(a["blocked"])
    assert sent + blocked >= 20, (a, b)
    assert sent / (sent + blocked) >= 0.95, f"only {sent} of {sent + blocked} control ticks sent a command"
    # latent actions at the camera rate (30 Hz: each new synchronised set pairs with the one 0.6 s before)
    assert 15.0 <= lat_rate <= 36.0, f"latent actions at {lat_rate:.1f} Hz"
    # ... carrying the stamp of a real camera frame set. The probe's own BEST_EFFORT image
    # subscription may miss a frame on a loaded machine (one missed frame failed a single-latent
    # check once at load ~5): most latent actions, not necessarily the last, carry a stamp it saw.
    probe.spin(0.5)
    image_stamps = {round(stamp_to_sec(m.header.stamp), 6) for _, m in rec["images"]}
    latent_stamps = [round(multiarray_to_numpy(m, np.int64)[1], 6) for _, m in rec["latent"][lat0:]]
    seen = sum(s in image_stamps for s in latent_stamps)
    assert latent_stamps and seen >= 0.8 * len(latent_stamps), f"{seen} of {len(latent_stamps)} latent stamps are frame stamps"
    # the episode outcome is reported (10-step episodes at 5 Hz)
    wait_for(lambda: rec["outcome"], 10, probe.spin, "an episode outcome")
    outcome = json.loads(rec["outcome"][-1][1].data)
    assert outcome["steps"] == 10 and outcome["reason"] == "step limit" and isinstance(outcome["success"], bool)


def test_recorder_services_and_sigkill_lose_only_the_open_episode(loop):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lam_ros.recording.writer import recover

    probe, recorder = loop["probe"], loop["procs"]["recorder_node"]
    name = "/recorder_node/"
    for action in ("start_episode", "stop_episode", "start_episode", "discard_episode", "start_episode",
                   "stop_episode", "start_episode"):
        reply = probe.call(Trigger, name + action)
        assert reply.success, f"{action}: {reply.message}"
        if action == "start_episode":
            probe.spin(1.5)  # ~7 frames at 5 fps
    probe.spin(1.0)
    recorder.proc.send_signal(signal.SIGKILL)
    recorder.proc.wait(10)
    recover(loop["dataset"])
    ds = LeRobotDataset("local/lam_ros_live", root=loop["dataset"], video_backend="pyav")
    assert ds.meta.total_episodes == 2
    assert ds.num_frames >= 8
    item = ds[0]
    assert tuple(item[f"observation.images.{CAMERAS[0]}"].shape) == (3, 64, 80)


def test_sigint_and_sigterm_exit_cleanly_closed_loop(loop):
    procs = loop["procs"]
    for exe, sig in (("sim_node", signal.SIGTERM), ("latent_action_node", signal.SIGINT),
                     ("policy_node", signal.SIGINT)):
        assert procs[exe].stop(sig) == 0, procs[exe].output()[-3000:]
        no_traceback(procs[exe])


# ------------------------------------------ 3, 4, 5: safety, shutdown and QoS on a live graph ---

class Feeder:
    """The probe as cameras (BEST_EFFORT, like drivers) and robot state for a policy_node."""

    def __init__(self, probe, prefix="", qos=qos_profile_sensor_data):
        node = probe.node
        self.probe = probe
        self.cams = {c: node.create_publisher(Image, f"{prefix}{c}/image_raw", qos) for c in CAMERAS}
        self.pose = node.create_publisher(PoseStamped, f"{prefix}ee_pose", 10)
        self.joints = node.create_publisher(JointState, f"{prefix}joint_states", 10)
        self.img = np.full((64, 80, 3), 90, np.uint8)
        self.live = set(CAMERAS)
        self.last_frame = {}

    def publish(self, stamp_offset=None):
        t = self.probe.now()
        for c in self.live:
            st = t + (stamp_offset or {}).get(c, 0.0)
            self.cams[c].publish(fill_image(Image(), self.img, st, c))
            self.last_frame[c] = time.monotonic()
        self.pose.publish(fill_pose_stamped(PoseStamped(), [0.3, 0.0, 0.2, 0.0, 1.2, 0.0], t))
        self.joints.publish(fill_joint_state(JointState(), ["waist", "shoulder", "elbow", "forearm_roll",
                                                            "wrist_angle", "wrist_rotate", "gripper"], np.zeros(7), t))

    def run(self, seconds, hz=30.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.publish()
            self.probe.spin(1.0 / hz)


@pytest.fixture(scope="module")
def live(checkpoints, tmp_path_factory):
    logs = tmp_path_factory.mktemp("live_logs")
    dataset = tmp_path_factory.mktemp("rec2") / "ds"
    domain = fresh_domain()
    base = launch_node_params("policy.launch.py", "policy_node", checkpoint=checkpoints["vla"], dry_run="false",
                              publish_driver="false", control_hz="10.0", stale_after_s="0.2",
                              instruction="put the carrot on the plate", ee_pose_topic="ee_pose",
                              joint_states_topic="joint_states", ee_pose_type="PoseStamped")
    procs = {
        "policy": NodeProc("policy_node", base, domain, logs),
        # NaN policy + camera_qos reliable, on its own topics under /rel
        "nan": NodeProc("policy_node", {**base, "checkpoint": checkpoints["vla_nan"], "camera_qos": "reliable"},
                        domain, logs, name="policy_node_nan", ros_args=("-r", "__ns:=/rel")),
        "recorder": NodeProc("recorder_node", launch_node_params(
            "record.launch.py", "recorder_node", output_dir=str(dataset),
            cameras=",".join(CAMERAS), task="hold still"), domain, logs),
        # idle nodes, only to check their shutdown with the other signal than in the closed loop
        "sim": NodeProc("sim_node", {"cameras": "wrist", "image_size": "64x64"}, domain, logs,
                        ros_args=("-r", "__ns:=/idle")),
        "latent": NodeProc("latent_action_node", {"checkpoint": checkpoints["lam"], "cameras": ""}, domain, logs,
                           ros_args=("-r", "__ns:=/idle")),
    }
    probe = Probe(domain)
    feeder = Feeder(probe)
    rec = {"cmds": probe.collect(PoseStamped, "ee_command"), "nan_cmds": probe.collect(PoseStamped, "/rel/ee_command")}
    try:
        def started():
            feeder.publish()
            return rec["cmds"]

        wait_for(started, START_TIMEOUT, probe.spin, "the first command", list(procs.values()))
        yield {"procs": procs, "probe": probe, "feeder": feeder, "rec": rec, "dataset": dataset}
    finally:
        probe.close()
        for p in procs.values():
            p.kill()


def test_a_silent_camera_stops_commands_within_one_control_period(live):
    feeder, cmds = live["feeder"], live["rec"]["cmds"]
    feeder.run(1.0)
    assert cmds and time.monotonic() - cmds[-1][0] < 0.5
    feeder.live = {"wrist"}  # third_person stops
    feeder.run(1.5)
    stopped_at = feeder.last_frame["third_person"]
    late = [t for t, _ in cmds if t > stopped_at]
    # stale after 0.2 s, checked every control period (0.1 s), + DDS/scheduling slack
    assert all(t - stopped_at <= 0.2 + 0.1 + 0.15 for t in late), [round(t - stopped_at, 3) for t in late]
    assert "stale inputs" in live["procs"]["policy"].output()
    feeder.live = set(CAMERAS)


def test_estop_halts_output_until_the_reset_service(live):
    probe, feeder, cmds = live["probe"], live["feeder"], live["rec"]["cmds"]
    estop = probe.node.create_publisher(Bool, "estop", 10)
    feeder.run(0.5)
    wait_for(lambda: cmds and time.monotonic() - cmds[-1][0] < 0.3, 10, lambda s: feeder.run(s), "commands flowing")
    estop.publish(Bool(data=True))
    feeder.run(0.3)
    n = len(cmds)
    estop.publish(Bool(data=False))  # releasing the button does not reset the latch
    feeder.run(1.0)
    assert len(cmds) <= n + 1  # at most one command already in flight
    n = len(cmds)
    assert probe.call(Trigger, "/policy_node/reset_estop").success
    feeder.run(1.0)
    assert len(cmds) >= n + 5


def test_future_stamped_frame_neither_freezes_input_nor_disables_watchdog(live):
    feeder, cmds = live["feeder"], live["rec"]["cmds"]
    feeder.run(0.5)
    feeder.publish(stamp_offset={"third_person": 30.0})  # one frame 30 s in the future
    n = len(cmds)
    wait_for(lambda: len(cmds) >= n + 6, 15, lambda s: feeder.run(s),
             "commands after a future-stamped frame (input frozen?)", [live["procs"]["policy"]])
    feeder.live = {"wrist"}
    feeder.run(1.0)
    stopped_at = feeder.last_frame["third_person"]
    assert not [t for t, _ in cmds if t > stopped_at + 0.45], "watchdog disabled by a future-stamped frame"
    assert "in the future" in live["procs"]["policy"].output()
    feeder.live = set(CAMERAS)


def test_camera_time_jumping_back_does_not_freeze_the_input(live):
    """A camera whose clock jumps back (its simulator was reset) and then runs on: its frames are
    fresh again as soon as they are stamped near now; the frames stamped 'earlier' do not freeze
    the input, and the watchdog judges them by their real age."""
    feeder, cmds = live["feeder"], live["rec"]["cmds"]
    feeder.run(0.3)
    feeder.publish(stamp_offset={"third_person": -5.0, "wrist": -5.0})  # a jump back: 5 s old
    n = len(cmds)
    wait_for(lambda: len(cmds) >= n + 6, 15, lambda s: feeder.run(s), "commands after the jump back",
             [live["procs"]["policy"]])


def test_nan_policy_never_publishes_and_reliable_node_warns_about_best_effort_camera(live):
    probe = live["probe"]
    # reliable cameras for the reliable node: it receives, the policy outputs NaN, nothing leaves
    rel = Feeder(probe, prefix="/rel/", qos=QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    # ... and a BEST_EFFORT camera on the same topic: an incompatible QoS, which must be logged
    probe.node.create_publisher(Image, "/rel/wrist/image_raw", qos_profile_sensor_data)
    nan_node = live["procs"]["nan"]
    wait_for(lambda: (rel.run(0.2), "non-finite" in nan_node.output())[1], 60, None, "the NaN policy's refusal",
             [nan_node])
    rel.run(1.0)
    assert live["rec"]["nan_cmds"] == []
    wait_for(lambda: "incompatible QoS" in nan_node.output(), 10, probe.spin, "the incompatible-QoS warning")
    assert "camera_qos:=sensor_data" in nan_node.output()


def test_sigint_and_sigterm_exit_cleanly_and_recorder_saves_its_episode(live):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    procs, probe, feeder = live["procs"], live["probe"], live["feeder"]
    assert probe.call(Trigger, "/recorder_node/start_episode").success
    feeder.run(1.5)
    for key, sig in (("recorder", signal.SIGTERM), ("policy", signal.SIGTERM), ("nan", signal.SIGTERM),
                     ("sim", signal.SIGINT), ("latent", signal.SIGTERM)):
        assert procs[key].stop(sig) == 0, procs[key].output()[-3000:]
        no_traceback(procs[key])
    assert "saving the episode" in procs["recorder"].output()
    ds = LeRobotDataset("local/lam_ros_live", root=live["dataset"], video_backend="pyav")
    assert ds.meta.total_episodes == 1 and ds.num_frames >= 3


# ------------------------------- camera frames are taken while the control tick runs ---

class _SlowPolicy:
    """A policy whose step takes ``delay_s`` (a big model on a slow machine)."""

    cameras = CAMERAS

    def __init__(self, delay_s):
        self.delay_s = delay_s

    def act(self, images, instruction):
        time.sleep(self.delay_s)
        return np.zeros(7)


def _frames_taken_during_slow_ticks(multithreaded: bool, tmp_path, depth: int | None = None,
                                    control_hz: float = 5.0) -> tuple[int, int]:
    """A PolicyNode (real rclpy, in this process) whose tick takes 0.5 s, spun like run_node spins
    it (MultiThreadedExecutor with ``node.spin_threads``) or single-threaded; the probe publishes
    80x64 frames at 30 Hz for 3 s. ``depth``: camera_queue_depth (None: the node's default).
    Returns (frames published, frames the node received)."""
    import threading

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.parameter import Parameter

    forget_node_modules_bound_to_the_double()
    from lam_ros.nodes.policy_node import PolicyNode

    domain = fresh_domain()
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    params = {"publish_driver": False, "dry_run": True, "control_hz": control_hz, "instruction": "x",
              "ee_pose_topic": "ee_pose", "joint_states_topic": "joint_states", "ee_pose_type": "PoseStamped",
              "input_threads": 2 if multithreaded else 1}
    if depth is not None:
        params["camera_queue_depth"] = depth
    node = PolicyNode(policy=_SlowPolicy(0.5), context=ctx,
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    executor = (MultiThreadedExecutor(num_threads=node.spin_threads, context=ctx) if multithreaded
                else SingleThreadedExecutor(context=ctx))
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    probe = Probe(domain, "slow_tick_probe")
    try:
        feeder = Feeder(probe)
        wait_for(lambda: all(p.get_subscription_count() >= 1 for p in feeder.cams.values()), 20, probe.spin,
                 "the node's camera subscriptions")
        feeder.run(1.5)  # ticks are running (inputs complete) before counting
        probe.spin(1.0)
        before = dict(node.frames_received)
        n = 0
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            feeder.publish()
            n += 1
            probe.spin(1 / 30)
        probe.spin(1.5)  # the last ticks finish, the frames still in DDS's reader history are taken
        got = sum(node.frames_received[c] - before[c] for c in CAMERAS)
        assert node.controller.ticks >= 3, "the slow policy never ran"
        return n * len(CAMERAS), got
    finally:
        probe.close()
        executor.shutdown()
        spinner.join(10)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_camera_frames_are_taken_while_a_slow_control_tick_runs(tmp_path):
    """A 0.5 s tick must not cost camera frames.

    - Tick shorter than the control period (1 Hz): spun by one thread with the sensor-data depth
      of 5 (166 ms at 30 Hz), the reader history is overwritten while the tick blocks (the loss
      docs/ros.md measured); the default camera_queue_depth of 30 (1 s) holds them until the
      executor is free again.
    - Tick longer than the period (5 Hz): the timer is always due, and a single-threaded executor
      takes about one frame per camera per tick whatever the depth; the cameras in their own
      callback group on run_node's MultiThreadedExecutor (input_threads:=2) are taken meanwhile."""
    # 0.9, not 0.95: sensor-data QoS is best effort, and on a loaded 2-core CI machine a fresh-clone run lost
    # 2 of 28 frames over DDS itself; the failures this guards against lose far more
    published, got = _frames_taken_during_slow_ticks(False, tmp_path, depth=5, control_hz=1.0)
    assert got < 0.8 * published, f"single-threaded, depth 5: {got} of {published} (the cause this guards against)"
    published, got = _frames_taken_during_slow_ticks(False, tmp_path, control_hz=1.0)
    assert got >= 0.9 * published, f"single-threaded, default queue depth: received {got} of {published} frames"
    published, got = _frames_taken_during_slow_ticks(True, tmp_path, depth=5)
    assert got >= 0.9 * published, f"multi-threaded, depth 5: received {got} of {published} frames"
