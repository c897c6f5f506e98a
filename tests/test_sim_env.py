"""The gymnasium environment: API, observations, determinism, bad input, cameras."""

import math

import gymnasium
import numpy as np
import pytest

import sim
from sim import cameras as cams

SMALL = (64, 64)


@pytest.fixture(scope="module")
def env():
    e = sim.make_env("widowx", "carrot_on_plate", cameras=("third_person", "side", "wrist"), image_size=SMALL)
    yield e
    e.close()


def test_public_names():
    assert sim.ROBOTS == ("widowx", "piper")
    assert sim.TASKS == ("carrot_on_plate", "stack_cube", "spoon_on_towel", "eggplant_in_basket")
    assert len(sim.ENV_IDS) == 8
    assert sim.ENV_IDS[("widowx", "carrot_on_plate")] == "lam_ros/WidowX-CarrotOnPlate-v0"
    for env_id in sim.ENV_IDS.values():
        assert env_id in gymnasium.registry


def test_reset_observation_layout(env):
    obs, info = env.reset(seed=0)
    assert set(obs) == {"images", "ee_pose", "gripper", "joint_pos"}
    assert set(obs["images"]) == {"third_person", "side", "wrist"}
    for img in obs["images"].values():
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert img.std() > 5  # a real picture, not a blank buffer
    assert obs["ee_pose"].shape == (6,) and obs["ee_pose"].dtype == np.float64
    assert obs["gripper"].shape == (1,) and obs["gripper"][0] > 0.95  # starts open
    assert obs["joint_pos"].shape == (6,)
    assert env.observation_space.contains(obs)
    assert info["step"] == 0 and not info["success"]
    for cam in ("third_person", "side", "wrist"):
        pose = info["camera_poses"][cam]
        assert pose.shape == (7,) and abs(np.linalg.norm(pose[3:]) - 1) < 1e-6
    np.testing.assert_allclose(info["camera_poses"]["third_person"][:3], [0.0, -0.16, 0.36], atol=1e-9)
    assert env.unwrapped.instruction == "put carrot on plate"
    assert env.unwrapped.max_episode_steps == 60 and env.unwrapped.control_hz == 5.0
    state = env.unwrapped.state_vector(obs)
    assert state.dtype == np.float32 and state.shape == (7,)
    np.testing.assert_allclose(state[:6], obs["ee_pose"], atol=1e-6)


def test_step_moves_the_tool_and_reports_the_applied_action(env):
    obs, _ = env.reset(seed=1)
    start = obs["ee_pose"][:3].copy()
    action = np.array([0.02, 0.0, -0.02, 0.0, 0.0, 0.0, 1.0])
    obs, reward, terminated, truncated, info = env.step(action)
    assert not terminated and not truncated and reward == 0.0
    np.testing.assert_allclose(info["applied_action"], action, atol=1e-3)
    assert info["clamped"] is False and info["clamp_reasons"] == []
    assert info["step"] == 1 and math.isclose(info["sim_time"], 0.4 + 0.2, abs_tol=1e-9)
    moved = obs["ee_pose"][:3] - start
    assert moved[0] > 0.01 and moved[2] < -0.01  # on its way (the servos lag a little)
    obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))  # hold: the tool settles on the target
    np.testing.assert_allclose(obs["ee_pose"][:3] - start, action[:3], atol=2e-3)
    for key in ("success", "grasp", "consecutive_grasp", "moved_correct_object"):
        assert isinstance(info[key], bool)


def test_unreachable_target_is_clamped_and_reported(env):
    env.reset(seed=2)
    _, _, _, _, info = env.step(np.array([0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0]))  # 2 m up
    assert info["clamped"] is True and info["clamp_reasons"]
    assert info["applied_action"][2] < 0.5


def test_step_absolute(env):
    obs, _ = env.reset(seed=3)
    goal = obs["ee_pose"].copy()
    goal[:3] += [0.02, 0.02, -0.03]
    for _ in range(3):
        obs, *_ = env.unwrapped.step_absolute(goal, 1.0)
    np.testing.assert_allclose(obs["ee_pose"][:3], goal[:3], atol=5e-3)


def test_same_seed_same_images_and_states(env):
    def rollout(seed):
        obs, _ = env.reset(seed=seed)
        frames = [obs]
        for _ in range(3):
            obs, *_ = env.step(np.array([0.01, -0.01, -0.02, 0.0, 0.0, 0.05, 0.0]))
            frames.append(obs)
        return frames

    a, b, c = rollout(7), rollout(7), rollout(8)
    for fa, fb in zip(a, b):
        for cam in fa["images"]:
            np.testing.assert_array_equal(fa["images"][cam], fb["images"][cam])
        np.testing.assert_array_equal(fa["joint_pos"], fb["joint_pos"])
    assert any(not np.array_equal(a[0]["images"][cam], c[0]["images"][cam]) for cam in a[0]["images"])


def test_truncates_at_max_episode_steps():
    env = sim.make_env("widowx", "stack_cube", cameras=())
    env.reset(seed=0)
    hold = np.array([0, 0, 0, 0, 0, 0, 1.0])
    for i in range(60):
        obs, _, terminated, truncated, info = env.step(hold)
        assert not terminated
        assert truncated == (i == 59)
    assert "images" not in obs and env.observation_space.contains(obs)
    assert env.unwrapped.episode_metrics()["steps"] == 60


@pytest.mark.parametrize(
    "action, message",
    [
        (np.array([np.nan, 0, 0, 0, 0, 0, 1.0]), "non-finite"),
        (np.array([0, 0, np.inf, 0, 0, 0, 1.0]), "non-finite"),
        (np.zeros(6), "shape"),
        (np.zeros((7, 1)), "shape"),
        ("forward", "action"),
    ],
)
def test_bad_actions_raise_before_reaching_mujoco(env, action, message):
    env.reset(seed=0)
    qpos = env.unwrapped.data.qpos.copy()
    time_before = env.unwrapped.data.time
    with pytest.raises(ValueError, match=message):
        env.step(action)
    np.testing.assert_array_equal(env.unwrapped.data.qpos, qpos)
    assert env.unwrapped.data.time == time_before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"robot": "ur5"}, "unknown robot 'ur5'"),
        ({"task": "fold_laundry"}, "unknown task 'fold_laundry'"),
        ({"cameras": ("top",)}, "unknown camera 'top'"),
        ({"image_size": (32, 32)}, "outside 64x64..640x480"),
        ({"image_size": (800, 600)}, "outside"),
        ({"image_size": "big"}, "WIDTHxHEIGHT"),
        ({"camera_ranges": {"wrist": {"pos": 0.1}}}, "not a randomisable camera"),
        ({"camera_ranges": {"side": {"pos": -1}}}, "non-negative"),
    ],
)
def test_bad_construction_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sim.make_env(**{"cameras": (), **kwargs})


def test_gymnasium_make_by_id():
    env = gymnasium.make("lam_ros/Piper-SpoonOnTowel-v0", cameras=("wrist",), image_size=(64, 48 + 16))
    obs, _ = env.reset(seed=0)
    assert obs["images"]["wrist"].shape == (64, 64, 3)
    assert env.unwrapped.robot_spec.name == "piper" and env.unwrapped.task.name == "spoon_on_towel"
    env.close()


def test_bridge_intrinsics_scale_with_resolution():
    k = cams.intrinsics(640, 480)
    np.testing.assert_allclose(k, [[623.588, 0, 319.5], [0, 623.588, 239.5], [0, 0, 1]], atol=1e-3)
    k = cams.intrinsics(320, 240)
    np.testing.assert_allclose([k[0, 0], k[0, 2], k[1, 2]], [311.794, 159.5, 119.5], atol=1e-3)
    assert math.isclose(cams.bridge_fovy_deg(), math.degrees(2 * math.atan(240 / 623.588)))
    assert cams.parse_image_size("640x480") == (640, 480)


def test_image_size_is_width_by_height():
    env = sim.make_env("widowx", "carrot_on_plate", cameras=("third_person",), image_size="96x64")
    obs, _ = env.reset(seed=0)
    assert obs["images"]["third_person"].shape == (64, 96, 3)
    env.close()


def test_third_person_camera_projects_the_workspace_centre_into_the_image(env):
    """The Bridge camera looks at the workspace: a point on the table in front of the robot is in view."""
    env.reset(seed=0)
    pose = env.unwrapped.camera_poses()["third_person"]
    rot = cams._quat_to_mat(pose[3:])
    point_cam = rot.T @ (np.array([0.33, 0.02, 0.0]) - pose[:3])
    assert point_cam[2] < 0  # MuJoCo cameras look along -z
    k = cams.intrinsics(640, 480)
    u = k[0, 0] * point_cam[0] / -point_cam[2] + k[0, 2]
    v = -k[1, 1] * point_cam[1] / -point_cam[2] + k[1, 2]
    assert abs(u - 319.5) < 20 and abs(v - 239.5) < 20


def test_camera_randomisation_stays_within_ranges_and_follows_the_seed():
    ranges = {"third_person": {"pos": (0.02, 0.02, 0.02), "rot_deg": (3, 3, 3)}, "side": {"pos": 0.0, "rot_deg": 0.0}}
    env = sim.make_env("widowx", "carrot_on_plate", cameras=(), randomize_cameras=True, camera_ranges=ranges)
    nominal = cams.nominal_poses()
    seen = []
    for seed in (0, 1, 0):
        _, info = env.reset(seed=seed)
        poses = info["camera_poses"]
        offset = poses["third_person"][:3] - np.array(nominal["third_person"].pos)
        assert np.all(np.abs(offset) <= 0.02 + 1e-9) and np.linalg.norm(offset) > 0
        angle = 2 * np.arccos(min(1.0, abs(np.dot(poses["third_person"][3:], nominal["third_person"].quat))))
        assert np.degrees(angle) <= 3 * math.sqrt(3) + 1e-6
        np.testing.assert_allclose(poses["side"], nominal["side"].as_array(), atol=1e-9)
        seen.append(poses["third_person"])
    np.testing.assert_array_equal(seen[0], seen[2])
    assert not np.allclose(seen[0], seen[1])


def test_cameras_fixed_without_randomisation(env):
    _, a = env.reset(seed=0)
    _, b = env.reset(seed=1)
    np.testing.assert_allclose(a["camera_poses"]["third_person"], b["camera_poses"]["third_person"])


def test_step_before_reset_is_an_error():
    env = sim.make_env("widowx", "carrot_on_plate", cameras=())
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(7))


def test_bad_absolute_targets_raise_value_error(env):
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.unwrapped.step_absolute(np.array([0.3, 0.0, np.nan, 0, 0, 0]), 1.0)
    with pytest.raises(ValueError):
        env.unwrapped.step_absolute(np.zeros(3), 1.0)
