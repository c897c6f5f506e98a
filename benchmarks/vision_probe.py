"""Does the VLA's frozen vision trunk see where the objects are? A linear probe, per camera.

The policy ladder (docs/policy_ladder.md) shows the privileged-state MLP at about 74 % and the
camera VLA at 4-40 % on the same episodes, with the camera policies moving the wrong object. This
benchmark asks whether the information is in the trunk's features at all: it reads recorded
labelled episodes, passes every frame through the same resize path and frozen EfficientNet-Lite0
trunk as the VLA (``models.image_prep.resize_images``, ``models.pretrained_vision``), and fits a
ridge regression (closed form, episode-wise train / test split: no frame of a test episode is
seen in training) from the features to

  * the source and target objects' xy on the table (``observation.environment_state``),
  * the source object's xy relative to the end effector (what a grasp needs),

reported as held-out RMSE in cm beside the predict-the-mean baseline. Feature variants: the full
spatial grid (what the VLA's tokens carry) and its global average (what survives without
positions). Comparing datasets recorded at different image sizes, on the same seeds, measures
what the 64 px renders cost.

Example (two datasets recorded with the same seeds at 64 and 128 px):

    python benchmarks/vision_probe.py --dataset outputs/probe/carrot64 --dataset outputs/probe/carrot128 \
        --cameras third_person,wrist --out docs/vision_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CM = 100.0
# observation.environment_state: per task object xyz + quaternion (lam_ros.recording.sim.env_state_names)
SOURCE_XY, TARGET_XY = slice(0, 2), slice(7, 9)


def trunk_features(images: np.ndarray, trunk, image_size: int, batch: int = 64) -> np.ndarray:
    """uint8 (N, H, W, 3) -> (N, C, h, w) float32 trunk features, through the VLA's resize path and
    the processor's normalisation (mean 0.5, std 0.5)."""
    from models.image_prep import resize_images

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = resize_images(images[i:i + batch], image_size)
            x = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            out.append(trunk.features(x).numpy().astype(np.float32))
    return np.concatenate(out)


class Ridge:
    """Closed-form ridge regression on standardised features (dual form when features outnumber
    samples); alpha chosen on the last quarter of the training rows (rows are in episode order,
    so that is a split by episode too). Written out because it is six lines of linear algebra
    and the project does not otherwise depend on scikit-learn."""

    def __init__(self, x: np.ndarray, y: np.ndarray, alphas=(1e-1, 1, 10, 100, 1000)):
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        self.ym = y.mean(0)
        z = (x - self.mu) / self.sd
        cut = int(len(z) * 0.75)
        self.alpha = min(alphas, key=lambda al: float(np.mean(
            (z[cut:] @ self._solve(z[:cut], y[:cut], al) - (y[cut:] - self.ym)) ** 2)))
        self.w = self._solve(z, y, self.alpha)

    def _solve(self, z: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
        b = y - self.ym
        if z.shape[1] > z.shape[0]:  # w = Z^T (Z Z^T + alpha I)^-1 b
            return z.T @ np.linalg.solve(z @ z.T + alpha * np.eye(len(z)), b)
        return np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ b)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mu) / self.sd @ self.w + self.ym

    def rmse_cm(self, x: np.ndarray, y: np.ndarray) -> list[float]:
        return (np.sqrt(((self.predict(x) - y) ** 2).mean(0)) * CM).round(2).tolist()


def ridge_rmse(x: np.ndarray, y: np.ndarray, train: np.ndarray) -> dict:
    """Fit on the ``train`` rows, report test RMSE per target beside the mean-prediction baseline's."""
    probe = Ridge(x[train], y[train])
    base = y[~train] - y[train].mean(0)
    return {"alpha": probe.alpha, "rmse_cm": probe.rmse_cm(x[~train], y[~train]),
            "baseline_cm": (np.sqrt((base ** 2).mean(0)) * CM).round(2).tolist()}


def probe_targets(env_states: np.ndarray, ee_states: np.ndarray) -> dict[str, np.ndarray]:
    return {"source_xy": env_states[:, SOURCE_XY], "target_xy": env_states[:, TARGET_XY],
            "source_minus_ee_xy": env_states[:, SOURCE_XY] - ee_states[:, 0:2]}


def load_with_features(root: str, cameras: list[str], image_size: int, trunk, max_episodes: int | None = None):
    """A record-sim dataset's episodes and every camera's trunk features, computed once for all probes."""
    from training.vla_data import load_episodes

    data = load_episodes([root], cameras=cameras, max_episodes=max_episodes)
    if data.env_states is None or data.states is None:
        raise SystemExit(f"{root}: needs observation.environment_state and observation.state (a record-sim dataset)")
    return data, {c: trunk_features(data.images[c], trunk, image_size) for c in cameras}


def probe_dataset(root: str, data, feats: dict[str, np.ndarray], test_fraction: float) -> dict:
    t0 = time.perf_counter()
    cameras = list(feats)
    targets = probe_targets(data.env_states, data.states)
    episodes = np.unique(data.episode)
    n_test = max(1, int(round(len(episodes) * test_fraction)))
    train = ~np.isin(data.episode, episodes[-n_test:])
    result = {"dataset": root, "frames": int(len(data.episode)), "episodes": int(len(episodes)),
              "test_episodes": n_test, "source_image_size": list(data.source_image_size or ()), "probes": {}}
    variants = {f"{c} grid": feats[c].reshape(len(feats[c]), -1) for c in cameras}
    variants.update({f"{c} pooled": feats[c].mean((2, 3)) for c in cameras})
    if len(cameras) > 1:
        variants["all grids"] = np.concatenate([variants[f"{c} grid"] for c in cameras], axis=1)
    for name, x in variants.items():
        result["probes"][name] = {t: ridge_rmse(x, y, train) for t, y in targets.items()}
    result["probe_seconds"] = round(time.perf_counter() - t0, 1)
    return result


def live_episodes(task: str, cameras: list[str], size: int, episodes: int, seed: int, layout: str) -> dict:
    """Raw renders (never encoded) of scripted-expert episodes, with the object and EE states at each frame."""
    import sim as simpkg
    from lam_ros.recording.sim import _object_state

    env = simpkg.make_env(robot="widowx", task=task, cameras=tuple(cameras), image_size=(size, size), layout=layout)
    expert = simpkg.make_expert(env)
    frames = {c: [] for c in cameras}
    env_states, ee_states = [], []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            expert.reset()
            for _ in range(env.max_episode_steps):
                for c in cameras:
                    frames[c].append(obs["images"][c].copy())
                env_states.append(_object_state(env))
                ee_states.append(env.state_vector(obs))
                obs, _, terminated, truncated, _ = env.step(expert.act(obs))
                if terminated or truncated:
                    break
    finally:
        env.close()
    return {"images": {c: np.stack(v) for c, v in frames.items()}, "env": np.stack(env_states).astype(np.float32),
            "ee": np.stack(ee_states).astype(np.float32), "fps": int(round(env.control_hz))}


def codec_check(dataset: str, data, feats: dict[str, np.ndarray], task: str, render_size: int, episodes: int,
                seed: int, trunk, image_size: int, layout: str) -> dict:
    """What the video codec changes between training frames (decoded) and run-time frames (raw):
    pixel error, trunk-feature change, and a probe fit on the dataset's decoded frames evaluated on
    live raw renders and on the same renders after the codec round trip."""
    from lam_ros.recording.codec import round_trip

    cameras = list(feats)
    targets = probe_targets(data.env_states, data.states)
    live = live_episodes(task, cameras, render_size, episodes, seed, layout)
    live_targets = probe_targets(live["env"], live["ee"])
    out = {"dataset": dataset, "task": task, "render_size": render_size, "live_episodes": episodes,
           "live_frames": int(len(live["env"])), "cameras": {}}
    for c in cameras:
        raw = live["images"][c]
        decoded = round_trip(raw, live["fps"])
        f_raw, f_dec = (trunk_features(x, trunk, image_size) for x in (raw, decoded))
        f_train = feats[c]
        flat = lambda f: f.reshape(len(f), -1)  # noqa: E731
        cam = {"pixel_mae": round(float(np.abs(raw.astype(np.float32) - decoded).mean()), 2),
               "feature_rel_change": round(float(np.linalg.norm(f_raw - f_dec) / np.linalg.norm(f_raw)), 3),
               "probes": {}}
        for name, y in targets.items():
            probe = Ridge(flat(f_train), y)
            cam["probes"][name] = {"on_decoded_cm": probe.rmse_cm(flat(f_dec), live_targets[name]),
                                   "on_raw_cm": probe.rmse_cm(flat(f_raw), live_targets[name])}
        out["cameras"][c] = cam
        print(f"codec check {Path(dataset).name} {c}: pixel MAE {cam['pixel_mae']} / 255, trunk features change "
              f"{cam['feature_rel_change']:.1%}; probe RMSE (cm, x / y) on decoded -> raw: "
              + "; ".join(f"{n} {p['on_decoded_cm']} -> {p['on_raw_cm']}" for n, p in cam["probes"].items()))
    return out


def print_table(results: list[dict]) -> None:
    targets = list(next(iter(results[0]["probes"].values())))
    print("| dataset | features | " + " | ".join(f"{t} (cm, x / y; mean-baseline)" for t in targets) + " |")
    print("|---|---|" + "---|" * len(targets))
    for r in results:
        for name, probes in r["probes"].items():
            cells = [f"{p['rmse_cm'][0]:.1f} / {p['rmse_cm'][1]:.1f} ({p['baseline_cm'][0]:.1f} / {p['baseline_cm'][1]:.1f})"
                     for p in probes.values()]
            print(f"| {Path(r['dataset']).name} | {name} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", required=True, help="a record-sim LeRobot dataset (repeatable)")
    ap.add_argument("--cameras", default="third_person,wrist", help="comma-separated cameras (default: %(default)s)")
    ap.add_argument("--image-size", type=int, default=None,
                    help="resize to this before the trunk (default: the trunk's own input size, as the VLA)")
    ap.add_argument("--stride", type=int, default=16, help="trunk output stride (default: %(default)s, the VLA's)")
    ap.add_argument("--test-fraction", type=float, default=0.25, help="episodes held out (default: %(default)s)")
    ap.add_argument("--max-episodes", type=int, default=None, help="use only each dataset's first N episodes")
    ap.add_argument("--codec-check", type=int, default=0, metavar="EPISODES",
                    help="also render this many live expert episodes (seeds 9000..) per dataset and measure what the "
                         "video codec changes between training and run-time frames (needs --task per dataset)")
    ap.add_argument("--task", action="append", default=[], help="--codec-check: each dataset's task, in order")
    ap.add_argument("--layout", default="simpler", help="--codec-check: object layout (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from models.pretrained_vision import build_trunk

    trunk = build_trunk(stride=args.stride)
    size = args.image_size or trunk.config.image_size
    cameras = [c for c in args.cameras.split(",") if c]
    if args.codec_check and len(args.task) != len(args.dataset):
        raise SystemExit("--codec-check needs one --task per --dataset")
    results, codec = [], []
    for i, d in enumerate(args.dataset):
        data, feats = load_with_features(d, cameras, size, trunk, args.max_episodes)
        results.append(probe_dataset(d, data, feats, args.test_fraction))
        if args.codec_check:
            render = int(data.source_image_size[0])
            codec.append(codec_check(d, data, feats, args.task[i], render, args.codec_check, 9000, trunk, size,
                                     args.layout))
    print_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "image_size": size, "stride": args.stride,
                                        "results": results, "codec_check": codec}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
