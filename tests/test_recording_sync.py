"""The ROS-free synchronisation core: message_filters semantics and fps resampling."""

import numpy as np
import pytest

from lam_ros.recording.sync import (
    ApproximateTimeSync, CameraTimeoutError, GridResampler, Stamped, SyncError, synchronise,
)


def streams(n=20, fps=10.0, jitter=0.004, names=("a", "b", "c"), seed=0, drop=None, start=5.0):
    rng = np.random.default_rng(seed)
    drop = drop or {}
    return {
        name: [Stamped(start + k / fps + rng.uniform(-jitter, jitter), (name, k))
               for k in range(n) if k not in drop.get(name, ())]
        for name in names
    }


def test_matching_fires_only_within_slop_and_removes_matched():
    s = ApproximateTimeSync(["a", "b"], queue_size=5, slop=0.01)
    assert s.add("a", 1.000, "a1") is None
    assert s.add("b", 1.050, "b1") is None  # too far from a1
    m = s.add("a", 1.045, "a2")
    assert m is not None and m.items["a"].data == "a2" and m.items["b"].data == "b1"
    assert m.skew == pytest.approx(0.005)
    assert 1.045 not in s.queues["a"] and 1.050 not in s.queues["b"]
    assert 1.000 in s.queues["a"]  # unmatched stays queued


def test_queue_size_evicts_oldest():
    s = ApproximateTimeSync(["a", "b"], queue_size=2, slop=0.01)
    for t in (1.0, 2.0, 3.0):
        s.add("a", t)
    assert sorted(s.queues["a"]) == [2.0, 3.0]
    assert s.stats.evicted["a"] == 1
    assert s.add("b", 1.0) is None  # the evicted message can no longer match


def test_jitter_every_frame_matched_once_in_order():
    frames, sync, res = synchronise(streams(), fps=10, slop=0.02)
    assert len(frames) == 20
    for k, f in enumerate(frames):
        assert {n: f.matched.items[n].data for n in "abc"} == {n: (n, k) for n in "abc"}
        assert not f.held
        assert f.matched.skew < 0.02
    assert all(sync.stats.dropped(n) == 0 for n in "abc")


def test_dropped_frame_is_held_and_counted():
    frames, sync, res = synchronise(streams(drop={"b": {7}}), fps=10, slop=0.02)
    assert len(frames) == 20
    assert frames[7].held and frames[7].matched.items["a"].data == ("a", 6)  # previous snapshot repeated
    assert frames[8].matched.items["b"].data == ("b", 8)
    assert res.held == 1
    assert sync.stats.dropped("a") == 1 and sync.stats.dropped("c") == 1 and sync.stats.dropped("b") == 0


def test_stalled_camera_raises_naming_it():
    data = streams(n=40, drop={"c": set(range(10, 40))})
    with pytest.raises(CameraTimeoutError, match=r"silent camera\(s\): c"):
        synchronise(data, fps=10, slop=0.02, timeout=0.5)


def test_short_gap_under_timeout_is_held_not_error():
    frames, _, res = synchronise(streams(drop={"c": {5, 6, 7}}), fps=10, slop=0.02, timeout=0.5)
    assert [f.held for f in frames[5:8]] == [True] * 3 and len(frames) == 20


def test_out_of_order_arrival_still_matches():
    data = streams()
    # camera b's messages 3 and 4 arrive swapped; arrival times given explicitly.
    b = data["b"]
    data["b"] = [Stamped(m.stamp, m.data, arrival=m.stamp + (0.15 if i == 3 else 0.0)) for i, m in enumerate(b)]
    frames, sync, _ = synchronise(data, fps=10, slop=0.02)
    assert [f.matched.items["b"].data[1] for f in frames] == list(range(20))
    assert sync.stats.non_monotonic["b"] == 1


def test_duplicate_stamp_replaces_and_is_counted():
    data = streams()
    dup = data["a"][4]
    data["a"].insert(5, Stamped(dup.stamp, ("a", "dup")))
    frames, sync, _ = synchronise(data, fps=10, slop=0.02)
    assert len(frames) == 20
    assert sync.stats.duplicates["a"] == 1
    assert frames[4].matched.items["a"].data == ("a", 4)  # matched before the duplicate arrived
    assert sync.stats.dropped("a") == 0  # a duplicate is not a dropped frame


def test_duplicate_while_queued_replaces():
    s = ApproximateTimeSync(["a", "b"], slop=0.01)
    s.add("a", 1.0, "first")
    s.add("a", 1.0, "second")
    assert s.add("b", 1.0, "b").items["a"].data == "second"
    assert s.stats.duplicates["a"] == 1 and s.stats.received["a"] == 1


def test_downsampling_30_to_10_picks_nearest_grid_set():
    frames, _, res = synchronise(streams(n=61, fps=30.0, jitter=0.001), fps=10, slop=0.01)
    assert len(frames) == 21
    assert [f.matched.items["a"].data[1] for f in frames] == list(range(0, 61, 3))
    assert res.skipped == 40


def test_nan_stamp_refused_and_bad_parameters():
    s = ApproximateTimeSync(["a", "b"], slop=0.01)
    assert s.add("a", float("nan")) is None and s.stats.invalid["a"] == 1
    with pytest.raises(SyncError, match="unknown stream 'z'"):
        s.add("z", 1.0)
    with pytest.raises(SyncError, match="slop"):
        ApproximateTimeSync(["a"], slop=0)
    with pytest.raises(SyncError, match="fps"):
        GridResampler(0)


def test_late_set_after_slot_is_stale():
    s = ApproximateTimeSync(["a"], slop=0.01)
    r = GridResampler(10)
    out = []
    for t in (0.0, 0.1, 0.2, 0.05, 0.3):
        out += r.push(s.add("a", t))
    out += r.flush()
    assert [round(f.grid_time, 3) for f in out] == [0.0, 0.1, 0.2, 0.3]
    assert r.stale == 1
