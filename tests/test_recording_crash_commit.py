"""No data lost, the dangerous moment: SIGKILL inside a commit, after lerobot
finalised an episode and rewrote meta/info.json but before the journal names
it. Resume (automatic recovery) must roll back to the last commit and append."""

import json

from lam_ros.recording.writer import RecordingWriter, build_features
from _recording_helpers import FRAMES_PER_EPISODE, TINY_CAMS, check_episodes, run_and_kill, tiny_frame


def test_sigkill_inside_commit_rolls_back_to_last_commit_on_resume(tmp_path):
    root = tmp_path / "ds"
    run_and_kill(root, "in-commit", "HANG")
    # Episode 2 was finalised by lerobot and info.json already counts it, but it is not committed.
    assert json.loads((root / "meta" / "info.json").read_text())["total_episodes"] == 3
    features = build_features(TINY_CAMS, ["ep", "k"], ["a0", "a1"])
    with RecordingWriter(root, 10, features, resume=True) as rec:  # automatic recovery
        assert rec.recovery.committed_episodes == 2
        assert any(r.startswith("data/") for r in rec.recovery.removed)
        for ep in (2, 3):
            for k in range(FRAMES_PER_EPISODE):
                rec.add_frame(tiny_frame(ep, k))
            rec.save_episode()
    check_episodes(root, range(4))
