"""The recording report written next to the data: episodes, frames, dropped
frames per camera, held (repeated) grid slots, synchronisation skew, and every
warning counted. ``recording_report.json`` is the machine-readable form,
``recording_report.md`` the human one; both are rewritten atomically after
each committed episode, so they survive a kill too.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from lam_ros.recording.writer import _atomic_write_text


class RecordingReport:
    def __init__(self, cameras: list[str], source: str = ""):
        self.cameras = list(cameras)
        self.source = source
        self.episodes: list[dict] = []
        self.warnings: Counter = Counter()

    def warn(self, message: str, count: int = 1) -> None:
        if count:
            self.warnings[message] += int(count)

    def add_episode(self, index: int, frames: int, held: int, dropped: dict[str, int], skews: list[float],
                    source: str = "", warnings: Counter | None = None) -> dict:
        entry = {
            "episode_index": int(index),
            "source": source,
            "frames": int(frames),
            "held_frames": int(held),
            "dropped_frames": {c: int(dropped.get(c, 0)) for c in self.cameras},
            "max_skew_s": float(max(skews)) if skews else 0.0,
            "mean_skew_s": float(sum(skews) / len(skews)) if skews else 0.0,
            "warnings": dict(warnings or {}),
        }
        self.episodes.append(entry)
        for msg, n in (warnings or {}).items():
            self.warn(f"episode {index}: {msg}", n)
        return entry

    def to_dict(self) -> dict:
        frames = sum(e["frames"] for e in self.episodes)
        skew_sum = sum(e["mean_skew_s"] * e["frames"] for e in self.episodes)
        return {
            "source": self.source,
            "cameras": self.cameras,
            "episodes": len(self.episodes),
            "frames": frames,
            "held_frames": sum(e["held_frames"] for e in self.episodes),
            "dropped_frames": {c: sum(e["dropped_frames"].get(c, 0) for e in self.episodes) for c in self.cameras},
            "max_skew_s": max((e["max_skew_s"] for e in self.episodes), default=0.0),
            "mean_skew_s": skew_sum / frames if frames else 0.0,
            "warnings": dict(self.warnings),
            "per_episode": self.episodes,
        }

    def to_markdown(self) -> str:
        d = self.to_dict()
        lines = [
            "# Recording report", "",
            f"- source: {d['source']}", f"- cameras: {', '.join(d['cameras'])}",
            f"- episodes: {d['episodes']}", f"- frames: {d['frames']}",
            f"- held frames (no new synchronised set, previous repeated): {d['held_frames']}",
            "- dropped frames per camera: " + ", ".join(f"{c} {n}" for c, n in d["dropped_frames"].items()),
            f"- skew: max {d['max_skew_s'] * 1000:.2f} ms, mean {d['mean_skew_s'] * 1000:.2f} ms", "",
            "| episode | source | frames | held | dropped | max skew (ms) | mean skew (ms) |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in d["per_episode"]:
            dropped = ", ".join(f"{c} {n}" for c, n in e["dropped_frames"].items())
            lines.append(
                f"| {e['episode_index']} | {e['source']} | {e['frames']} | {e['held_frames']} | {dropped} | "
                f"{e['max_skew_s'] * 1000:.2f} | {e['mean_skew_s'] * 1000:.2f} |"
            )
        lines += ["", "## Warnings", ""]
        lines += [f"- {msg} (x{n})" for msg, n in d["warnings"].items()] or ["- none"]
        return "\n".join(lines) + "\n"

    def write(self, root: str | Path) -> None:
        root = Path(root)
        _atomic_write_text(root / "recording_report.json", json.dumps(self.to_dict(), indent=1))
        _atomic_write_text(root / "recording_report.md", self.to_markdown())

    @classmethod
    def load_or_new(cls, root: str | Path, cameras: list[str], source: str = "",
                    committed_episodes: int | None = None) -> RecordingReport:
        """Continue an existing report on resume (keeping only committed episodes)."""
        report = cls(cameras, source)
        path = Path(root) / "recording_report.json"
        if path.is_file():
            d = json.loads(path.read_text())
            report.episodes = [
                e for e in d.get("per_episode", [])
                if committed_episodes is None or e["episode_index"] < committed_episodes
            ]
            report.warnings = Counter(d.get("warnings", {}))
        return report
