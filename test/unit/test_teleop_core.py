"""Teleop core: device state -> action inside the robot's bounds; engaging; config checks."""
import numpy as np
import pytest

from realrl_common.config import ConfigError, build_config
from realrl_teleop.devices import DeviceState
from realrl_teleop.teleop_core import TeleopConfig, TeleopCore, TeleopMapping

LOW, HIGH = np.array([-1, -1, -1], np.float32), np.array([1, 1, 1], np.float32)


def state(axes, held=(), pressed=()):
    return DeviceState(np.array(axes, float), frozenset(held), tuple(pressed))


def test_keyboard_axes_map_to_action_components_at_speed():
    core = TeleopCore('keyboard', TeleopMapping(speed=0.5))
    core.set_action_space(LOW, HIGH)
    a = core.command(state([1, -1, 0, 0, 0, 0, 0, 0]))
    assert a.dtype == np.float32 and a.tolist() == [0.5, -0.5, 0.0]


def test_gamepad_default_flips_sticks_and_applies_the_dead_zone():
    core = TeleopCore('gamepad', TeleopMapping(dead_zone=0.2, speed=1.0))
    core.set_action_space(LOW, HIGH)
    # axes: 0 left stick x, 1 left stick y (down +), 4 right stick y
    a = core.command(state([0.1, -1.0, 0, 0, 0.6, 0]))
    assert a[0] == pytest.approx(1.0)       # stick pushed up -> +x
    assert a[1] == 0.0                       # 0.1 is inside the dead zone
    assert a[2] == pytest.approx(-0.5)       # (0.6 - 0.2) / 0.8, flipped
    assert core.command(state([0.21, 0, 0, 0, 0, 0]))[1] == pytest.approx(-0.0125)  # continuous


def test_actions_stay_inside_asymmetric_bounds():
    low, high = np.array([0.0, -0.2], np.float32), np.array([1.0, 0.1], np.float32)
    core = TeleopCore('spacemouse', TeleopMapping(axes=(0, 1), scales=(5.0, -5.0), speed=1.0))
    core.set_action_space(low, high)
    rest = core.command(state(np.zeros(6)))
    assert rest.tolist() == pytest.approx([0.5, -0.05])  # the middle of each range
    for axes in ([1, 1], [-1, -1], [0.3, -0.9]):
        a = core.command(state(axes + [0, 0, 0, 0]))
        assert np.all(a >= low) and np.all(a <= high)
    assert core.command(state([1, -1, 0, 0, 0, 0])).tolist() == pytest.approx([1.0, 0.1])


def test_missing_device_axes_read_as_zero():
    core = TeleopCore('gamepad', TeleopMapping(axes=(0, 7, 1), scales=(1, 1, 1), speed=1.0,
                                               dead_zone=0.0))
    core.set_action_space(LOW, HIGH)
    assert core.command(state([1.0, 0.5])).tolist() == pytest.approx([1.0, 0.0, 0.5])


def test_toggle_engages_on_a_press_and_disengages_on_the_next():
    core = TeleopCore('keyboard', TeleopMapping())
    core.set_action_space(LOW, HIGH)
    idle = state(np.zeros(8))
    assert core.answer(idle) is None and not core.engaged
    assert core.update(state(np.zeros(8), pressed=(0,))) == 'engaged'
    assert core.answer(idle).tolist() == [0, 0, 0]
    assert core.update(idle) is None and core.engaged  # stays engaged without a press
    assert core.update(state(np.zeros(8), pressed=(0, 0))) is None  # two presses: net none
    assert core.update(state(np.zeros(8), pressed=(0,))) == 'disengaged'
    assert core.answer(idle) is None


def test_deadman_engages_only_while_held():
    core = TeleopCore('gamepad', TeleopMapping())
    core.set_action_space(LOW, HIGH)
    assert core.engage_button == 4 and core.engage_mode == 'deadman'
    assert core.update(state(np.zeros(6), held={4}, pressed=(4,))) == 'engaged'
    assert core.update(state(np.zeros(6), held={4})) is None
    assert core.update(state(np.zeros(6), held={1})) == 'disengaged'
    core.update(state(np.zeros(6), held={4}))
    core.disengage()
    assert core.answer(state(np.zeros(6), held={4})) is None


def test_no_answer_before_the_robot_description():
    core = TeleopCore('keyboard', TeleopMapping())
    core.update(state(np.zeros(8), pressed=(0,)))
    assert core.engaged and core.answer(state(np.zeros(8))) is None


def test_mappings_that_do_not_fit_the_robot_are_refused():
    with pytest.raises(ValueError, match='mapping.axes has 2 entries; the robot has 3'):
        TeleopCore('keyboard', TeleopMapping(axes=(0, 1))).set_action_space(LOW, HIGH)
    seven = np.ones(7, np.float32)
    with pytest.raises(ValueError, match='gamepad default mapping covers 4 .* has 7'):
        TeleopCore('gamepad', TeleopMapping()).set_action_space(-seven, seven)
    with pytest.raises(ValueError, match='low <= high'):
        TeleopCore('keyboard', TeleopMapping()).set_action_space(HIGH, LOW)


def test_config_errors_name_the_key():
    cfg = build_config(TeleopConfig, {'robot_id': 'arm1', 'device': 'gamepad',
                                      'mapping': {'axes': [1, 0, 4], 'scales': [-1, -1, -1]}})
    assert cfg.mapping.axes == (1, 0, 4) and cfg.mapping.scales == (-1.0, -1.0, -1.0)
    for values, message in [
            ({'device': 'joystick'}, "device must be one of ['keyboard', 'gamepad'"),
            ({'mapping': {'speed': 2.0}}, 'mapping: speed must be in (0, 1]'),
            ({'mapping': {'axes': [0, 1], 'scales': [1.0]}}, 'scales needs one value per entry'),
            ({'mapping': {'engage_mode': 'deadman'}}, 'a keyboard cannot be a deadman'),
            ({'mapping': {'dead_zone': 1.0}}, 'dead_zone must be in [0, 1)'),
            ({'mapping': {'spead': 0.1}}, "did you mean 'mapping.speed'")]:
        with pytest.raises(ConfigError) as err:
            build_config(TeleopConfig, values)
        assert message in str(err.value), str(err.value)


def test_verdict_buttons_mark_success_and_failure():
    keyboard = TeleopCore('keyboard', TeleopMapping())
    state = DeviceState(np.zeros(8), frozenset(), (1, 0, 2))
    assert keyboard.verdicts(state) == [True, False]  # c, then n; space is not a verdict
    pedal = TeleopCore('gamepad', TeleopMapping(success_button=7, failure_button=6))
    assert pedal.verdicts(DeviceState(np.zeros(4), frozenset(), (6, 7, 4))) == [False, True]
    assert TeleopCore('gamepad', TeleopMapping()).verdicts(
        DeviceState(np.zeros(4), frozenset(), (1, 2))) == []  # none by default
    with pytest.raises(ConfigError, match='must differ'):
        build_config(TeleopConfig, {'device': 'gamepad',
                                    'mapping': {'engage_button': 4, 'success_button': 4}})
