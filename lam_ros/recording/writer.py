"""Crash-safe LeRobot dataset writing on top of lerobot's own ``LeRobotDataset``.

lerobot 0.4.4 keeps parquet writers open across episodes and buffers episode
metadata, so a SIGKILL loses every episode of the session. Here every episode
is a commit:

1. ``save_episode()`` then ``finalize()``: all parquet footers are written.
   The dataset is reopened (lerobot's own resume path) for the next episode,
   which makes lerobot start new data / metadata / video files instead of
   rewriting the closed ones.
2. A snapshot of the small metadata files lerobot rewrites in place
   (``meta/info.json``, ``meta/stats.json``, ``meta/tasks.parquet``) and the
   list of dataset files is written to ``.recording/``; the journal
   (``.recording/journal.json``) is replaced atomically to point at it.

``recover(root)`` (``lam-ros recover DIR``; run automatically on resume) rolls
the dataset back to the last commit: it restores the snapshot and deletes
files that no committed episode owns (a half-written episode, temporary PNGs
and videos). The price is one file per episode per camera, which lerobot reads
as usual (its aggregate tools can merge them later).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

STATE_DIR = ".recording"
JOURNAL = "journal.json"
META_FILES = ("meta/info.json", "meta/stats.json", "meta/tasks.parquet")
OWNED_DIRS = ("data", "meta/episodes", "videos")
REPORT_FILES = ("recording_report.json", "recording_report.md")
# Video codec for every recorder (lerobot encodes with its own crf / GOP defaults: crf 30, GOP 2).
DEFAULT_VCODEC = "h264"


def quiet_libav() -> None:
    """libav errors only. After lerobot's encoder restores libav's default log callback, libx264 prints about
    ten lines of statistics per encoded video to stderr: 20-30 lines per recorded episode, or per frame where
    a video is coded frame by frame (``codec.round_trip``), which buries a recorder's or evaluation's log."""
    import av

    av.logging.set_level(av.logging.ERROR)  # what PyAV's own callback passes on to Python's logging
    av.logging.set_libav_level(av.logging.ERROR)  # what libav's default callback prints, once lerobot restored it


class RecordingError(ValueError):
    """Bad recording input or a dataset folder in a state we refuse to touch."""


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


def build_features(
    cameras: dict[str, tuple[int, int]],
    state_names: Sequence[str],
    action_names: Sequence[str],
    env_state_names: Sequence[str] = (),
) -> dict:
    """LeRobot features: one video per camera, state, action, and the sync audit features.

    ``sync.capture_time`` (float64, one per camera) is each camera's real
    capture time (header stamp, seconds); ``sync.skew`` (float32) is the spread
    of those stamps in the frame; ``sync.held`` is 1.0 when no new matched set
    arrived for this grid slot and the previous frame was repeated.
    """
    if not cameras:
        raise RecordingError("at least one camera is required")
    features: dict = {}
    for cam, (h, w) in cameras.items():
        if not cam or "/" in cam or "." in cam:
            raise RecordingError(f"camera name {cam!r} is not a valid feature name (no '/' or '.')")
        features[image_key(cam)] = {
            "dtype": "video",
            "shape": (int(h), int(w), 3),
            "names": ["height", "width", "channels"],
        }
    if not state_names:
        raise RecordingError("observation.state needs at least one name")
    if not action_names:
        raise RecordingError("action needs at least one name")
    features["observation.state"] = {"dtype": "float32", "shape": (len(state_names),), "names": list(state_names)}
    features["action"] = {"dtype": "float32", "shape": (len(action_names),), "names": list(action_names)}
    if env_state_names:  # LeRobot's name for privileged (simulator) state: object poses
        features["observation.environment_state"] = {
            "dtype": "float32", "shape": (len(env_state_names),), "names": list(env_state_names)}
    names = list(cameras)
    features["sync.capture_time"] = {"dtype": "float64", "shape": (len(names),), "names": names}
    features["sync.skew"] = {"dtype": "float32", "shape": (1,), "names": ["skew_s"]}
    features["sync.held"] = {"dtype": "float32", "shape": (1,), "names": ["held"]}
    return features


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _owned_files(root: Path) -> list[str]:
    files = []
    for d in OWNED_DIRS:
        base = root / d
        if base.is_dir():
            files += [p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file()]
    return sorted(files)


def read_journal(root: Path) -> dict | None:
    path = Path(root) / STATE_DIR / JOURNAL
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:  # cannot happen with atomic replace, but say so if it does
        raise RecordingError(f"{path} is not valid JSON ({exc}); the recording state is damaged") from exc


def _commit(root: Path, episodes: int) -> None:
    """Snapshot the rewritten metadata, then point the journal at it (atomic)."""
    state = root / STATE_DIR
    state.mkdir(exist_ok=True)
    snap = state / f"snap-{episodes:06d}"
    if snap.exists():
        shutil.rmtree(snap)
    tmp = state / f"tmp-snap-{episodes:06d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    saved = []
    for rel in META_FILES:
        src = root / rel
        if src.is_file():
            dst = tmp / Path(rel).name
            shutil.copy2(src, dst)
            _fsync_file(dst)
            saved.append(rel)
    os.replace(tmp, snap)
    files = _owned_files(root)
    for rel in files:
        _fsync_file(root / rel)
    journal = {"committed_episodes": episodes, "snapshot": snap.name, "meta_files": saved, "files": files}
    _atomic_write_text(state / JOURNAL, json.dumps(journal, indent=1))
    for old in state.glob("snap-*"):
        if old.name != snap.name:
            shutil.rmtree(old, ignore_errors=True)


@dataclass
class RecoveryResult:
    committed_episodes: int
    removed: list[str]
    restored: list[str]

    def summary(self) -> str:
        return (
            f"{self.committed_episodes} committed episode(s) kept; restored {len(self.restored)} metadata file(s); "
            f"removed {len(self.removed)} uncommitted file(s)/folder(s)"
        )


def recover(root: str | Path) -> RecoveryResult:
    """Roll a dataset folder back to its last committed episode (idempotent)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    journal = read_journal(root)
    if journal is None:
        raise RecordingError(
            f"{root} has no {STATE_DIR}/{JOURNAL}: it was not written by lam_ros' recorder, so it cannot be recovered"
        )
    snap = root / STATE_DIR / journal["snapshot"]
    restored = []
    for rel in META_FILES:
        target = root / rel
        if rel in journal["meta_files"]:
            src = snap / Path(rel).name
            if not src.is_file():
                raise RecordingError(f"snapshot file {src} is missing; the recording state is damaged")
            if not target.is_file() or target.read_bytes() != src.read_bytes():
                tmp = target.with_name(target.name + ".tmp")
                shutil.copy2(src, tmp)
                os.replace(tmp, target)
                restored.append(rel)
        elif target.exists():
            target.unlink()
            restored.append(rel)
    keep = set(journal["files"])
    removed = [rel for rel in _owned_files(root) if rel not in keep]
    for rel in removed:
        (root / rel).unlink()
    for d in OWNED_DIRS:  # empty folders left by removed files
        base = root / d
        if base.is_dir():
            for p in sorted(base.rglob("*"), reverse=True):
                if p.is_dir() and not any(p.iterdir()):
                    p.rmdir()
    for p in root.iterdir():  # lerobot's temporary PNG folder and encoder temp dirs
        if p.is_dir() and (p.name == "images" or p.name.startswith("tmp")):
            shutil.rmtree(p)
            removed.append(p.name + "/")
    for p in (root / STATE_DIR).glob("tmp-snap-*"):
        shutil.rmtree(p)
    missing = [rel for rel in keep if not (root / rel).is_file()]
    if missing:
        raise RecordingError(f"committed files are missing from {root}: {missing[:5]}; the dataset is damaged")
    return RecoveryResult(int(journal["committed_episodes"]), removed, restored)


def load_dataset(root: str | Path, repo_id: str | None = None):
    """Open a recorded dataset offline (pyav decoding, never the hub)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = Path(root)
    if not (root / "meta" / "info.json").is_file():
        raise FileNotFoundError(f"{root} is not a LeRobot dataset (no meta/info.json)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return LeRobotDataset(repo_id or _repo_id_of(root), root=root, video_backend="pyav")


def _repo_id_of(root: Path) -> str:
    journal = read_journal(root)
    if journal and journal.get("repo_id"):
        return journal["repo_id"]
    return f"local/{root.name}"


class RecordingWriter:
    """Episode-at-a-time, crash-safe writer. Use as a context manager or call ``close()``.

    ``resume=True`` appends to an existing recording (after running
    ``recover``); otherwise ``root`` must not exist yet.
    """

    def __init__(
        self,
        root: str | Path,
        fps: int,
        features: dict,
        robot_type: str | None = None,
        repo_id: str | None = None,
        resume: bool = False,
        vcodec: str = DEFAULT_VCODEC,
        streaming_encoding: bool = False,
        encoder_threads: int | None = None,
        metadata: dict | None = None,
        commit_every: int = 1,
    ):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset  # heavy import kept out of module import

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self._cls = LeRobotDataset
        self.root = Path(root)
        self.repo_id = repo_id or f"local/{self.root.name}"
        self.fps = int(fps)
        self.features = features
        self.robot_type = robot_type
        self._kwargs = dict(vcodec=vcodec, streaming_encoding=streaming_encoding, encoder_threads=encoder_threads)
        self.frames_in_episode = 0
        self.recovery: RecoveryResult | None = None
        self.metadata = dict(metadata or {})
        if int(commit_every) < 1:
            raise RecordingError(f"commit_every must be >= 1 episode, got {commit_every}")
        self.commit_every = int(commit_every)
        self._pending_report = None

        if self.root.exists() and any(self.root.iterdir()):
            if not resume:
                raise RecordingError(f"{self.root} already exists; pass --resume to append to it, or choose a new folder")
            self.recovery = recover(self.root)
            self._check_compatible()
            self.episodes = self.committed = self.recovery.committed_episodes
            if self.episodes == 0:  # nothing committed: lerobot cannot reopen an empty dataset, start over
                shutil.rmtree(self.root)
                self._create()
            else:
                self._open()
        else:
            if self.root.is_dir():  # an empty folder: lerobot's create() refuses existing roots
                self.root.rmdir()
            self.episodes = self.committed = 0
            self._create()

    # -- lifecycle -------------------------------------------------------
    def _create(self) -> None:
        self.ds = self._cls.create(
            self.repo_id, fps=self.fps, features=self.features, root=self.root,
            robot_type=self.robot_type, use_videos=True, **self._kwargs,
        )
        self._write_metadata()
        _commit(self.root, 0)
        self._write_repo_id()

    def _open(self) -> None:
        self.ds = self._cls(self.repo_id, root=self.root, video_backend="pyav", **self._kwargs)

    def _write_metadata(self) -> None:
        """Our metadata (action convention, noise settings, ...) under ``"lam_ros"`` in
        meta/info.json; lerobot keeps unknown keys of ``meta.info`` when it rewrites the file."""
        if not self.metadata:
            return
        from lerobot.datasets.utils import write_info

        from lam_ros.action_convention import METADATA_KEY

        self.ds.meta.info[METADATA_KEY] = {**(self.ds.meta.info.get(METADATA_KEY) or {}), **self.metadata}
        write_info(self.ds.meta.info, self.root)

    def _write_repo_id(self) -> None:
        journal = read_journal(self.root)
        journal["repo_id"] = self.repo_id
        _atomic_write_text(self.root / STATE_DIR / JOURNAL, json.dumps(journal, indent=1))

    def _check_compatible(self) -> None:
        info = json.loads((self.root / "meta" / "info.json").read_text())
        if int(info["fps"]) != self.fps:
            raise RecordingError(f"cannot resume {self.root}: it was recorded at fps={info['fps']}, not {self.fps}")
        theirs = {k: (v["dtype"], tuple(v["shape"])) for k, v in info["features"].items()}
        for key, ft in self.features.items():
            if key not in theirs:
                raise RecordingError(f"cannot resume {self.root}: it has no feature {key!r} (has {sorted(theirs)})")
            if theirs[key] != (ft["dtype"], tuple(ft["shape"])):
                raise RecordingError(
                    f"cannot resume {self.root}: feature {key!r} is {theirs[key]} there, {(ft['dtype'], tuple(ft['shape']))} here"
                )
        theirs_meta = info.get("lam_ros") or {}
        for key, value in self.metadata.items():
            if key in theirs_meta and theirs_meta[key] != value:
                raise RecordingError(
                    f"cannot resume {self.root}: it was recorded with {key}={theirs_meta[key]!r}, not {value!r}")
        journal = read_journal(self.root)
        if journal and journal.get("repo_id"):
            self.repo_id = journal["repo_id"]

    # -- recording -------------------------------------------------------
    def add_frame(self, frame: dict) -> None:
        for key, value in frame.items():
            if key.startswith("observation.images.") and key in self.features:
                shape = tuple(self.features[key]["shape"])
                if np.shape(value) != shape:
                    raise RecordingError(f"frame for {key!r} has shape {np.shape(value)}, the dataset expects {shape}")
        self._wait_for_encoder()
        self.ds.add_frame(frame)
        self.frames_in_episode += 1

    def _wait_for_encoder(self) -> None:
        """With streaming encoding, lerobot 0.4.4 DROPS a frame (with only a log
        warning) when an encoder queue stays full for 0.1 s, leaving a video
        shorter than its parquet rows: silently misaligned frames. We wait for
        room instead (our callers queue upstream and count their backlog)."""
        enc = getattr(self.ds, "_streaming_encoder", None)
        queues = getattr(enc, "_frame_queues", None) if enc is not None else None
        if not queues:
            return
        import time

        while any(q.full() for q in queues.values()):
            time.sleep(0.002)

    def _check_encoder_drops(self) -> None:
        enc = getattr(self.ds, "_streaming_encoder", None)
        dropped = {k: v for k, v in (getattr(enc, "_dropped_frames", None) or {}).items() if v}
        if dropped:
            self.discard_episode()
            raise RecordingError(
                f"the video encoder dropped frames {dropped}: the episode would be misaligned and was discarded"
            )

    def save_episode(self, report=None) -> int:
        """Write the buffered episode and commit every ``commit_every`` episodes; returns its index.
        Empty episodes are refused.

        ``report`` (a ``RecordingReport`` that already holds this episode) is
        written before the commit, so a report never misses a committed episode.

        Why batch: a commit closes lerobot's parquet writers and the dataset must be reopened to
        append (lerobot then starts new data files), and reopening reads every episode's metadata
        back, so per-episode commits cost O(n) each: recording 150 episodes took 2 s per episode at
        the start and 5 s at the end (docs/recording.md). A SIGKILL loses the episodes saved since the
        last commit (at most ``commit_every``); ``close()`` commits whatever is saved.
        """
        if self.frames_in_episode == 0:
            raise RecordingError("cannot save an empty episode (no frames were added)")
        index = self.episodes
        self._check_encoder_drops()
        quiet_libav()
        # parallel_encoding=False: lerobot would start a process pool per episode, slow on 2 cores
        self.ds.save_episode(parallel_encoding=False)
        self.episodes += 1
        self.frames_in_episode = 0
        self._pending_report = report
        if self.episodes - self.committed >= self.commit_every:
            self._commit_saved(reopen=True)
        return index

    def _commit_saved(self, reopen: bool) -> None:
        """Finalise lerobot's files, write the report, commit; reopen to go on appending."""
        self.ds.finalize()
        if self._pending_report is not None:
            self._pending_report.write(self.root)
        _commit(self.root, self.episodes)
        self.committed = self.episodes
        self._write_repo_id()
        if reopen:
            self._open()

    def discard_episode(self) -> None:
        """Drop the frames buffered for the current episode."""
        if self.frames_in_episode:
            self.ds.clear_episode_buffer()
        self.frames_in_episode = 0

    def close(self) -> None:
        """Discard any unsaved frames and close the writers (committed episodes are already safe)."""
        if getattr(self, "ds", None) is None:
            return
        if self.frames_in_episode:
            log.warning("closing with %d unsaved frame(s) in the current episode: discarded", self.frames_in_episode)
            self.discard_episode()
        if self.episodes > self.committed:  # saved but not yet committed episodes are complete: keep them
            self._commit_saved(reopen=False)
        else:
            self.ds.finalize()
        self.ds = None
        recover(self.root)  # removes lerobot's temporary folders

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
