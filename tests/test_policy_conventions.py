"""One action convention end to end, and a checkpoint that carries its preprocessing.

(a) a VLA overfit on one episode, fed that episode's frames through the runtime,
    returns the recorded labels (catches preprocessing / normalisation / chunk-index
    mismatches between training and inference);
(b) a recorded expert episode's actions replayed through the runtime path of
    ``lam-ros run --sim`` (controller -> action convention -> safety -> step_absolute)
    reproduce the expert's success;
(c) ``eval-sim`` (env.step with deltas) and ``run --sim`` (absolute targets through
    the safety layer) drive the arm along the same trajectory for the same checkpoint
    and seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from lam_ros.action_convention import ABSOLUTE_EE, BRIDGE_DELTA, ActionApplier, dataset_convention
from _vla_helpers import make_action_checkpoint, make_tiny_dataset


def _safety(robot: str = "widowx"):
    from lam_ros.safety import SafetyConfig, SafetyLayer

    # dry_run is the safe default; these tests drive the simulated arm on purpose.
    return SafetyLayer(SafetyConfig.for_robot(robot, stale_after_s=0.5, dry_run=False))


def test_overfit_episode_through_runtime_returns_recorded_labels(tmp_path):
    import torch

    from lam_ros.policy import Policy
    from training.finetune_vla import finetune_vla
    from training.pretrain_vla import TrainSettings
    from training.vla_data import load_episodes

    torch.manual_seed(0)
    data_dir = make_tiny_dataset(tmp_path / "one", episodes=1, frames=6, size=32)
    finetune_vla([data_dir], tmp_path / "vla", init="tiny", cameras=["third_person", "wrist"], chunk_size=2,
                 use_state=True, finetune="full", action_loss="mse", drop_noops=False,
                 settings=TrainSettings(steps=120, batch_size=6, lr=3e-3, save_every=1000))
    policy = Policy.load(tmp_path / "vla")
    assert policy.uses_state and policy.image_size == 64 and policy.action_convention == BRIDGE_DELTA
    data = load_episodes([data_dir], cameras=policy.cameras, require_actions=True)  # recorded 32x32: runtime resizes
    scale = policy.high[:-1] - policy.low[:-1]
    for t in range(len(data)):
        chunk = policy.step({c: data.images[c][t] for c in policy.cameras}, data.tasks[t], data.states[t])
        label = data.actions[t]
        assert np.all(np.abs(chunk[0, :-1] - label[:-1]) <= 0.15 * scale), (t, chunk[0], label)
        assert abs(chunk[0, -1] - label[-1]) < 0.3, (t, chunk[0, -1], label[-1])
    with pytest.raises(ValueError, match="robot state"):
        policy.step({c: data.images[c][0] for c in policy.cameras}, data.tasks[0], None)


class ReplayPolicy:
    """Plays back recorded actions (a stand-in for a model whose outputs are known)."""

    action_convention = BRIDGE_DELTA
    uses_state = True

    def __init__(self, actions, cameras):
        self.actions, self.cameras, self.t = np.asarray(actions), list(cameras), 0

    def reset(self):
        self.t = 0

    def act(self, images, instruction, state=None):
        assert state is not None and state.shape == (7,)
        a = self.actions[min(self.t, len(self.actions) - 1)].copy()
        if self.t >= len(self.actions):
            a[:6] = 0.0  # the recording ended: hold still
        self.t += 1
        return a


def test_recorded_expert_actions_replayed_through_run_sim_reproduce_success(tmp_path):
    import sim
    from lam_ros.pipeline import run_sim
    from lam_ros.recording.sim import record_sim
    from training.train_state_policy import load_tables

    root = tmp_path / "expert"
    record_sim(root, task="carrot_on_plate", episodes=1, cameras=("third_person",), image_size=(64, 64), seed=3,
               progress=False)
    assert dataset_convention(root) == BRIDGE_DELTA
    actions = load_tables([root])["action"]
    env = sim.make_env(robot="widowx", task="carrot_on_plate", cameras=("third_person",), image_size=(64, 64))
    summary = run_sim(env, ReplayPolicy(actions, ["third_person"]), _safety(), ["third_person"], episodes=1, seed=3)
    env.close()
    assert summary.sent == summary.steps == 60, summary.to_dict()
    assert summary.successes == 1, summary.to_dict()


def test_eval_sim_and_run_sim_follow_the_same_trajectory(tmp_path):
    import sim
    from lam_ros.pipeline import run_sim
    from lam_ros.policy import load_policy
    from training.eval_sim import policy_act

    ckpt = make_action_checkpoint(tmp_path / "vla", chunk_size=3)
    seed, steps = 7, 12

    def poses_eval():
        policy = load_policy(ckpt, robot="widowx")
        env = sim.make_env(robot="widowx", task="stack_cube", cameras=tuple(policy.cameras), image_size=(64, 64))
        obs, _ = env.reset(seed=seed)
        act = policy_act(env, policy, env.unwrapped.instruction)
        out = []
        for _ in range(steps):
            obs, *_ = env.step(act(obs))
            out.append(obs["ee_pose"][:3].copy())
        env.close()
        return np.array(out)

    def poses_run():
        policy = load_policy(ckpt, robot="widowx")
        env = sim.make_env(robot="widowx", task="stack_cube", cameras=tuple(policy.cameras), image_size=(64, 64))
        out = []
        summary = run_sim(env, policy, _safety(), policy.cameras, episodes=1, max_steps=steps, seed=seed,
                          on_step=lambda result, obs, info: out.append(obs["ee_pose"][:3].copy()))
        env.close()
        assert summary.sent == steps
        return np.array(out)

    a, b = poses_eval(), poses_run()
    assert np.abs(a[0] - a[-1]).max() > 0.01  # the random policy does move the arm
    assert np.abs(a - b).max() < 0.005, np.abs(a - b).max()


def test_action_applier_conventions():
    from lam_ros.adapters.ee import EECommand

    delta = ActionApplier(BRIDGE_DELTA)
    pose = np.array([0.3, 0.0, 0.2, 0.0, 1.4, 0.0])
    first = delta.target([0.01, 0, 0, 0, 0, 0, 1], pose)
    assert np.allclose(first.position, [0.31, 0, 0.2])
    delta.commanded(first)
    # The measured pose lags behind (the arm is still moving): the next delta builds on the command.
    second = delta.target([0.01, 0, 0, 0, 0, 0, 0], pose)
    assert np.allclose(second.position, [0.32, 0, 0.2]) and second.gripper == 0.0
    delta.commanded(EECommand.from_pose6([0.40, 0, 0.2, 0, 1.4, 0], 1.0))  # far from the measured pose: re-based
    assert np.allclose(delta.target([0, 0, 0.01, 0, 0, 0, 1], pose).position, [0.3, 0, 0.21])
    absolute = ActionApplier(ABSOLUTE_EE)
    assert np.allclose(absolute.target([0.25, 0.1, 0.15, 0, 1.2, 0.3, 1], pose).pose6, [0.25, 0.1, 0.15, 0, 1.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        delta.target([np.nan, 0, 0, 0, 0, 0, 1], pose)
    with pytest.raises(ValueError, match="unknown action convention"):
        ActionApplier("joint_velocity")


def test_checkpoint_for_another_convention_or_robot_is_refused(tmp_path):
    import json

    from lam_ros.policy import load_policy
    from training.eval_sim import evaluate

    ckpt = make_action_checkpoint(tmp_path / "vla")
    with pytest.raises(ValueError, match="robot 'widowx', not 'piper'"):
        load_policy(ckpt, robot="piper")
    cfg = json.loads((ckpt / "vla_config.json").read_text())
    cfg["action_convention"] = ABSOLUTE_EE
    (ckpt / "vla_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="absolute_ee"):
        evaluate({"policy": str(ckpt)}, tmp_path / "eval", tasks=["carrot_on_plate"], episodes=1)
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "missing")
