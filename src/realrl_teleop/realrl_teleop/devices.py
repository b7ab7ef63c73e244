"""Teleop input devices read through Linux's own interfaces, with no extra library.

- ``KeyboardDevice``: a terminal (its own, or any tty/pty path) in cbreak mode through
  termios: keys arrive one by one, unechoed, and Ctrl-C still stops the process. No X.
- ``GamepadDevice``: the joystick API, ``/dev/input/js*``: 8-byte ``js_event`` records.
- ``SpaceMouseDevice``: a 3Dconnexion SpaceMouse's raw HID reports, ``/dev/hidraw*``.

Every device is polled without blocking: ``poll(now)`` drains what arrived and returns a
``DeviceState`` (axes in [-1, 1], buttons held, buttons pressed since the last poll). A
device that is absent is a ``DeviceError`` that says what was looked for, what was found
and the fix. None of this imports rclpy.
"""
from __future__ import annotations

import errno
import fcntl
import glob
import os
import struct
import termios
import tty
from dataclasses import dataclass, field

import numpy as np


class DeviceError(RuntimeError):
    """A teleop device is absent, cannot be opened, or went away; the message says which
    device was looked for, what was found, and the fix."""


@dataclass(frozen=True)
class DeviceState:
    """An input device's axes and buttons at one poll."""

    axes: np.ndarray
    """Every axis of the device, each in [-1, 1]."""
    held: frozenset[int]
    """Buttons down now (a keyboard has none: a terminal reports no releases)."""
    pressed: tuple[int, ...]
    """Buttons that went down since the previous poll, in order."""


def read_available(fd: int, what: str, path: str, limit: int = 4096) -> bytes:
    """Whatever bytes fd has now, without waiting; DeviceError if the device went away."""
    chunks = []
    while True:
        try:
            data = os.read(fd, limit)
        except BlockingIOError:
            break
        except OSError as e:
            raise DeviceError(f'{what} on {path} stopped answering ({e.strerror}); '
                              f'was it unplugged?') from None
        if not data:  # the writer of a FIFO or a recording has nothing more
            break
        chunks.append(data)
        if len(data) < limit:
            break
    return b''.join(chunks)


# -- keyboard -----------------------------------------------------------------------------
AXIS_KEYS = ('ws', 'ad', 'rf', 'tg', 'yh', 'uj', 'ik', 'ol')
"""Keys that push axis i to +1 (first letter) or -1 (second letter)."""
ARROWS = {b'\x1b[A': 'w', b'\x1b[B': 's', b'\x1b[D': 'a', b'\x1b[C': 'd'}
"""Arrow keys, as terminals send them, act as w s a d."""
ENGAGE_KEY = ' '
"""The space bar is button 0: it engages and disengages."""
STOP_KEY = 'x'
"""Releases every axis at once (a terminal sends no key releases)."""
SUCCESS_KEY, FAILURE_KEY = 'c', 'n'
"""Buttons 1 and 2: a person's verdict on the episode, success (c: complete) or failure (n)."""


def parse_keys(data: bytes) -> list[str]:
    """Bytes from a terminal -> key names (lower case letters, ' ', arrows as w s a d)."""
    keys, i = [], 0
    while i < len(data):
        seq = data[i:i + 3]
        if seq in ARROWS:
            keys.append(ARROWS[seq])
            i += 3
            continue
        ch = chr(data[i]).lower()
        if ch.isprintable():
            keys.append(ch)
        i += 1
    return keys


class KeyboardDevice:
    """A terminal as a teleop device. A terminal reports presses, never releases, so a
    key counts as held for ``hold_s`` after its last press: keep it down and the terminal's
    key repeat keeps the axis moving; ``x`` releases everything at once."""

    kind = 'keyboard'

    def __init__(self, path: str = '', hold_s: float = 0.55):
        self.hold_s = hold_s
        self._own_fd = False
        if path:
            try:
                fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
            except OSError as e:
                raise DeviceError(f'keyboard: cannot open the terminal {path!r} ({e.strerror}); '
                                  f'give a tty path (e.g. /dev/pts/3) or leave device_path '
                                  f'empty to use this process\'s terminal') from None
            self._own_fd = True
        elif os.isatty(0):
            fd, path = 0, os.ttyname(0)
        else:
            try:
                fd, path = os.open('/dev/tty', os.O_RDWR | os.O_NOCTTY), '/dev/tty'
                self._own_fd = True
            except OSError:
                raise DeviceError('keyboard: this process has no terminal (stdin is not a tty '
                                  'and /dev/tty cannot be opened); run the teleop node in a '
                                  'terminal (not under `realrl train`), give device_path of a '
                                  'tty, or use device: gamepad or spacemouse') from None
        if not os.isatty(fd):
            raise DeviceError(f'keyboard: {path!r} is not a terminal; give a tty path')
        self.fd, self.path = fd, path
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)  # keys one by one, no echo; Ctrl-C still SIGINT
        os.set_blocking(fd, False)
        self._last: dict[int, tuple[float, float]] = {}  # axis -> (sign, time of last press)

    def describe(self) -> str:
        return f'keyboard on {self.path}'

    def poll(self, now: float) -> DeviceState:
        pressed = []
        for key in parse_keys(read_available(self.fd, 'keyboard', self.path)):
            if key == ENGAGE_KEY:
                pressed.append(0)
            elif key in (SUCCESS_KEY, FAILURE_KEY):
                pressed.append(1 if key == SUCCESS_KEY else 2)
            elif key == STOP_KEY:
                self._last.clear()
            for axis, (plus, minus) in enumerate(AXIS_KEYS):
                if key in (plus, minus):
                    self._last[axis] = (1.0 if key == plus else -1.0, now)
        axes = np.zeros(len(AXIS_KEYS))
        for axis, (sign, at) in self._last.items():
            if now - at <= self.hold_s:
                axes[axis] = sign
        return DeviceState(axes, frozenset(), tuple(pressed))

    def close(self) -> None:
        if self.fd is None:
            return
        try:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            os.set_blocking(self.fd, True)
        except OSError:
            pass
        if self._own_fd:
            os.close(self.fd)
        self.fd = None


# -- gamepad ------------------------------------------------------------------------------
JS_EVENT = struct.Struct('<IhBB')
"""struct js_event: u32 time (ms), s16 value, u8 type, u8 number (linux/joystick.h)."""
JS_EVENT_BUTTON, JS_EVENT_AXIS, JS_EVENT_INIT = 0x01, 0x02, 0x80
JSIOCGAXES, JSIOCGBUTTONS = 0x80016A11, 0x80016A12


def jsiocgname(length: int) -> int:
    """The JSIOCGNAME ioctl request for a name buffer of length bytes."""
    return 0x80006A13 | (length << 16)


@dataclass
class JoystickEvent:
    """One js_event record of the Linux joystick interface."""

    time_ms: int
    value: int
    type: int
    number: int

    @property
    def is_init(self) -> bool:
        """Sent once per control at open, with its state then (not a change)."""
        return bool(self.type & JS_EVENT_INIT)


def parse_js_events(data: bytes) -> tuple[list[JoystickEvent], bytes]:
    """Whole js_event records in data, and the bytes of an incomplete one left over."""
    whole = len(data) - len(data) % JS_EVENT.size
    events = [JoystickEvent(*JS_EVENT.unpack_from(data, off))
              for off in range(0, whole, JS_EVENT.size)]
    return events, data[whole:]


@dataclass
class JoystickState:
    """Axes (-32767..32767 scaled to [-1, 1]) and buttons, as events update them."""

    axes: list[float] = field(default_factory=list)
    held: set[int] = field(default_factory=set)

    def apply(self, event: JoystickEvent) -> int | None:
        """Update from one event; returns a button number that was just pressed."""
        kind = event.type & ~JS_EVENT_INIT
        if kind == JS_EVENT_AXIS:
            while len(self.axes) <= event.number:
                self.axes.append(0.0)
            self.axes[event.number] = max(-1.0, min(1.0, event.value / 32767.0))
        elif kind == JS_EVENT_BUTTON:
            if event.value:
                was_up = event.number not in self.held
                self.held.add(event.number)
                return event.number if was_up and not event.is_init else None
            self.held.discard(event.number)
        return None


class GamepadDevice:
    """A gamepad or joystick through the Linux joystick API (joydev)."""

    kind = 'gamepad'

    def __init__(self, path: str = ''):
        if not path:
            found = sorted(glob.glob('/dev/input/js*'))
            if not found:
                raise DeviceError(
                    'gamepad: no joystick device: /dev/input/js* matches nothing; plug the '
                    'gamepad in (for Bluetooth, pair it first), load the joystick driver '
                    '(sudo modprobe joydev), then check `ls /dev/input/js*`')
            path = found[0]
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            hint = ('; add this user to the input group (sudo usermod -aG input $USER)'
                    if e.errno == errno.EACCES else '; check the path (ls /dev/input/js*)')
            raise DeviceError(f'gamepad: cannot open {path} ({e.strerror}){hint}') from None
        self.path = path
        self.state = JoystickState()
        self._rest = b''
        self.name, axes, buttons = self._query()
        self.axis_count, self.button_count = axes, buttons
        self.state.axes = [0.0] * axes

    def _query(self) -> tuple[str, int, int]:
        """Name, axes and buttons from the driver (0s for a recording in a file or FIFO)."""
        try:
            buf = bytearray(1)
            fcntl.ioctl(self.fd, JSIOCGAXES, buf)
            axes = buf[0]
            fcntl.ioctl(self.fd, JSIOCGBUTTONS, buf)
            buttons = buf[0]
            name = bytearray(128)
            fcntl.ioctl(self.fd, jsiocgname(len(name)), name)
            return name.split(b'\0')[0].decode(errors='replace'), axes, buttons
        except OSError:
            return 'joystick stream', 0, 0

    def describe(self) -> str:
        return f'gamepad {self.name!r} on {self.path} ({self.axis_count} axes, ' \
               f'{self.button_count} buttons)'

    def poll(self, now: float) -> DeviceState:
        events, self._rest = parse_js_events(
            self._rest + read_available(self.fd, 'gamepad', self.path))
        pressed = [b for b in (self.state.apply(e) for e in events) if b is not None]
        return DeviceState(np.array(self.state.axes, dtype=float), frozenset(self.state.held),
                           tuple(pressed))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def open_device(kind: str, path: str = '', key_hold_s: float = 0.55):
    """The device of that kind ('keyboard', 'gamepad', 'spacemouse'), opened."""
    if kind == 'keyboard':
        return KeyboardDevice(path, key_hold_s)
    if kind == 'gamepad':
        return GamepadDevice(path)
    if kind == 'spacemouse':
        from realrl_teleop.spacemouse import SpaceMouseDevice
        return SpaceMouseDevice(path)
    raise DeviceError(f"device must be 'keyboard', 'gamepad' or 'spacemouse', got {kind!r}")
