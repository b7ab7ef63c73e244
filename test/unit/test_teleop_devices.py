"""Teleop devices through the kernel's own interfaces: a real pty for the keyboard, js_event
records through a FIFO and a file for the gamepad, hidraw-like report packets for the
SpaceMouse."""
import glob
import os
import socket
import struct
import termios

import pytest

from realrl_teleop.devices import (
    JS_EVENT,
    DeviceError,
    GamepadDevice,
    KeyboardDevice,
    open_device,
    parse_js_events,
    parse_keys,
)
from realrl_teleop.spacemouse import SpaceMouseDevice, find_spacemouse


def js(time_ms, value, kind, number):
    return JS_EVENT.pack(time_ms, value, kind, number)


# What a pad sends when opened (INIT | kind: its state then), then the user's moves.
RECORDING = b''.join([
    js(0, 0, 0x82, 0), js(0, 0, 0x82, 1), js(0, 1, 0x81, 3),   # init: axes 0, 1; button 3 down
    js(100, -32767, 0x02, 1),                                  # left stick fully up
    js(120, 16384, 0x02, 0),                                   # half right
    js(150, 1, 0x01, 4),                                       # button 4 pressed
])


def test_js_records_parse_and_keep_a_split_record_for_later():
    events, rest = parse_js_events(RECORDING[:30])
    assert len(events) == 3 and len(rest) == 6
    assert (events[0].type, events[0].number, events[0].is_init) == (0x82, 0, True)
    more, rest = parse_js_events(rest + RECORDING[30:])
    assert rest == b'' and [(e.time_ms, e.value, e.number) for e in more] == [
        (100, -32767, 1), (120, 16384, 0), (150, 1, 4)]


def test_gamepad_through_a_fifo(tmp_path):
    fifo = str(tmp_path / 'js0')
    os.mkfifo(fifo)
    pad = GamepadDevice(fifo)
    writer = os.open(fifo, os.O_WRONLY)
    try:
        assert 'joystick stream' in pad.describe()  # a FIFO answers no joystick ioctls
        os.write(writer, RECORDING[:37])  # cut inside a record
        first = pad.poll(0.0)
        assert first.held == {3} and first.pressed == ()  # init state is not a press
        assert first.axes[1] == pytest.approx(-1.0)
        os.write(writer, RECORDING[37:])
        second = pad.poll(0.1)
        assert second.axes[:2] == pytest.approx([16384 / 32767, -1.0])
        assert second.held == {3, 4} and second.pressed == (4,)
        os.write(writer, js(300, 0, 0x01, 4))
        assert pad.poll(0.2).held == {3}
        assert pad.poll(0.3).pressed == ()  # nothing new: no event, no press
    finally:
        os.close(writer)
        pad.close()


def test_gamepad_from_a_recorded_file(tmp_path):
    (tmp_path / 'pad.bin').write_bytes(RECORDING)
    pad = open_device('gamepad', str(tmp_path / 'pad.bin'))
    try:
        state = pad.poll(0.0)
        assert state.pressed == (4,) and state.axes[1] == pytest.approx(-1.0)
    finally:
        pad.close()


def test_absent_gamepad_says_where_it_looked(tmp_path):
    with pytest.raises(DeviceError, match=r'cannot open .*nope'):
        GamepadDevice(str(tmp_path / 'nope'))
    if not glob.glob('/dev/input/js*'):
        with pytest.raises(DeviceError, match=r'/dev/input/js\* matches nothing.*modprobe joydev'):
            GamepadDevice()


def test_keyboard_through_a_real_pty():
    master, slave = os.openpty()
    try:
        kb = KeyboardDevice(os.ttyname(slave), hold_s=0.5)
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & termios.ICANON and not lflag & termios.ECHO  # cbreak
        assert lflag & termios.ISIG  # Ctrl-C still stops the node
        assert kb.poll(0.0).axes.tolist() == [0.0] * 8
        os.write(master, b'w \x1b[C')  # w, space, right arrow (= d)
        state = kb.poll(1.0)
        assert state.pressed == (0,) and state.axes[:3].tolist() == [1.0, -1.0, 0.0]
        assert kb.poll(1.4).axes[0] == 1.0  # within hold_s of the press: still held
        assert kb.poll(1.6).axes[0] == 0.0  # no repeat came: released
        os.write(master, b'rF')  # upper case counts as the key
        assert kb.poll(2.0).axes[2] == -1.0  # the newest press of an axis wins
        os.write(master, b'x')
        assert kb.poll(2.1).axes.tolist() == [0.0] * 8  # x releases everything
        os.write(master, b'cN')
        assert kb.poll(2.2).pressed == (1, 2)  # the verdict keys: success, failure
        kb.close()
        assert termios.tcgetattr(slave)[3] & termios.ICANON  # the terminal is given back
    finally:
        os.close(master)
        os.close(slave)


def test_keys_parse():
    assert parse_keys(b'a\x1b[A\x1b[B\x1b[DQ\x03') == ['a', 'w', 's', 'a', 'q']


def test_keyboard_needs_a_terminal(tmp_path):
    with pytest.raises(DeviceError, match='cannot open the terminal'):
        KeyboardDevice(str(tmp_path / 'no_tty'))
    (tmp_path / 'file').write_text('')
    with pytest.raises(DeviceError, match='is not a terminal'):
        KeyboardDevice(str(tmp_path / 'file'))


def report(rid, *values):
    return bytes([rid]) + struct.pack(f'<{len(values)}h', *values)


def test_spacemouse_reports_through_a_packet_socket():
    """Hidraw hands over one report per read; a SEQPACKET socket keeps the same boundaries."""
    ours, device_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mouse = SpaceMouseDevice(fd=ours.detach())
    try:
        assert mouse.poll(0.0).axes.tolist() == [0.0] * 6
        device_side.send(report(1, 350, -175, 0, 0, 700, -35))  # newer models: all six
        device_side.send(bytes([3, 0b01, 0]))                    # left button down
        state = mouse.poll(0.1)
        assert state.axes.tolist() == pytest.approx([1.0, -0.5, 0.0, 0.0, 1.0, -0.1])
        assert state.pressed == (0,) and state.held == {0}
        device_side.send(report(1, 0, 0, -350))                  # older models: translation,
        device_side.send(report(2, 35, 0, 0))                    # then rotation
        device_side.send(bytes([3, 0b10, 0]))                    # left up, right down
        state = mouse.poll(0.2)
        assert state.axes[:4].tolist() == pytest.approx([0.0, 0.0, -1.0, 0.1])
        assert state.pressed == (1,) and state.held == {1}
    finally:
        mouse.close()
        device_side.close()


def test_absent_spacemouse_lists_the_hid_devices():
    devices = glob.glob('/dev/hidraw*')
    if devices:
        pytest.skip('this machine has hidraw devices')
    with pytest.raises(DeviceError, match=r'no SpaceMouse found.*256f.*hidraw devices here: none'):
        find_spacemouse()


def test_an_unknown_device_kind_lists_the_known_ones():
    with pytest.raises(DeviceError, match="device must be 'keyboard', 'gamepad' or 'spacemouse'"):
        open_device('trackball')
