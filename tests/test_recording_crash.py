"""No data lost: a recorder killed with SIGKILL loses at most the episode in
progress; recovery (explicit, or automatic on resume) gives back every
committed episode, and resume appends after them. Real subprocesses, real kills."""

import pytest

from lam_ros.recording.writer import RecordingError, RecordingWriter, build_features, recover
from _recording_helpers import FRAMES_PER_EPISODE, TINY_CAMS, check_episodes, run_and_kill, tiny_frame


def test_sigkill_mid_episode_then_recover_and_resume(tmp_path):
    root = tmp_path / "ds"
    lines = run_and_kill(root, "mid-episode", "MID")
    assert lines[-4:] == ["SAVED 0", "SAVED 1", "SAVED 2", "MID"]
    result = recover(root)
    assert result.committed_episodes == 3
    assert any(r.startswith("images") for r in result.removed)  # the half episode's temporary PNGs
    check_episodes(root, range(3))
    # resume appends after the committed episodes (and recovers again, idempotently)
    features = build_features(TINY_CAMS, ["ep", "k"], ["a0", "a1"])
    with RecordingWriter(root, 10, features, resume=True) as rec:
        for k in range(FRAMES_PER_EPISODE):
            rec.add_frame(tiny_frame(3, k))
        assert rec.save_episode() == 3
    check_episodes(root, range(4))


def test_batched_commits_lose_at_most_the_batch_and_close_commits_the_rest(tmp_path):
    """commit_every=2: a SIGKILL after 3 saved episodes keeps the 2 committed ones; a normal close commits
    every saved episode even in the middle of a batch."""
    root = tmp_path / "ds"
    lines = run_and_kill(root, "mid-episode", "MID", commit_every=2)
    assert lines[-4:] == ["SAVED 0", "SAVED 1", "SAVED 2", "MID"]
    assert recover(root).committed_episodes == 2
    check_episodes(root, range(2))
    features = build_features(TINY_CAMS, ["ep", "k"], ["a0", "a1"])
    with RecordingWriter(root, 10, features, resume=True, commit_every=5) as rec:
        for ep in (2, 3):
            for k in range(FRAMES_PER_EPISODE):
                rec.add_frame(tiny_frame(ep, k))
            rec.save_episode()
        assert rec.committed == 2  # both still pending
    check_episodes(root, range(4))
    with pytest.raises(RecordingError, match="commit_every"):
        RecordingWriter(tmp_path / "other", 10, features, commit_every=0)


def test_recover_refuses_foreign_folder(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(RecordingError, match="not written by lam_ros"):
        recover(tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        recover(tmp_path / "missing")
