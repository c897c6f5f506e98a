"""Each safety rule of lam_ros.safety has a test here (no ROS needed)."""

import logging
import math

import numpy as np
import pytest

from lam_ros.adapters.ee import EECommand, apply_delta_action, rotation_angle, rpy_to_matrix, matrix_to_rpy
from lam_ros.safety import SafetyConfig, SafetyLayer, Watchdog

HOME = np.array([0.30, 0.0, 0.20, 0.0, 0.5, 0.0])


def make(dry_run=False, inputs=("cam", "policy"), **kw):
    layer = SafetyLayer(SafetyConfig(dry_run=dry_run, required_inputs=inputs, **kw))
    return layer


def fresh(layer, now=10.0):
    for name in layer.watchdog.required:
        layer.feed(name, now - 0.05)


def cmd(dxyz=(0.01, 0, 0), drpy=(0, 0, 0), gripper=1.0):
    return EECommand(HOME[:3] + np.asarray(dxyz), HOME[3:] + np.asarray(drpy), gripper)


def test_dry_run_is_the_default_and_blocks_sending():
    layer = SafetyLayer(SafetyConfig(required_inputs=()))
    assert layer.dry_run is True
    d = layer.check(cmd(), HOME, now_s=1.0)
    assert d.send is False and d.blocked == ["dry_run"]
    assert d.command is not None  # computed and logged, just not sent
    layer.set_dry_run(False)
    assert layer.check(cmd(), HOME, now_s=1.0).send is True


def test_valid_command_passes_unchanged():
    layer = make()
    fresh(layer)
    d = layer.check(cmd((0.01, -0.01, 0.005)), HOME, now_s=10.0)
    assert d.send and not d.notes
    np.testing.assert_allclose(d.command.position, HOME[:3] + [0.01, -0.01, 0.005])


def test_workspace_box_clamps_position(caplog):
    layer = make(workspace_min=(0.1, -0.3, 0.15), workspace_max=(0.5, 0.3, 0.5), max_step_translation_m=1.0)
    fresh(layer)
    with caplog.at_level(logging.WARNING):
        d = layer.check(cmd((0.0, 0.0, -0.2)), HOME, now_s=10.0)
    assert d.send
    assert d.command.position[2] == pytest.approx(0.15)
    assert any("workspace clamp" in n for n in d.notes)
    assert "workspace clamp" in caplog.text


def test_robot_outside_box_blocks_rather_than_sending_an_outside_target():
    layer = make(workspace_min=(0.1, -0.3, 0.15), workspace_max=(0.5, 0.3, 0.5))
    fresh(layer)
    far_below = HOME.copy()
    far_below[2] = 0.0  # robot 15 cm under the box; one step cannot reach it
    d = layer.check(cmd(), far_below, now_s=10.0)
    assert not d.send and "outside workspace box" in d.reason


def test_translation_step_is_scaled_down_keeping_direction():
    layer = make(max_step_translation_m=0.02)
    fresh(layer)
    d = layer.check(cmd((0.06, 0.08, 0.0)), HOME, now_s=10.0)
    step = d.command.position - HOME[:3]
    assert np.linalg.norm(step) == pytest.approx(0.02)
    np.testing.assert_allclose(step / np.linalg.norm(step), [0.6, 0.8, 0.0], atol=1e-9)
    assert d.send and any("step translation" in n for n in d.notes)


def test_rotation_step_is_limited():
    layer = make(max_step_rotation_rad=0.1)
    fresh(layer)
    d = layer.check(cmd(drpy=(0.0, 0.0, 0.5)), HOME, now_s=10.0)
    assert rotation_angle(HOME[3:], d.command.rpy) == pytest.approx(0.1, abs=1e-6)
    assert d.send and any("step rotation" in n for n in d.notes)


@pytest.mark.parametrize("name", ["cam", "policy"])
def test_watchdog_stops_sending_when_any_input_is_stale(name):
    layer = make()
    fresh(layer, now=10.0)
    assert layer.check(cmd(), HOME, now_s=10.0).send
    # Every input but one keeps arriving; that one goes stale (> 0.2 s).
    for other in layer.watchdog.required:
        if other != name:
            layer.feed(other, 10.29)
    d = layer.check(cmd(), HOME, now_s=10.3)
    assert not d.send and name in d.reason and "stale" in d.reason


def test_watchdog_default_limit_and_never_seen_inputs():
    assert SafetyConfig().stale_after_s == 0.2
    wd = Watchdog(0.2, ["cam_a", "cam_b"])
    wd.feed("cam_a", 1.0)
    assert wd.stale(1.1) == {"cam_b": None}
    wd.feed("cam_a", 0.5)  # the latest arrival counts, even with an earlier stamp (clock jumped back)
    assert wd.age("cam_a", 1.1) == pytest.approx(0.6) and "cam_a" in wd.stale(1.1)


def test_watchdog_future_stamps_and_clock_jumps_never_silence_it():
    wd = Watchdog(0.2, ["cam"], max_future_s=0.1)
    wd.feed("cam", 100.0)
    assert wd.stale(100.1) == {}
    # the clock jumps back (simulator reset): the old stamp is now "in the future" -> stale, not fresh forever
    assert "cam" in wd.stale(5.0)
    wd.feed("cam", 5.0)  # a frame of the new timeline is accepted at once
    assert wd.stale(5.1) == {} and "cam" in wd.stale(5.3)
    wd.clear()
    assert wd.stale(5.0) == {"cam": None}


def test_safety_layer_reports_future_stamped_inputs():
    layer = make()
    for name in layer.watchdog.required:
        layer.feed(name, 20.0)
    d = layer.check(cmd(), HOME, now_s=10.0)
    assert not d.send and "in the future" in d.reason
    with pytest.raises(ValueError, match="max_future_s"):
        SafetyConfig(max_future_s=-1)
    assert SafetyConfig.for_robot("piper").workspace_max == (0.6, 0.4, 0.5)


def test_estop_latches_until_reset():
    layer = make()
    fresh(layer)
    layer.estop("operator pressed e-stop")
    for _ in range(3):
        d = layer.check(cmd(), HOME, now_s=10.0)
        assert not d.send and "e-stop" in d.reason
    layer.reset_estop()
    assert layer.check(cmd(), HOME, now_s=10.0).send


@pytest.mark.parametrize(
    "bad",
    [
        EECommand([np.nan, 0, 0.2], [0, 0, 0], 1.0),
        EECommand([0.3, 0, 0.2], [0, np.inf, 0], 1.0),
        EECommand([0.3, 0, 0.2], [0, 0, 0], float("nan")),
    ],
)
def test_non_finite_targets_are_blocked_never_repaired(bad):
    layer = make()
    fresh(layer)
    d = layer.check(bad, HOME, now_s=10.0)
    assert not d.send and d.command is None and "non-finite" in d.reason


def test_non_finite_robot_state_blocks():
    layer = make()
    fresh(layer)
    state = HOME.copy()
    state[0] = np.nan
    assert not layer.check(cmd(), state, now_s=10.0).send
    assert not layer.check(cmd(), None, now_s=10.0).send


def test_out_of_range_values_never_leave():
    layer = make(max_step_rotation_rad=10.0, max_step_translation_m=10.0)
    fresh(layer)
    rng = np.random.default_rng(0)
    for _ in range(200):
        target = EECommand(rng.uniform(-3, 3, 3), rng.uniform(-10, 10, 3), rng.uniform(-5, 5))
        d = layer.check(target, HOME, now_s=10.0)
        if d.send:
            c = d.command
            assert layer.box.contains(c.position)
            assert 0.0 <= c.gripper <= 1.0
            assert np.all(np.abs(c.rpy) <= math.pi)
            assert c.is_finite()


def test_bad_config_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="workspace box"):
        SafetyConfig(workspace_min=(0.5, 0, 0), workspace_max=(0.1, 1, 1))
    with pytest.raises(ValueError, match="stale_after_s"):
        SafetyConfig(stale_after_s=0)


def test_blocked_logs_are_throttled_but_reason_changes_are_logged(caplog):
    layer = make(log_period_s=100.0)
    with caplog.at_level(logging.WARNING, logger="lam_ros.safety"):
        for i in range(10):
            layer.check(cmd(), HOME, now_s=10.0 + i * 0.2)  # inputs never seen
        assert caplog.text.count("BLOCKED") == 1
        layer.estop("test")
        layer.check(cmd(), HOME, now_s=13.0)
    assert caplog.text.count("BLOCKED") == 2


def test_delta_action_rotation_is_about_base_axes():
    pose = np.array([0.3, 0.0, 0.2, 0.3, 0.2, -0.1])
    c = apply_delta_action(pose, [0.01, 0, 0, 0, 0, 0.2, -1.0])
    np.testing.assert_allclose(c.position, [0.31, 0, 0.2])
    expected = rpy_to_matrix([0, 0, 0.2]) @ rpy_to_matrix(pose[3:])
    np.testing.assert_allclose(rpy_to_matrix(c.rpy), expected, atol=1e-9)
    assert c.gripper == 0.0  # -1 (closed, Bridge convention) -> 0
    np.testing.assert_allclose(matrix_to_rpy(rpy_to_matrix(pose[3:])), pose[3:], atol=1e-12)
