"""Exogenous noise in the simulator: validation, determinism, no effect on physics or task metrics."""

import json

import numpy as np
import pytest

import sim
from sim import cameras as cams
from sim.noise import KNOBS, ExogenousNoise, dataset_noise

SMALL = (64, 64)
ALL_ON = "camera_motion=1,distractors=4,lighting=1,sensor_noise=1,occlusion=0.5"
HOLD = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])


def _rollout(noise, seed=3, steps=6, cameras=("third_person", "side", "wrist"), randomize=True, expert=False):
    """[(obs, info)] per step; info gets the privileged object poses of every step. ``expert``: the scripted
    expert acts (it only reads privileged state, so the same seed gives the same actions if physics agree)."""
    env = sim.make_env("widowx", "stack_cube", cameras=cameras, image_size=SMALL, randomize_cameras=randomize,
                       noise=noise)
    try:
        policy = sim.make_expert(env) if expert else None
        obs, info = env.reset(seed=seed)
        out = [(obs, {**info, "object_poses": env.unwrapped.object_poses()})]
        for _ in range(steps):
            obs, _, _, _, info = env.step(policy.act(obs) if expert else HOLD)
            out.append((obs, {**info, "object_poses": env.unwrapped.object_poses()}))
        return out
    finally:
        env.close()


@pytest.mark.parametrize("bad,match", [
    (dict(camera_motion=-0.1), "camera_motion"),
    (dict(camera_motion=3.5), "camera_motion"),
    (dict(distractors=5), "distractors"),
    (dict(distractors=1.5), "distractors.*whole"),
    (dict(distractors=True), "distractors.*number"),
    (dict(lighting="0.5"), "lighting.*number"),
    (dict(sensor_noise=float("nan")), "sensor_noise"),
    (dict(occlusion=1.2), "occlusion"),
    (dict(distractor_speed=None), "distractor_speed"),
])
def test_bad_knobs_raise_naming_the_knob(bad, match):
    with pytest.raises(ValueError, match=match):
        ExogenousNoise(**bad)


def test_parse_and_round_trip():
    n = ExogenousNoise.parse("camera_motion=0.5, distractors=2,lighting=0.25")
    assert n == ExogenousNoise(camera_motion=0.5, distractors=2, lighting=0.25)
    assert isinstance(n.distractors, int) and n.active
    assert ExogenousNoise.from_dict(n.to_dict()) == n
    assert ExogenousNoise.parse("none") == ExogenousNoise() and not ExogenousNoise().active
    assert ExogenousNoise.coerce({"occlusion": 0.5}).occlusion == 0.5
    assert n.describe() == "camera_motion=0.5,distractors=2,lighting=0.25"
    assert set(n.to_dict()) == set(KNOBS)
    for text, match in [("camera_motion", "KNOB=VALUE"), ("wind=1", "unknown noise knob 'wind'"),
                        ("lighting=bright", "lighting.*number"), ("distractors=2.5", "distractors.*whole"),
                        ("sensor_noise=9", "sensor_noise.*within")]:
        with pytest.raises(ValueError, match=match):
            ExogenousNoise.parse(text)
    with pytest.raises(ValueError, match="unknown noise knob"):
        ExogenousNoise.from_dict({"camera_motion": 0.1, "fog": 1})
    with pytest.raises(ValueError, match="camera_motion"):
        sim.make_env("widowx", "stack_cube", cameras=(), noise="camera_motion=-1")


def test_noise_changes_images_but_never_the_physics():
    # the scripted expert grasps and carries the cube, with and without every noise on
    quiet = _rollout(None, steps=30, expert=True)
    noisy = _rollout(ALL_ON, steps=30, expert=True)
    assert any(info["grasp"] for _, info in quiet)  # the arm really grasped the cube
    for (q_obs, q_info), (n_obs, n_info) in zip(quiet, noisy):
        np.testing.assert_array_equal(q_obs["joint_pos"], n_obs["joint_pos"])
        np.testing.assert_array_equal(q_obs["ee_pose"], n_obs["ee_pose"])
        for name in q_info["object_poses"]:
            np.testing.assert_array_equal(q_info["object_poses"][name], n_info["object_poses"][name])
        for key in ("success", "grasp", "moved_correct_object", "moved_wrong_object"):
            assert q_info[key] == n_info[key]
    for cam in ("third_person", "side", "wrist"):
        diff = np.abs(quiet[-1][0]["images"][cam].astype(int) - noisy[-1][0]["images"][cam].astype(int)).mean()
        assert diff > 3, (cam, diff)


def test_same_seed_same_images_other_seed_other_noise():
    a, b, c = _rollout(ALL_ON, seed=5, steps=3), _rollout(ALL_ON, seed=5, steps=3), _rollout(ALL_ON, seed=6, steps=3)
    for (oa, ia), (ob, ib) in zip(a, b):
        for cam in oa["images"]:
            np.testing.assert_array_equal(oa["images"][cam], ob["images"][cam])
            np.testing.assert_array_equal(ia["camera_poses"][cam], ib["camera_poses"][cam])
    assert not np.array_equal(a[-1][0]["images"]["side"], c[-1][0]["images"]["side"])


def test_camera_motion_moves_each_external_camera_independently_within_an_episode():
    run = _rollout("camera_motion=1", steps=10)
    poses = {cam: np.stack([info["camera_poses"][cam] for _, info in run]) for cam in ("third_person", "side")}
    for cam, p in poses.items():
        travel = np.linalg.norm(p[1:, :3] - p[:-1, :3], axis=1)
        assert travel.max() > 5e-4, cam  # moves from step to step
        assert np.abs(p[:, :3] - p[0, :3]).max() < 0.08, cam  # but stays near its episode pose
    # independent: the two cameras' motions are not the same offsets
    d_tp, d_side = poses["third_person"][:, :3] - poses["third_person"][0, :3], poses["side"][:, :3] - poses["side"][0, :3]
    assert not np.allclose(d_tp, d_side, atol=1e-4)
    # without camera motion the poses are constant within an episode; the wrist camera follows the arm only
    still = _rollout("distractors=2", steps=4)
    for cam in ("third_person", "side"):
        assert all(np.array_equal(still[0][1]["camera_poses"][cam], info["camera_poses"][cam]) for _, info in still)


def test_distractors_move_on_their_own_and_never_touch_anything():
    env = sim.make_env("widowx", "carrot_on_plate", cameras=(), noise="distractors=4,distractor_speed=2")
    try:
        base = env.unwrapped
        ids = [base.model.body(f"distractor_{i}").id for i in range(4)]
        geoms = {base.model.geom(f"distractor_{i}").id for i in range(4)}
        assert all(base.model.body_mocapid[i] >= 0 for i in ids)  # kinematic (mocap) bodies
        assert all(base.model.geom_contype[g] == 0 and base.model.geom_conaffinity[g] == 0 for g in geoms)
        env.reset(seed=1)
        start = base.data.xpos[ids].copy()
        expert = sim.make_expert(env)
        obs = base._last_obs
        for _ in range(15):
            obs, *_ = env.step(expert.act(obs))
            for k in range(base.data.ncon):
                con = base.data.contact[k]
                assert con.geom1 not in geoms and con.geom2 not in geoms
        moved = np.linalg.norm(base.data.xpos[ids] - start, axis=1)
        assert (moved > 0.01).all(), moved
        # outside the task workspace (objects at x 0.22..0.40, |y| <= 0.17)
        xy = base.data.xpos[ids, :2]
        assert ((xy[:, 0] > 0.47) | (np.abs(xy[:, 1]) > 0.24)).all(), xy
    finally:
        env.close()


def test_expert_still_succeeds_with_all_noise():
    env = sim.make_env("widowx", "stack_cube", cameras=("third_person",), image_size=SMALL, noise=ALL_ON)
    try:
        from sim.experts import run_episode

        assert run_episode(env, seed=0)["success"]
    finally:
        env.close()


def test_ood_camera_ranges_fall_outside_the_default_range():
    rng = np.random.default_rng(0)
    nominal = cams.nominal_poses()["side"]
    ranges = cams.resolve_ranges(cams.ood_ranges())["side"]
    default = cams.DEFAULT_RANGES["side"]["pos"]
    for _ in range(50):
        pose = cams.sample_pose(nominal, ranges, rng)
        off = np.abs(np.asarray(pose.pos) - np.asarray(nominal.pos))
        assert (off >= np.asarray(default) - 1e-12).all() and (off <= 2 * np.asarray(default) + 1e-12).all()
    with pytest.raises(ValueError, match="pos_min"):
        cams.resolve_ranges({"side": {"pos": (0.01, 0.01, 0.01), "pos_min": (0.02, 0.0, 0.0)}})


def test_record_sim_passes_noise_to_the_env_and_its_metadata_to_the_writer(tmp_path, monkeypatch):
    import lam_ros.recording.sim as rec

    seen = {}

    class Captured(Exception):
        pass

    class FakeWriter:  # the real writer merges ``metadata`` into meta/info.json["lam_ros"] (test_recording_*)
        def __init__(self, root, fps, features, metadata=None, **kwargs):
            seen.update(metadata or {})
            raise Captured

    monkeypatch.setattr(rec, "RecordingWriter", FakeWriter)
    noise = ExogenousNoise(camera_motion=0.5, distractors=1)
    with pytest.raises(Captured):
        rec.record_sim(tmp_path / "ds", robot="widowx", task="stack_cube", episodes=1, cameras=("side",),
                       image_size=SMALL, randomize_cameras=True, camera_ranges=cams.ood_ranges(), noise=noise,
                       progress=False)
    assert seen["exogenous_noise"] == noise.to_dict()
    assert seen["camera_randomization"]["randomize"] is True
    assert seen["camera_randomization"]["ranges"]["side"]["pos_min"] == list(cams.DEFAULT_RANGES["side"]["pos"])


def test_resuming_with_other_noise_is_refused(tmp_path):
    from sim.noise import recording_metadata

    env = sim.make_env("widowx", "stack_cube", cameras=(), noise="lighting=0.5")
    meta = recording_metadata(env, tmp_path, resume=True)  # nothing recorded yet: fine
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text(json.dumps({"lam_ros": meta}))
    assert dataset_noise(tmp_path) == ExogenousNoise(lighting=0.5)
    assert recording_metadata(env, tmp_path, resume=True) == meta
    other = sim.make_env("widowx", "stack_cube", cameras=(), noise="lighting=1")
    with pytest.raises(ValueError, match="exogenous noise lighting=0.5, not lighting=1"):
        recording_metadata(other, tmp_path, resume=True)
    (tmp_path / "meta" / "info.json").write_text(json.dumps({"lam_ros": {}}))
    assert dataset_noise(tmp_path) is None  # older datasets: unknown, not "no noise"
