"""Recording for the policy ladder (trimmed episodes, object poses, DART labels) and the
privileged-state baseline trained on it, through the same runtime interface as every policy."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    from lam_ros.cli import main

    # Through the console command users run: a flag parsed but not passed on went unnoticed once.
    root = tmp_path_factory.mktemp("ladder") / "carrot"
    assert main(["record-sim", "--task", "carrot_on_plate", "--episodes", "2", "--cameras", "third_person",
                 "--image-size", "64x64", "--seed", "11", "--only-success", "--stop-after-success", "2",
                 "--action-noise", "0.005", "--layout", "simpler", "--output", str(root)]) == 0
    return root


def test_recording_is_trimmed_after_success_and_carries_object_poses_and_metadata(demos):
    from training.train_state_policy import load_tables

    info = json.loads((demos / "meta" / "info.json").read_text())
    meta = info["lam_ros"]
    assert meta["action_convention"] == "bridge_delta" and meta["stop_after_success"] == 2
    assert meta["action_noise"] == 0.005 and meta["layout"] == "simpler"
    names = info["features"]["observation.environment_state"]["names"]
    assert len(names) == 14 and names[0].endswith(".x") and names[3].endswith(".qw")
    t = load_tables([demos])
    lengths = np.bincount(t["episode"])
    # The expert finishes in about 25 steps: a trimmed episode is far shorter than the 60-step limit.
    assert len(lengths) == 2 and lengths.max() < 45, lengths
    # Poses are real, moving object poses (the carrot is lifted during the episode).
    carrot_z = t["env"][:, 2]
    assert carrot_z.max() - carrot_z.min() > 0.02
    # --layout simpler reached the simulator: episode i (seed 11 + i) starts in SIMPLER configuration 11 + i
    from sim.tasks import SIMPLER_JITTER_XY, get_task, simpler_configs

    configs = simpler_configs(get_task("carrot_on_plate"))
    for episode in range(2):
        first = t["env"][np.flatnonzero(t["episode"] == episode)[0]]
        assert np.abs(first[:2] - configs[11 + episode][0]).max() < SIMPLER_JITTER_XY + 0.005  # settled
    with pytest.raises(ValueError, match="action_noise"):
        from lam_ros.recording.sim import record_sim

        record_sim(demos.parent / "bad", episodes=1, action_noise=0.5, progress=False)


def test_state_policy_trains_loads_and_acts_like_every_policy(demos, tmp_path):
    import sim
    from lam_ros.policy import load_policy
    from training.eval_sim import policy_act
    from training.train_state_policy import train_state_policy

    result = train_state_policy([demos], tmp_path / "state", steps=150, seed=0)
    assert result["episodes"] == 2 and result["final_loss"] < 0.5
    policy = load_policy(tmp_path / "state", robot="widowx", action_dim=7)
    assert policy.needs_env_state and policy.uses_state and policy.cameras == []
    env = sim.make_env(robot="widowx", task="carrot_on_plate", cameras=())
    obs, _ = env.reset(seed=1000)
    act = policy_act(env, policy, env.unwrapped.instruction)
    for _ in range(3):
        a = act(obs)
        assert a.shape == (7,) and np.isfinite(a).all()
        assert np.all(a >= policy.low - 1e-6) and np.all(a <= policy.high + 1e-6)
        obs, *_ = env.step(a)
    with pytest.raises(ValueError, match="object"):
        policy.step({}, env.unwrapped.instruction, env.unwrapped.state_vector(obs), env_state=None)
    with pytest.raises(ValueError, match="not in training"):
        policy.reset()
        policy.act({}, "juggle three balls", env.unwrapped.state_vector(obs), env_state=np.zeros(14, np.float32))
    with pytest.raises(ValueError, match="robot 'widowx', not 'piper'"):
        load_policy(tmp_path / "state", robot="piper")
    env.close()


def test_relative_features_are_object_minus_end_effector_and_survive_a_reload(demos, tmp_path):
    from lam_ros.policy import load_policy
    from models.state_policy import RELATIVE_SCALE
    from training.train_state_policy import load_tables, train_state_policy

    train_state_policy([demos], tmp_path / "rel", steps=20, seed=0, relative=True)
    policy = load_policy(tmp_path / "rel", robot="widowx", action_dim=7)
    assert policy.config.relative and policy.config.input_dim == 7 + 2 * 8 + 1
    t = load_tables([demos])
    x = policy.features(t["state"][:4], t["env"][:4], t["task"][:4])
    assert x.shape == (4, policy.config.input_dim)
    offsets = (t["env"][:4].reshape(4, 2, 7)[..., :3] - t["state"][:4, None, :3]) * RELATIVE_SCALE
    np.testing.assert_allclose(x[:, -6:], offsets.reshape(4, 6), rtol=1e-5, atol=1e-6)
    # the relative features move with the end effector while the absolute ones do not
    moved = t["state"][:1].copy()
    moved[0, 0] += 0.1
    delta = policy.features(moved, t["env"][:1], t["task"][:1]) - x[:1]
    np.testing.assert_allclose(delta[0, -6:], [-0.1 * RELATIVE_SCALE, 0, 0] * 2, atol=1e-5)
