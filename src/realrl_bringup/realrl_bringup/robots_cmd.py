"""`realrl robots`: the hardware manager's robots as a table.

Listens on /hardware_manager/robots (latched, so the last report arrives at once) for up to
``wait_s`` seconds and prints one line per robot.
"""
from __future__ import annotations

import os

TOPIC = '/hardware_manager/robots'
HEADER = ('ROBOT', 'KIND', 'STATE', 'HOLDER', 'RATE HZ', 'HEALTH')


def format_robots(robots) -> str:
    """A table of RobotState messages (or anything with their fields)."""
    rows = [HEADER]
    for r in robots:
        if r.control_hz > 0:
            rate = f'{r.achieved_hz:.1f}/{r.control_hz:g}'
        else:
            rate = f'{r.achieved_hz:.1f}' if r.achieved_hz > 0 else '-'
        holder = (f'{r.lease_holder} ({r.lease_expires_in_s:.0f}s)' if r.lease_holder else '-')
        rows.append((r.robot_id or f'? {r.driver}', r.kind or '-', r.lifecycle_state or '-',
                     holder, rate, r.health))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    return '\n'.join('  '.join(cell.ljust(w) for cell, w in zip(row, widths)) + '  ' + row[-1]
                     for row in rows)


def fetch_robots(wait_s: float):
    """The newest RobotStates from a hardware manager, or None if none answered in time."""
    import time

    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from realrl_common.qos import LATCHED_QOS
    from realrl_interfaces.msg import RobotStates

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f'realrl_robots_{os.getpid()}', context=context)
    got = []
    node.create_subscription(RobotStates, TOPIC, got.append, LATCHED_QOS)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + wait_s
        while not got and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return got[-1] if got else None


def robots(wait_s: float) -> int:
    """Print the table; 1 if no hardware manager answered, 130 on Ctrl-C."""
    try:
        msg = fetch_robots(wait_s)
    except KeyboardInterrupt:
        return 130
    if msg is None:
        domain = os.environ.get('ROS_DOMAIN_ID', '0')
        print(f'realrl: no hardware manager answered on {TOPIC} within {wait_s:g} s '
              f'(ROS_DOMAIN_ID={domain}). Start one with `ros2 run realrl_hardware '
              f'hardware_manager` (or install/realrl_hardware/lib/realrl_hardware/'
              f'hardware_manager), or add it to the graph; or wait longer with --wait-s.')
        return 1
    if not msg.robots:
        print('realrl: the hardware manager knows no robots yet (no driver on the graph)')
        return 0
    print(format_robots(msg.robots))
    return 0
