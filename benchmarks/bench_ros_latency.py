"""Camera-to-command latency over real DDS, separate processes.

This process publishes N cameras (default 3 x 640x480 at 30 Hz, raw ``sensor_msgs/Image`` or
JPEG ``CompressedImage``, BEST_EFFORT like camera drivers) plus the robot state; ``policy_node``
runs as its own process (console script, real rclpy + Fast DDS) with a tiny random VLA and
publishes ``~/camera_to_command`` (seconds from the oldest frame a command used to its
publication) and, in /diagnostics, how many frames of each camera it received.

    MUJOCO_GL=egl HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_ros_latency.py \\
        --transport raw --dds 'UDPv4?sockets_size=4MB' --seconds 20 --out outputs/bench_ros_raw.json

Reports p50 / p99 latency, the sustained command rate and the camera frames lost (published
here, never received by policy_node), and where: the frames DDS reported lost to policy_node
(message-lost event), the frames an idle witness subscriber process (``--witness``, started
here) missed, policy_node's longest tick, and this process' publish time. ``--dds`` sets
``FASTDDS_BUILTIN_TRANSPORTS`` (UDPv4, SHM, DEFAULT, LARGE_DATA, with Fast DDS's options such
as ``UDPv4?sockets_size=4MB`` or ``LARGE_DATA?max_msg_size=1MB&sockets_size=4MB``) for every
process. Results: docs/ros.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))


def witness(out: str, cams: list[str], transport: str) -> int:
    """An independent, idle subscriber process (no model, nothing else to do): which frames reach
    *a* subscriber at all. Records every stamp received per camera and DDS's message-lost count,
    written to ``out`` as JSON at SIGINT/SIGTERM."""
    import rclpy
    from rclpy.event_handler import SubscriptionEventCallbacks
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image

    rclpy.init()
    node = rclpy.create_node("bench_witness")
    msg_type = CompressedImage if transport == "compressed" else Image
    topic = "/image_raw/compressed" if transport == "compressed" else "/image_raw"
    stamps = {c: [] for c in cams}
    lost = {c: 0 for c in cams}

    def on_lost(c):
        def cb(info):
            lost[c] += int(info.total_count_change)
        return cb

    for c in cams:
        node.create_subscription(
            msg_type, c + topic, lambda m, c=c: stamps[c].append(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec),
            qos_profile_sensor_data, event_callbacks=SubscriptionEventCallbacks(message_lost=on_lost(c)))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        Path(out).write_text(json.dumps({"stamps": stamps, "lost_dds": lost}))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), for the CPU share a process got in the window."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def closed_loop(args) -> int:
    """The closed loop of sim.launch.py: is every frame the simulator publishes taken by policy_node?"""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from _ros_graph import NodeProc, Probe, fresh_domain, launch_node_params, wait_for
    from _vla_helpers import make_action_checkpoint
    from lam_ros.ros_conversions import stamp_to_sec

    work = Path(tempfile.mkdtemp(prefix="bench_ros_loop_"))
    cams = ["third_person", "wrist"]  # the tiny VLA's
    size = args.sim_size
    launch = dict(checkpoint=str(make_action_checkpoint(work / "vla")), instruction="put the carrot on the plate",
                  image_size=size, camera_hz=str(args.camera_hz), control_hz=str(args.control_hz))
    domain = fresh_domain()
    procs = [NodeProc(exe, launch_node_params("sim.launch.py", exe, **launch), domain, work,
                      extra_env={"FASTDDS_BUILTIN_TRANSPORTS": args.dds}) for exe in ("sim_node", "policy_node")]
    probe = Probe(domain, "bench_loop_probe")
    images = {c: probe.collect(Image, f"{c}/image_raw", qos_profile_sensor_data) for c in cams}
    diag, cmds = probe.collect(DiagnosticArray, "/diagnostics"), probe.collect(PoseStamped, "ee_command")

    def counts():
        for _, m in reversed(diag):
            for st in m.status:
                v = {kv.key: kv.value for kv in st.values}
                if f"frames_received.{cams[0]}" in v:
                    return {**{k: int(float(x)) for k, x in v.items() if k.startswith(("frames_", "sent", "blocked"))},
                            "t": stamp_to_sec(m.header.stamp)}
        return None

    try:
        wait_for(lambda: cmds, 300, probe.spin, "policy_node's first command", procs)
        probe.spin(3.0)
        c0 = counts()
        probe.spin(args.seconds)
        c1 = counts()
        probe.spin(0.5)
    finally:
        probe.close()
        rcs = {p.name: p.stop() for p in procs}
    ta, tb = c0["t"], c1["t"]
    result = {"closed_loop": True, "dds": args.dds, "image_size": size, "camera_hz": args.camera_hz,
              "window_s": round(tb - ta, 2), "exit_codes": rcs, "ticks_sent": c1["sent"] - c0["sent"],
              "ticks_blocked": c1["blocked"] - c0["blocked"],
              "load_average": Path("/proc/loadavg").read_text().split()[:3]}
    for c in cams:
        st = np.array(sorted({round(stamp_to_sec(m.header.stamp), 6) for _, m in images[c]}))
        st = st[(st > ta - 0.02) & (st <= tb - 0.02)]  # published in the window (frames reach the node in ~ms)
        result[c] = {"published_seen_by_probe": int(st.size), "published_hz": round(st.size / (tb - ta), 2),
                     "largest_gap_ms": round(float(np.diff(st).max() * 1e3), 1) if st.size > 1 else None,
                     "taken_by_policy_node": c1[f"frames_received.{c}"] - c0[f"frames_received.{c}"],
                     "dds_lost_at_policy_node": c1.get(f"frames_lost_dds.{c}", 0) - c0.get(f"frames_lost_dds.{c}", 0)}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--witness":
        return witness(sys.argv[2], sys.argv[3].split(","), sys.argv[4])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--transport", choices=("raw", "compressed"), default="raw")
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--camera-hz", type=float, default=30.0)
    ap.add_argument("--control-hz", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured duration (after warm-up)")
    ap.add_argument("--dds", default=os.environ.get("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4"),
                    help="FASTDDS_BUILTIN_TRANSPORTS for both processes")
    ap.add_argument("--checkpoint", default="", help="VLA checkpoint (default: a tiny random one, built here)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--camera-queue-depth", type=int, default=30,
                    help="policy_node's camera_queue_depth (frames held per camera during a tick; 5 = sensor-data QoS)")
    ap.add_argument("--out", default="")
    ap.add_argument("--closed-loop", action="store_true",
                    help="instead: sim_node + policy_node as sim.launch.py starts them (tiny VLA, its 2 cameras, "
                         "--sim-size renders); frames the simulator published (seen by an idle probe) against "
                         "frames policy_node took")
    ap.add_argument("--sim-size", default="128x128", help="--closed-loop: sim_node's image_size (WxH)")
    args = ap.parse_args(argv)
    os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = args.dds
    if args.closed_loop:
        return closed_loop(args)

    import cv2
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, Image, JointState
    from std_msgs.msg import Float32

    from _ros_graph import NodeProc, Probe, fresh_domain, launch_node_params, wait_for
    from lam_ros.ros_conversions import fill_header, fill_image, fill_joint_state, fill_pose_stamped

    work = Path(tempfile.mkdtemp(prefix="bench_ros_"))
    cams = ["third_person", "wrist", "side"][: args.cameras] + [f"cam{i}" for i in range(3, args.cameras)]
    checkpoint = args.checkpoint
    if not checkpoint:
        import torch

        from _vla_helpers import fake_actions
        from models.vla import VLA, ActionNormalizer, VLAConfig

        torch.manual_seed(0)
        model = VLA.create(VLAConfig(cameras=cams, robot="widowx", chunk_size=5, stage="action"))
        model.normalizer = ActionNormalizer.fit(fake_actions())
        checkpoint = str(model.save(work / "vla"))
    domain = fresh_domain()
    params = launch_node_params(
        "policy.launch.py", "policy_node", checkpoint=checkpoint, device=args.device, cameras=",".join(cams),
        image_transport=args.transport, control_hz=str(args.control_hz), instruction="put the carrot on the plate",
        dry_run="true", publish_driver="false", ee_pose_topic="ee_pose", joint_states_topic="joint_states",
        ee_pose_type="PoseStamped", camera_queue_depth=str(args.camera_queue_depth))
    node = NodeProc("policy_node", params, domain, work, extra_env={"FASTDDS_BUILTIN_TRANSPORTS": args.dds})
    witness_out = work / "witness.json"
    wit = subprocess.Popen(
        [sys.executable, __file__, "--witness", str(witness_out), ",".join(cams), args.transport],
        env=dict(os.environ, ROS_DOMAIN_ID=str(domain), OMP_NUM_THREADS="1"), cwd=REPO)
    probe = Probe(domain, "bench_cameras")
    msg_type = CompressedImage if args.transport == "compressed" else Image
    topic = "/image_raw/compressed" if args.transport == "compressed" else "/image_raw"
    pubs = {c: probe.node.create_publisher(msg_type, c + topic, qos_profile_sensor_data) for c in cams}
    pose_pub = probe.node.create_publisher(PoseStamped, "ee_pose", 10)
    js_pub = probe.node.create_publisher(JointState, "joint_states", 10)
    lat, diag = probe.collect(Float32, "/policy_node/camera_to_command"), probe.collect(DiagnosticArray, "/diagnostics")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8) for _ in range(4)]
    jpegs = [cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in frames]
    published = {c: 0 for c in cams}
    sent_stamps: dict[str, list[int]] = {c: [] for c in cams}
    publish_s: list[float] = []
    k = [0]

    def publish_all():
        t0 = time.perf_counter()
        t = probe.now()
        i = k[0] % len(frames)
        for c, pub in pubs.items():
            if args.transport == "compressed":
                m = CompressedImage()
                fill_header(m.header, t, c)
                m.format = "rgb8; jpeg compressed bgr8"
                m.data = jpegs[i]
            else:
                m = fill_image(Image(), frames[i], t, c)
            pub.publish(m)
            published[c] += 1
            sent_stamps[c].append(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec)
        pose_pub.publish(fill_pose_stamped(PoseStamped(), [0.3, 0.0, 0.2, 0.0, 1.2, 0.0], t))
        js_pub.publish(fill_joint_state(JointState(), ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle",
                                                       "wrist_rotate", "gripper"], np.zeros(7), t))
        k[0] += 1
        publish_s.append(time.perf_counter() - t0)

    def run(seconds):
        period = 1.0 / args.camera_hz
        nxt = time.monotonic()
        end = nxt + seconds
        while time.monotonic() < end:
            publish_all()
            nxt += period
            probe.spin(max(0.0, nxt - time.monotonic()))

    def received(prefix="frames_received."):
        for _, m in reversed(diag):
            for st in m.status:
                vals = {kv.key: kv.value for kv in st.values}
                if any(key.startswith("frames_received.") for key in vals):
                    return {c: int(vals.get(f"{prefix}{c}", 0)) for c in cams}
        return None

    def max_tick_ms(t_from, t_to):
        out = []
        for t, m in diag:
            if t_from <= t <= t_to:
                for st in m.status:
                    out += [float(kv.value) for kv in st.values if kv.key == "max_tick_ms"]
        return max(out) if out else None

    try:
        wait_for(lambda: (run(0.2), lat)[1], 300, None, "policy_node's first command", [node])
        run(2.0)  # warm-up
        probe.spin(2.5)  # quiet: the next diagnostics count every frame received so far
        lat0, pub0, rec0, dds0 = len(lat), dict(published), received(), received("frames_lost_dds.")
        win0 = {c: len(v) for c, v in sent_stamps.items()}
        pubt0 = len(publish_s)
        cpu0 = {k: cpu_seconds(pid) for k, pid in (("policy_node", node.proc.pid), ("witness", wit.pid))}
        t0 = time.monotonic()
        run(args.seconds)
        elapsed = time.monotonic() - t0
        cpu1 = {k: cpu_seconds(pid) for k, pid in (("policy_node", node.proc.pid), ("witness", wit.pid))}
        t1 = time.monotonic()
        probe.spin(2.5)  # let the last diagnostics arrive
        rec1, dds1 = received(), received("frames_lost_dds.")
        tick_ms = max_tick_ms(t0 + 1.0, t1 + 1.0)
    finally:
        node.stop()
        wit.send_signal(signal.SIGINT)
        wit.wait(20)
        probe.close()
    window_stamps = {c: set(sent_stamps[c][win0[c]:]) for c in cams}
    wit_data = json.loads(witness_out.read_text()) if witness_out.exists() else None
    witness_lost = ({c: len(window_stamps[c] - set(wit_data["stamps"][c])) for c in cams}
                    if wit_data is not None else None)
    pub_ms = np.array(publish_s[pubt0:]) * 1e3
    window = np.array([m.data for _, m in lat[lat0:]], dtype=np.float64)
    pub_n = {c: published[c] - pub0[c] for c in cams}
    # frames of the window (quiet before and after it, so the once-a-second counts are complete)
    lost = {c: pub_n[c] - (rec1[c] - rec0[c]) for c in cams} if rec0 and rec1 else None
    result = {
        "transport": args.transport, "dds": args.dds, "cameras": len(cams), "size": f"{args.width}x{args.height}",
        "camera_hz": args.camera_hz, "control_hz": args.control_hz, "seconds": round(elapsed, 2),
        "commands": int(window.size), "sustained_command_hz": round(window.size / elapsed, 2),
        "latency_p50_ms": round(float(np.percentile(window, 50) * 1e3), 1) if window.size else None,
        "latency_p99_ms": round(float(np.percentile(window, 99) * 1e3), 1) if window.size else None,
        "latency_max_ms": round(float(window.max() * 1e3), 1) if window.size else None,
        "camera_published_hz": round(sum(pub_n.values()) / len(cams) / elapsed, 2),
        "frames_published": sum(pub_n.values()), "frames_lost": None if lost is None else sum(lost.values()),
        "lost_per_camera": lost,
        # the same window, seen by an idle second subscriber process (no model): lost before any node
        "witness_frames_lost": None if witness_lost is None else sum(witness_lost.values()),
        "witness_lost_per_camera": witness_lost,
        # samples DDS itself reports lost at policy_node (gaps, incomplete fragments); the rest of
        # "frames_lost" arrived and was overwritten in the KEEP_LAST reader history before it was taken
        "policy_node_dds_lost": None if not (dds0 and dds1) else sum(dds1[c] - dds0[c] for c in cams),
        "policy_node_max_tick_ms": tick_ms,
        # CPU cores each process got on average in the window (its need, where it is not starved)
        "cpu_cores": {k: round((cpu1[k] - cpu0[k]) / elapsed, 2) if cpu0[k] is not None and cpu1[k] is not None
                      else None for k in cpu0},
        "load_average": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None,
        "publish_ms_p50": round(float(np.percentile(pub_ms, 50)), 2) if pub_ms.size else None,
        "publish_ms_max": round(float(pub_ms.max()), 2) if pub_ms.size else None,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
