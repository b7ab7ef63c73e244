"""The simulated UR controller on the wire: an RTDE output server (no ROS imports).

`RTDEWireServer` listens on a local address at the RTDE port (30004; ur_rtde has no port
argument, so each test picks its own loopback address, 127.x.y.z) and speaks the part of
the RTDE protocol (version 2) that the real `rtde_receive.RTDEReceiveInterface` uses:
protocol version, controller version, output recipe setup, start, then a stream of data
packages with the state of a `SimURController`. The real SDK's receive side can so be
tested against the simulated arm: that its modes, joints and TCP pose decode as the driver
expects. The control side (a URScript the SDK uploads and drives through registers) is not
served; ``realrl_driver.robots.ur_rtde.sim.RTDEControlInterface`` stands in for it.

Packets: a header (uint16 size including the header, uint8 type) and a big-endian payload.

ur_rtde's receive constructor holds Python's interpreter lock while it waits for the first
data package, so the server must run in another process than the client:
`ur_rtde_peer HOST` (or `python -m realrl_sim_peers.ur_rtde_wire HOST`) serves a fresh
simulated controller at HOST, prints 'ready', and takes lines on stdin that change it:
'move q0 .. q5' (moveJ), 'protective_stop', 'unlock', 'estop', 'power_off', 'quit'.
"""
from __future__ import annotations

import socket
import struct
import sys
import threading

from realrl_driver.robots.ur_rtde.sim import (
    SAFETY_MODE_PROTECTIVE_STOP,
    SAFETY_MODE_ROBOT_EMERGENCY_STOP,
)

RTDE_PORT = 30004
VERSION, CONTROLLER_VERSION, SETUP_OUTPUTS, START, PAUSE, DATA = 86, 118, 79, 83, 80, 85
CONTROLLER = (5, 4, 0, 0)  # PolyScope 5.4: an e-Series controller, 500 Hz
STREAM_PERIOD_S = 0.004

# RTDE output variables (the RTDE guide's names) -> (RTDE type, struct format).
VECTOR6D, VECTOR3D, DOUBLE = ('VECTOR6D', '>6d'), ('VECTOR3D', '>3d'), ('DOUBLE', '>d')
INT32, UINT32, UINT64 = ('INT32', '>i'), ('UINT32', '>I'), ('UINT64', '>Q')
TYPES = {name: VECTOR6D for name in (
    'target_q', 'target_qd', 'target_qdd', 'target_current', 'target_moment', 'actual_q',
    'actual_qd', 'actual_current', 'joint_control_output', 'actual_TCP_pose', 'actual_TCP_speed',
    'actual_TCP_force', 'target_TCP_pose', 'target_TCP_speed', 'joint_temperatures',
    'actual_joint_voltage', 'ft_raw_wrench', 'payload_inertia')}
TYPES.update({name: DOUBLE for name in (
    'timestamp', 'actual_execution_time', 'speed_scaling', 'target_speed_fraction',
    'actual_momentum', 'actual_main_voltage', 'actual_robot_voltage', 'actual_robot_current',
    'standard_analog_input0', 'standard_analog_input1', 'standard_analog_output0',
    'standard_analog_output1', 'payload')})
TYPES.update({'actual_tool_accelerometer': VECTOR3D, 'payload_cog': VECTOR3D,
              'actual_digital_input_bits': UINT64, 'actual_digital_output_bits': UINT64,
              'robot_mode': INT32, 'safety_mode': INT32, 'joint_mode': ('VECTOR6INT32', '>6i'),
              'runtime_state': UINT32, 'robot_status_bits': UINT32, 'safety_status_bits': UINT32})
TYPES.update({f'output_int_register_{i}': INT32 for i in range(48)})
TYPES.update({f'output_double_register_{i}': DOUBLE for i in range(48)})


def _packet(kind: int, payload: bytes = b'') -> bytes:
    return struct.pack('>HB', 3 + len(payload), kind) + payload


def _read(conn: socket.socket, n: int) -> bytes:
    data = b''
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError('the client closed the connection')
        data += chunk
    return data


class RTDEWireServer:
    """Serves one SimURController's state over RTDE at (host, 30004), one client at a time."""

    def __init__(self, controller, host: str):
        self.controller, self.host = controller, host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, RTDE_PORT))
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self.clients = 0
        self._thread = threading.Thread(target=self._serve, name='rtde-wire', daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self._sock.close()

    def values(self) -> dict:
        """The controller's state by RTDE variable name (others are sent as zeros)."""
        c = self.controller
        safety = c.safety_mode
        bits = 1 << 0 if safety == 1 else 0
        bits |= (1 << 2) if safety == SAFETY_MODE_PROTECTIVE_STOP else 0
        bits |= (1 << 6) | (1 << 7) if safety == SAFETY_MODE_ROBOT_EMERGENCY_STOP else 0
        q, qd, tcp = list(c.q), list(c.qd), list(c.tcp_pose())
        return {'timestamp': c.time, 'actual_q': q, 'target_q': q, 'actual_qd': qd,
                'target_qd': qd, 'actual_TCP_pose': tcp, 'target_TCP_pose': tcp,
                'robot_mode': c.robot_mode, 'safety_mode': safety, 'safety_status_bits': bits,
                'robot_status_bits': 1 | (2 if c.program_running else 0),
                'runtime_state': 2 if c.program_running else 1, 'speed_scaling': 1.0,
                'target_speed_fraction': 1.0}

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.clients += 1
            with conn:
                try:
                    self._session(conn)
                except (ConnectionError, OSError):
                    pass  # the client went away; wait for the next one

    def _session(self, conn: socket.socket) -> None:
        names: list[str] = []
        conn.settimeout(None)
        while not self._stop.is_set():
            size, kind = struct.unpack('>HB', _read(conn, 3))
            body = _read(conn, size - 3)
            if kind == VERSION:
                conn.sendall(_packet(VERSION, b'\x01'))
            elif kind == CONTROLLER_VERSION:
                conn.sendall(_packet(CONTROLLER_VERSION, struct.pack('>4I', *CONTROLLER)))
            elif kind == SETUP_OUTPUTS:  # double frequency, then comma-separated names
                names = [n for n in body[8:].decode().split(',') if n]
                types = ','.join(TYPES.get(n, ('NOT_FOUND',))[0] for n in names)
                conn.sendall(_packet(SETUP_OUTPUTS, b'\x01' + types.encode()))
            elif kind == START:
                conn.sendall(_packet(START, b'\x01'))
                self._stream(conn, names)
                return
            elif kind == PAUSE:
                conn.sendall(_packet(PAUSE, b'\x01'))

    def _stream(self, conn: socket.socket, names: list[str]) -> None:
        while not self._stop.wait(STREAM_PERIOD_S):
            values = self.values()
            payload = b'\x01'  # the recipe id
            for name in names:
                fmt = TYPES[name][1]
                width = struct.calcsize(fmt) // (8 if fmt[-1] in 'dQ' else 4)
                value = values.get(name, [0] * width if width > 1 else 0)
                payload += struct.pack(fmt, *value) if width > 1 else struct.pack(fmt, value)
            conn.sendall(_packet(DATA, payload))


def main(argv=None) -> None:
    """Serves a simulated UR controller over RTDE at host; stdin lines move it and
    trigger its faults."""
    from realrl_driver.robots.ur_rtde import sim as ur_rtde_sim
    host = (argv or sys.argv[1:] or ['127.0.0.1'])[0]
    controller = ur_rtde_sim.SimURController(host)
    server = RTDEWireServer(controller, host)
    actions = {'protective_stop': lambda: controller.protective_stop('requested'),
               'unlock': controller.unlock_protective_stop,
               'estop': controller.press_emergency_stop, 'power_off': controller.power_off}
    print('ready', flush=True)
    for line in sys.stdin:
        word, *args = line.split()
        if word == 'quit':
            break
        if word == 'move':
            controller.move([float(a) for a in args], 1.0, 1.0)
        else:
            actions[word]()
        print('done', flush=True)
    server.close()


if __name__ == '__main__':
    main()
