"""From a device's state to an intervention action in the robot's action space (no ROS).

A person takes over at any moment: while *engaged*, every observation the robot sends is
answered with the device's command, flagged as an intervention (the driver then lets no
policy action replace it for that step). Disengaged, nothing is sent and the policy acts.

- Engaging: ``toggle`` (a press of ``engage_button`` engages, the next disengages; the
  keyboard's space bar) or ``deadman`` (engaged only while the button is held; a gamepad's
  shoulder button), so letting go hands the robot back to the policy at once.
- Mapping: action component i follows device axis ``axes[i]``, times ``scales[i]`` (a gain;
  -1 flips the direction), after a ``dead_zone`` that ignores small deflections (the rest
  is stretched so the command stays continuous), clipped to [-1, 1] and times ``speed``.
  That value v in [-1, 1] becomes low + (v + 1) / 2 * (high - low): the middle of the
  robot's range at rest, its bounds at full deflection with speed 1. The result is clipped
  to [low, high] in float32, so it is always inside the robot's limits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from realrl_common.config import check

DEVICES = ('keyboard', 'gamepad', 'spacemouse')
ENGAGE_MODES = ('toggle', 'deadman')


@dataclass(frozen=True)
class DeviceDefaults:
    """A device kind's default axes, scales and engagement."""

    axes: tuple[int, ...]
    scales: tuple[float, ...]
    engage_mode: str
    engage_button: int
    verdict_buttons: tuple[int, int] = (-1, -1)
    """Buttons that mark the episode a success and a failure (-1: none)."""


DEVICE_DEFAULTS = {
    # keys w/s, a/d, r/f, ... are axes 0, 1, 2, ...; space is button 0
    'keyboard': DeviceDefaults(tuple(range(8)), (1.0,) * 8, 'toggle', 0, (1, 2)),  # c, n
    # left stick up -> +x, left stick left -> +y, right stick up -> +z, right stick left;
    # the left shoulder button (4 on the Linux xpad layout) is the deadman
    'gamepad': DeviceDefaults((1, 0, 4, 3), (-1.0, -1.0, -1.0, -1.0), 'deadman', 4),
    # push forward -> +x, push left -> +y, pull up -> +z, then the three rotations;
    # the left button toggles
    'spacemouse': DeviceDefaults((1, 0, 2, 3, 4, 5), (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0),
                                 'toggle', 0),
}


@dataclass(frozen=True)
class TeleopMapping:
    """Device axes and buttons -> action components and engagement."""

    axes: tuple[int, ...] = ()
    """Device axis that drives each action component, in order (one per component);
    empty: the device's default for as many components as the robot has."""
    scales: tuple[float, ...] = ()
    """Gain per action component (-1 reverses it); empty: the default's, or all 1."""
    dead_zone: float = 0.1
    """Deflections below this (of full scale) count as zero."""
    speed: float = 0.5
    """Fraction of the robot's action range commanded at full deflection."""
    engage_mode: str = ''
    """'toggle' or 'deadman'; empty: the device's default (keyboard and SpaceMouse toggle,
    gamepad deadman)."""
    engage_button: int = -1
    """Button that engages; -1: the device's default (keyboard: space)."""
    success_button: int = -1
    """Button (or pedal: USB foot pedals are joysticks) by which a person marks the episode
    a success, which ends it; -1: the device's default (keyboard: c; others: none)."""
    failure_button: int = -1
    """The same for a failure (keyboard: n)."""

    def __post_init__(self):
        check(all(a >= 0 for a in self.axes), f'axes must be >= 0, got {list(self.axes)}')
        check(not self.scales or not self.axes or len(self.scales) == len(self.axes),
              f'scales needs one value per entry of axes ({len(self.axes)}), '
              f'got {len(self.scales)}')
        check(all(np.isfinite(s) for s in self.scales), 'scales must be finite numbers')
        check(0.0 <= self.dead_zone < 1.0, f'dead_zone must be in [0, 1), got {self.dead_zone}')
        check(0.0 < self.speed <= 1.0, f'speed must be in (0, 1], got {self.speed}')
        check(self.engage_mode in ('',) + ENGAGE_MODES,
              f'engage_mode must be one of {list(ENGAGE_MODES)} (or empty for the device '
              f'default), got {self.engage_mode!r}')


@dataclass(frozen=True)
class TeleopConfig:
    """Parameters of the teleop node."""

    robot_id: str = 'arm0'
    """The robot taken over (its driver's namespace)."""
    device: str = 'keyboard'
    """'keyboard' (a terminal), 'gamepad' (/dev/input/js*) or 'spacemouse' (/dev/hidraw*)."""
    device_path: str = ''
    """The device's path; empty: the keyboard of this terminal, the first joystick, the
    first SpaceMouse."""
    mapping: TeleopMapping = field(default_factory=TeleopMapping)
    """Device axes and buttons -> action components and engagement."""
    key_hold_s: float = 0.55
    """A key counts as held this long after its last press (a terminal sends no key
    releases; its key repeat, usually after 0.25-0.5 s, keeps a held key going)."""
    poll_hz: float = 50.0
    """How often the device is read for engage and disengage, besides at each observation."""
    success_reward: float = 1.0
    """Reward of the step a person's success verdict ends."""
    failure_reward: float = 0.0
    """Reward of the step a person's failure verdict ends."""

    def __post_init__(self):
        check(bool(self.robot_id) and self.robot_id.replace('_', '').isalnum(),
              f'robot_id must be a name of letters, digits and _, got {self.robot_id!r}')
        check(self.device in DEVICES,
              f'device must be one of {list(DEVICES)}, got {self.device!r}')
        check(not (self.device == 'keyboard' and self.mapping.engage_mode == 'deadman'),
              "mapping.engage_mode: a keyboard cannot be a deadman (a terminal reports no key "
              "releases); use 'toggle'")
        check(self.key_hold_s > 0, f'key_hold_s must be > 0, got {self.key_hold_s}')
        check(self.poll_hz > 0, f'poll_hz must be > 0, got {self.poll_hz}')
        for name in ('success_reward', 'failure_reward'):
            check(np.isfinite(getattr(self, name)), f'{name} must be a finite number')
        buttons = [b for b in (self.mapping.engage_button, self.mapping.success_button,
                               self.mapping.failure_button) if b >= 0]
        check(len(buttons) == len(set(buttons)),
              'mapping: engage_button, success_button and failure_button must differ')


class TeleopCore:
    """Engagement and the action of one device for one robot."""

    def __init__(self, device: str, mapping: TeleopMapping):
        defaults = DEVICE_DEFAULTS[device]
        self.device, self.mapping = device, mapping
        self.engage_mode = mapping.engage_mode or defaults.engage_mode
        self.engage_button = (mapping.engage_button if mapping.engage_button >= 0
                              else defaults.engage_button)
        self.verdict_buttons = {
            b: ok for b, ok in ((mapping.success_button if mapping.success_button >= 0
                                 else defaults.verdict_buttons[0], True),
                                (mapping.failure_button if mapping.failure_button >= 0
                                 else defaults.verdict_buttons[1], False)) if b >= 0}
        self.engaged = False
        self.low = self.high = None
        self.axes: tuple[int, ...] = ()
        self.scales = np.zeros(0)

    def set_action_space(self, low, high) -> None:
        """The robot's bounds (from its description); ValueError if the mapping does not
        cover its action components."""
        low = np.asarray(low, dtype=np.float32)
        high = np.asarray(high, dtype=np.float32)
        if low.shape != high.shape or low.ndim != 1 or not np.all(low <= high):
            raise ValueError(f'action bounds must be two vectors with low <= high, got '
                             f'{low.tolist()} and {high.tolist()}')
        n, m, d = len(low), self.mapping, DEVICE_DEFAULTS[self.device]
        if m.axes:
            if len(m.axes) != n:
                raise ValueError(f'mapping.axes has {len(m.axes)} entries; the robot has {n} '
                                 f'action components: give one device axis per component')
            axes, scales = m.axes, m.scales or (1.0,) * n
        else:
            if len(d.axes) < n:
                raise ValueError(f'the {self.device} default mapping covers {len(d.axes)} '
                                 f'action components; the robot has {n}: set mapping.axes '
                                 f'(and mapping.scales) for all of them')
            axes = d.axes[:n]
            scales = m.scales or d.scales[:n]
            if len(scales) != n:
                raise ValueError(f'mapping.scales has {len(scales)} entries; the robot has '
                                 f'{n} action components')
        self.low, self.high = low, high
        self.axes, self.scales = tuple(axes), np.asarray(scales, dtype=float)

    def update(self, state) -> str | None:
        """Follow the engage button; returns 'engaged' or 'disengaged' on a change."""
        before = self.engaged
        if self.engage_mode == 'toggle':
            for button in state.pressed:
                if button == self.engage_button:
                    self.engaged = not self.engaged
        else:
            self.engaged = self.engage_button in state.held
        if self.engaged != before:
            return 'engaged' if self.engaged else 'disengaged'
        return None

    def verdicts(self, state) -> list[bool]:
        """A person's verdicts pressed since the last poll: True success, False failure."""
        return [self.verdict_buttons[b] for b in state.pressed if b in self.verdict_buttons]

    def disengage(self) -> None:
        self.engaged = False

    def command(self, state) -> np.ndarray:
        """The device's command as an action inside the robot's bounds (float32)."""
        if self.low is None:
            raise ValueError('no action space yet (the robot description has not arrived)')
        axes = np.asarray(state.axes, dtype=float)
        v = np.array([axes[a] if a < len(axes) else 0.0 for a in self.axes])
        dz = self.mapping.dead_zone
        v = np.where(np.abs(v) <= dz, 0.0, np.sign(v) * (np.abs(v) - dz) / (1.0 - dz))
        v = np.clip(v * self.scales, -1.0, 1.0) * self.mapping.speed
        low, high = self.low.astype(float), self.high.astype(float)
        action = low + (v + 1.0) * 0.5 * (high - low)
        return np.clip(action.astype(np.float32), self.low, self.high)

    def answer(self, state) -> np.ndarray | None:
        """The action to send for an observation now: None unless engaged with bounds."""
        if not self.engaged or self.low is None:
            return None
        return self.command(state)
