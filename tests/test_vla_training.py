"""Stage 1 / stage 2 training through the CLI commands on a tiny LeRobot dataset."""

import argparse
import json

import numpy as np
import pytest
import torch

from _vla_helpers import fake_images, fake_labeller, make_tiny_dataset
from lam_ros.commands import finetune_vla as finetune_cmd
from lam_ros.commands import pretrain_vla as pretrain_cmd

torch.set_num_threads(1)
FAST = ["--batch-size", "4", "--lr", "1e-3", "--save-every", "2"]


def parse(module, argv):
    parser = argparse.ArgumentParser()
    module.configure(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny_ds")


def patch_lam(mp):
    """`--lam fake` -> the fake labeller instead of loading a LAM checkpoint."""
    from training import vla_data

    mp.setattr(vla_data, "lam_labeller", lambda path, device="cpu", feature_cache=None: fake_labeller)


@pytest.fixture(scope="module")
def stage1(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "stage1"
    args = parse(pretrain_cmd, ["--dataset", str(dataset), "--out", str(out), "--lam", "fake", "--steps", "4", *FAST])
    with pytest.MonkeyPatch.context() as mp:
        patch_lam(mp)
        assert pretrain_cmd.run(args) == 0
    return out


def test_episodes_load_with_views_tasks_and_actions(dataset):
    from training.vla_data import label_latent_codes, load_episodes

    data = load_episodes(dataset)
    assert data.cameras == ["third_person", "wrist"] and len(data) == 12
    assert data.images["wrist"].shape == (12, 32, 32, 3) and data.images["wrist"].dtype == np.uint8
    assert data.tasks[0] == "put the carrot on the plate" and data.tasks[-1].startswith("stack")
    assert data.actions.shape == (12, 7) and data.robot_type == "widowx"
    np.testing.assert_array_equal(data.episode_end(), [6] * 6 + [12] * 6)
    seen = []

    def spy(ft, ftk):
        seen.append((ft["wrist"][:, 0, 0, 0].copy(), ftk["wrist"][:, 0, 0, 0].copy()))
        return fake_labeller(ft, ftk)

    codes = label_latent_codes(data, spy, frame_gap=3, batch_size=100)
    assert codes.shape == (12, 4) and codes.dtype == np.int64
    ft, ftk = seen[0]
    np.testing.assert_array_equal(ftk[:6], data.images["wrist"][[3, 4, 5, 5, 5, 5], 0, 0, 0])  # clamped to the episode
    assert data.images["wrist"][0, 0, 0, 0] == ft[0]
    assert len(load_episodes(dataset, max_episodes=1)) == 6
    # the cap is per dataset (a per-task label budget), not overall: one episode from each of two datasets
    two = load_episodes([dataset, dataset], max_episodes=1)
    np.testing.assert_array_equal(two.episode_end(), [6] * 6 + [12] * 6)


def test_bad_datasets_are_clear_errors(dataset, tmp_path):
    from training.vla_data import load_episodes

    with pytest.raises(FileNotFoundError, match="LeRobot"):
        load_episodes(tmp_path)
    with pytest.raises(ValueError, match="side"):
        load_episodes(dataset, cameras=["side"])
    with pytest.raises(ValueError, match="hold 2 episode\\(s\\), fewer than the 3 requested"):
        load_episodes(dataset, min_episodes=3)


def test_pretrain_writes_checkpoint_curves_and_refuses_overwrite(stage1, dataset, monkeypatch):
    patch_lam(monkeypatch)
    files = {p.name for p in stage1.iterdir()}
    assert {"vla_config.json", "model.safetensors", "loss_curves.png", "train_state"} <= files
    cfg = json.loads((stage1 / "vla_config.json").read_text())
    assert cfg["stage"] == "latent" and cfg["cameras"] == ["third_person", "wrist"]
    state = json.loads((stage1 / "train_state" / "trainer_state.json").read_text())
    assert state["step"] == 4 and len(state["history"]["latent_loss"]) == 4
    args = parse(pretrain_cmd, ["--dataset", str(dataset), "--out", str(stage1), "--lam", "fake", "--steps", "4"])
    with pytest.raises(ValueError, match="resume"):
        pretrain_cmd.run(args)


def test_finetune_from_stage1_then_resume_then_policy(stage1, dataset, tmp_path):
    from lam_ros.policy import Policy

    out = tmp_path / "stage2"
    argv = ["--dataset", str(dataset), "--out", str(out), "--init", str(stage1), "--lora-rank", "4", "--lora-alpha", "8", *FAST]
    assert finetune_cmd.run(parse(finetune_cmd, argv + ["--steps", "2"])) == 0
    first = json.loads((out / "train_state" / "trainer_state.json").read_text())
    assert first["step"] == 2
    assert finetune_cmd.run(parse(finetune_cmd, argv + ["--steps", "4", "--resume"])) == 0
    state = json.loads((out / "train_state" / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["history"]["action_loss"][:2] == first["history"]["action_loss"]
    cfg = json.loads((out / "vla_config.json").read_text())
    assert cfg["stage"] == "action" and cfg["lora"]["rank"] == 4 and cfg["robot"] == "widowx"
    stats = json.loads((out / "action_stats.json").read_text())
    assert stats["gripper_min"] == 0.0 and stats["gripper_max"] == 1.0
    policy = Policy.load(out, robot="widowx")
    chunk = policy.step(fake_images(0, size=32), "put the carrot on the plate")
    assert chunk.shape == (5, 7) and np.isfinite(chunk).all()
    # the checkpoint records how its training frames were stored, and the runtime shows the model run-time
    # frames the same way: resized to the recorded 32x32, through the recording's h264, then the model's resize
    assert cfg["frame_codec"] == "h264" and cfg["source_image_size"] == [32, 32]
    from lam_ros.recording.codec import round_trip
    from models.image_prep import resize_images

    raw = fake_images(1, size=48)  # a camera at another resolution than the recording
    seen = {}

    def capture(images, instructions, states=None):
        seen.update(images[0])
        return np.zeros((1, 5, 7), dtype=np.float32)

    assert policy.frame_codec == "h264"
    policy.model.predict_chunk_normalized = capture
    policy.step(raw, "put the carrot on the plate")
    for cam, img in raw.items():
        assert np.array_equal(seen[cam], round_trip(resize_images(img, 32)[None])[0])
    raw_policy = Policy.load(out, robot="widowx", frame_codec="off")
    assert raw_policy.frame_codec is None
    raw_policy.model.predict_chunk_normalized = capture
    raw_policy.step(raw, "put the carrot on the plate")
    assert all(np.array_equal(seen[cam], img) for cam, img in raw.items())
    with pytest.raises(ValueError, match="unknown video codec 'h265x'"):
        Policy.load(out, robot="widowx", frame_codec="h265x")


def test_from_scratch_baseline_with_lam_loss_and_bad_args(dataset, tmp_path, monkeypatch):
    patch_lam(monkeypatch)
    out = tmp_path / "scratch"
    argv = ["--dataset", str(dataset), "--out", str(out), "--init", "tiny", "--cameras", "wrist", "--lam", "fake",
            "--chunk-size", "3", "--max-episodes", "1", "--lora-rank", "4", "--steps", "2", "--latent-loss-weight", "0.25",
            *FAST]
    assert finetune_cmd.run(parse(finetune_cmd, argv)) == 0
    cfg = json.loads((out / "vla_config.json").read_text())
    assert cfg["cameras"] == ["wrist"] and cfg["chunk_size"] == 3 and cfg["latent_loss_weight"] == 0.25
    history = json.loads((out / "train_state" / "trainer_state.json").read_text())["history"]
    # the weight scales the cross-entropy in the loss that is optimised
    np.testing.assert_allclose(history["loss"], np.add(history["action_loss"], np.multiply(0.25, history["latent_loss"])),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="latent-loss-weight"):
        finetune_cmd.run(parse(finetune_cmd, ["--dataset", str(dataset), "--out", str(tmp_path / "w"), "--lam", "fake",
                                              "--latent-loss-weight", "-1"]))
    with pytest.raises(ValueError, match="lora-rank"):
        finetune_cmd.run(parse(finetune_cmd, ["--dataset", str(dataset), "--out", str(tmp_path / "x"), "--lora-rank", "0"]))
    with pytest.raises(FileNotFoundError, match="resume"):
        finetune_cmd.run(parse(finetune_cmd, ["--dataset", str(dataset), "--out", str(tmp_path / "y"), "--resume"]))


def test_real_lam_runtime_as_labeller(tmp_path):
    """The LAM engineer's runtime plugs in as the labeller (frames resized to its input)."""
    from _lam_helpers import tiny_config
    from models.lam import LatentActionModel, save_lam
    from training.vla_data import lam_labeller

    torch.manual_seed(0)
    cfg = tiny_config(views=["third_person", "wrist"])
    save_lam(LatentActionModel(cfg), tmp_path / "lam")
    label = lam_labeller(tmp_path / "lam")
    rng = np.random.default_rng(0)
    frames = lambda: {v: rng.integers(0, 256, (3, 48, 40, 3), dtype=np.uint8) for v in ("third_person", "wrist")}  # noqa: E731
    codes = label(frames(), frames())
    assert codes.shape == (3, cfg.num_tokens) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < cfg.num_codes
    with pytest.raises(FileNotFoundError):
        lam_labeller(tmp_path / "missing")


def test_labeller_uses_only_the_views_the_lam_was_trained_on(tmp_path):
    """A LAM trained on third_person (and side) labels a third_person + wrist dataset from third_person
    alone: adding the wrist view it never saw changes nothing; a dataset without any of its views is refused."""
    from _lam_helpers import tiny_config
    from lam_ros.latent_actions import LatentActionRuntime
    from models.lam import LatentActionModel, save_lam
    from training.vla_data import lam_labeller

    torch.manual_seed(0)
    save_lam(LatentActionModel(tiny_config(views=["third_person", "side"])), tmp_path / "lam")
    label = lam_labeller(tmp_path / "lam")
    rng = np.random.default_rng(1)
    t = {v: rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8) for v in ("third_person", "wrist")}
    tk = {v: rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8) for v in ("third_person", "wrist")}
    alone = label({"third_person": t["third_person"]}, {"third_person": tk["third_person"]})
    np.testing.assert_array_equal(label(t, tk), alone)
    mixed, _ = LatentActionRuntime.from_checkpoint(tmp_path / "lam").infer(t, tk)  # what labelling did before
    assert (mixed != alone).any()
    with pytest.raises(ValueError, match="wrist"):
        label({"wrist": t["wrist"]}, {"wrist": tk["wrist"]})


def test_noop_frames_are_left_out_as_samples_but_stay_in_chunks():
    from models.vla import ActionNormalizer
    from training.vla_data import EpisodeData, VLAFrames, noop_frames

    move = [0.02, 0, 0, 0, 0, 0, 1.0]
    still_open = [0, 0, 0, 0, 0, 0, 1.0]
    close = [0, 0, 0, 0, 0, 0, 0.0]
    # episode 0: move, still (no-op), close (gripper changes: kept), still closed (no-op)
    # episode 1 starts with a still frame: kept (no previous command to repeat)
    actions = np.array([move, still_open, close, close, still_open, move], np.float32)
    episode = np.array([0, 0, 0, 0, 1, 1])
    assert noop_frames(actions, episode).tolist() == [False, True, False, True, False, False]

    data = EpisodeData(images={"cam": np.zeros((6, 8, 8, 3), np.uint8)}, tasks=["t"] * 6, episode=episode,
                       actions=actions, robot_type="widowx", fps=5)
    normalizer = ActionNormalizer.fit(np.tile(actions, (20, 1)) + np.random.default_rng(0).normal(0, 1e-3, (120, 7)))
    frames = VLAFrames(data, ["cam"], chunk_size=3, normalizer=normalizer, drop_noops=True)
    assert len(frames) == 4
    first = frames[0]
    # the chunk of frame 0 still contains the no-op frame 1 as its second step
    np.testing.assert_allclose(first["actions"][1].numpy(), normalizer.normalize(actions[1:2])[0], atol=1e-6)
    assert len(VLAFrames(data, ["cam"], chunk_size=3, normalizer=normalizer)) == 6


def test_cosine_schedule_and_ema_weights_survive_resume(dataset, tmp_path):
    """--lr-schedule cosine ends at lr 0; --ema-decay saves the average (raw weights kept for --resume); a run
    interrupted and resumed ends with exactly the weights of an uninterrupted one, EMA and schedule included."""
    from safetensors.torch import load_file

    def run(out, steps, *extra):
        argv = ["--dataset", str(dataset), "--out", str(out), "--init", "tiny", "--cameras", "wrist", "--finetune", "full",
                "--lr-schedule", "cosine", "--warmup-steps", "1", "--ema-decay", "0.5", "--steps", str(steps), *FAST, *extra]
        assert finetune_cmd.run(parse(finetune_cmd, argv)) == 0
        return load_file(str(out / "model.safetensors")), load_file(str(out / "train_state" / "raw_model.safetensors"))

    whole_avg, whole_raw = run(tmp_path / "whole", 4)
    opt = json.loads((tmp_path / "whole" / "train_state" / "optimizer.json").read_text())
    assert opt["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine over 4 steps reaches 0
    key = "action_decoder.queries"
    assert not torch.equal(whole_avg[key], whole_raw[key])  # the checkpoint is the average, not the last step
    run(tmp_path / "split", 2)
    split_avg, split_raw = run(tmp_path / "split", 4, "--resume")
    for name in (key, "action_decoder.out.3.weight"):
        torch.testing.assert_close(split_raw[name], whole_raw[name])
        torch.testing.assert_close(split_avg[name], whole_avg[name])


def test_collapsed_stage1_targets_are_flagged(caplog):
    """A LAM that gives (nearly) every frame the same code makes stage 1 learn a constant: warned, with the share."""
    from training.pretrain_vla import warn_if_collapsed

    spread = np.arange(400).reshape(100, 4) % 16
    with caplog.at_level("WARNING"):
        assert warn_if_collapsed(spread) == pytest.approx(25 / 400)
    assert "collapsed" not in caplog.text
    collapsed = np.full((100, 4), 6)
    collapsed[0] = 3
    with caplog.at_level("WARNING"):
        assert warn_if_collapsed(collapsed) == pytest.approx(396 / 400)
    assert "one LAM code is 99 %" in caplog.text


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one precision per process (a CLI run is one process): reset it around a test that
    trains in another precision than the tests before and after it."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_bf16_on_the_cpu_trains_with_eager_attention_and_gives_sdpa_back(dataset, tmp_path, monkeypatch,
                                                                          fresh_accelerate_state):
    """--mixed-precision bf16 on the CPU: the language model trains with eager attention (CPU flash SDPA is slow
    backward in bf16), under autocast, and the model leaves training with SDPA again; the checkpoint it writes
    is float32, finite, and loads as a policy."""
    from models.vla import VLA
    from training import pretrain_vla

    seen = {}
    original = pretrain_vla._train

    def spy(model, dataset, out_dir, settings, title, resume_state, accelerator):
        seen["attention"] = model.base_model().config.text_config._attn_implementation
        seen["autocast"] = accelerator.mixed_precision
        result = original(model, dataset, out_dir, settings, title, resume_state, accelerator)
        seen["model"] = model
        return result

    monkeypatch.setattr(pretrain_vla, "_train", spy)
    out = tmp_path / "bf16"
    argv = ["--dataset", str(dataset), "--out", str(out), "--init", "tiny", "--cameras", "wrist", "--finetune", "full",
            "--steps", "3", "--mixed-precision", "bf16", *FAST]
    assert finetune_cmd.run(parse(finetune_cmd, argv)) == 0
    assert seen["attention"] == "eager" and seen["autocast"] == "bf16"
    assert seen["model"].base_model().config.text_config._attn_implementation == "sdpa"
    state = json.loads((out / "train_state" / "trainer_state.json").read_text())
    assert all(np.isfinite(v).all() for v in state["history"].values()) and state["step"] == 3
    policy = VLA.load(out)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in policy.parameters())
    assert policy.base_model().config.text_config._attn_implementation == "sdpa"
