"""The body of every node's ``main``: init, build, spin, and a clean exit.

A ConfigError while building the node ends the process with status 2 and the message
(which names the key and the fix) instead of a traceback.
"""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException

from realrl_common.config import ConfigError


def spin_node(make_node: Callable, name: str, args=None, make_executor: Callable | None = None
              ) -> None:
    rclpy.init(args=args)
    try:
        node = make_node()
    except ConfigError as e:
        print(f'{name}: bad configuration: {e}', file=sys.stderr)
        rclpy.try_shutdown()
        raise SystemExit(2)
    executor = (make_executor or rclpy.executors.SingleThreadedExecutor)()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close = getattr(node, 'close', None)
        if close is not None:
            close()
        node.destroy_node()
        rclpy.try_shutdown()
