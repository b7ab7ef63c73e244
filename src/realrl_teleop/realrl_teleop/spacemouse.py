"""A 3Dconnexion SpaceMouse read from its raw HID reports (``/dev/hidraw*``), no library.

The kernel's hidraw driver hands over one HID input report per read. SpaceMice send:
report 1 with the translation (x, y, z as little-endian int16; newer models append the
rotation, 13 bytes in all), report 2 with the rotation (rx, ry, rz) on older models, and
report 3 with the buttons as a bit mask. Full deflection is about +-350 counts. The device's
axes: x to the right, y towards the user, z down; rotations about those axes.
"""
from __future__ import annotations

import errno
import glob
import os
import struct

import numpy as np

from realrl_teleop.devices import DeviceError, DeviceState

VENDORS = {0x046D: '3Dconnexion (Logitech-era)', 0x256F: '3Dconnexion'}
FULL_SCALE = 350.0
"""Counts at full deflection; axes are scaled by it and clipped to [-1, 1]."""
AXIS_NAMES = ('x', 'y', 'z', 'rx', 'ry', 'rz')


def hidraw_devices() -> list[tuple[str, int, int, str]]:
    """(path, vendor, product, name) of every /dev/hidraw* the kernel describes in sysfs."""
    found = []
    for node in sorted(glob.glob('/sys/class/hidraw/hidraw*')):
        info = {}
        try:
            with open(os.path.join(node, 'device', 'uevent')) as f:
                for line in f:
                    key, _, value = line.strip().partition('=')
                    info[key] = value
            _, vendor, product = info['HID_ID'].split(':')
        except (OSError, KeyError, ValueError):
            continue
        found.append(('/dev/' + os.path.basename(node), int(vendor, 16), int(product, 16),
                      info.get('HID_NAME', '?')))
    return found


def is_spacemouse(vendor: int, product: int) -> bool:
    """Whether a USB vendor and product id are a 3Dconnexion SpaceMouse."""
    # Logitech-era 3Dconnexion products are 0xc6xx; every 0x256f product is 3Dconnexion's.
    return vendor == 0x256F or (vendor == 0x046D and product & 0xFF00 == 0xC600)


def find_spacemouse() -> str:
    """Path of the first SpaceMouse's hidraw device; DeviceError saying what to
    check if there is none."""
    devices = hidraw_devices()
    for path, vendor, product, _ in devices:
        if is_spacemouse(vendor, product):
            return path
    listing = ', '.join(f'{p} ({v:04x}:{q:04x} {n})' for p, v, q, n in devices) or 'none'
    raise DeviceError(
        f'spacemouse: no SpaceMouse found; looked for a /dev/hidraw* whose USB vendor is '
        f'3Dconnexion (256f, or 046d with product c6xx); hidraw devices here: {listing}; plug '
        f'it in (a wireless one: its receiver) and give this user read access, e.g. a udev '
        f'rule: KERNEL=="hidraw*", ATTRS{{idVendor}}=="256f", MODE="0660", GROUP="input"')


class SpaceMouseReport:
    """Decoding of one report into the running state (6 axes, held buttons)."""

    def __init__(self):
        self.axes = np.zeros(6)
        self.held: set[int] = set()

    def apply(self, report: bytes) -> list[int]:
        """Update from one report; returns the buttons it pressed."""
        if not report:
            return []
        rid, body = report[0], report[1:]
        if rid == 1 and len(body) >= 6:
            n = 6 if len(body) >= 12 else 3  # newer models: translation and rotation
            self.axes[:n] = self._counts(body, n)
        elif rid == 2 and len(body) >= 6:
            self.axes[3:] = self._counts(body, 3)
        elif rid == 3:
            mask = int.from_bytes(body, 'little')
            now = {b for b in range(8 * len(body)) if mask >> b & 1}
            pressed = sorted(now - self.held)
            self.held = now
            return pressed
        return []

    @staticmethod
    def _counts(body: bytes, n: int) -> np.ndarray:
        values = np.array(struct.unpack_from(f'<{n}h', body), dtype=float)
        return np.clip(values / FULL_SCALE, -1.0, 1.0)


class SpaceMouseDevice:
    """A SpaceMouse on a hidraw node (found through sysfs, or given); ``fd`` may be any
    descriptor that hands over one report per read (what hidraw does)."""

    kind = 'spacemouse'

    def __init__(self, path: str = '', fd: int | None = None):
        if fd is None:
            path = path or find_spacemouse()
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as e:
                hint = ('; give this user read access (udev rule, see the docs)'
                        if e.errno == errno.EACCES else '; check the path (ls /dev/hidraw*)')
                raise DeviceError(f'spacemouse: cannot open {path} ({e.strerror}){hint}') from None
        else:
            os.set_blocking(fd, False)
        self.fd, self.path = fd, path or f'fd {fd}'
        self.report = SpaceMouseReport()

    def describe(self) -> str:
        return f'SpaceMouse on {self.path}'

    def poll(self, now: float) -> DeviceState:
        pressed: list[int] = []
        while True:
            try:
                report = os.read(self.fd, 64)  # one whole report per read
            except BlockingIOError:
                break
            except OSError as e:
                raise DeviceError(f'spacemouse on {self.path} stopped answering '
                                  f'({e.strerror}); was it unplugged?') from None
            if not report:
                break
            pressed += self.report.apply(report)
        return DeviceState(self.report.axes.copy(), frozenset(self.report.held), tuple(pressed))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
