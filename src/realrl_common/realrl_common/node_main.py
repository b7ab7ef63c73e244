"""The body of every node's ``main``: init, build, spin, and a clean exit.

A ConfigError while building the node ends the process with status 2 (BAD_CONFIG_EXIT) and
the message (which names the key and the fix) instead of a traceback; the launcher does not
restart it.

SIGINT or SIGTERM ends it with status 0. rclpy's signal handler shuts the ROS context down
from its own thread, so a callback that publishes, or a message being taken, at that moment
fails with RCLError ("context is invalid"); that error, raised once ROS is shut down, is the
stop itself, not a crash (``stopped_by_shutdown``).

SIGUSR1 prints every thread's stack to stderr and the node goes on: ``kill -USR1 <pid>``
shows where a node that does not stop, or does not answer, is waiting.
"""
from __future__ import annotations

import faulthandler
import gc
import signal
import sys
from typing import Callable

import rclpy
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation

from realrl_common.config import BAD_CONFIG_EXIT, ConfigError

RCLError = rclpy_implementation.RCLError
"""What rcl calls fail with (a take or publish on a context already shut down among them)."""


def freeze_heap() -> None:
    """Move every object alive now (modules, the node, its robot or network) out of the
    garbage collector's view. A full collection of a node's heap takes 15-40 ms on a loaded
    2-core machine, long enough to make a 10 Hz control tick late; afterwards collections
    scan only what was allocated since. Call it when a node has built what it keeps."""
    gc.collect()
    gc.freeze()


def stopped_by_shutdown(error: BaseException, context=None) -> bool:
    """True if ``error`` is an rcl call failing because the context was shut down under it (a
    signal arrived while a callback ran or a message was taken): a clean stop, not a crash.
    Any error while the context is still up is a real one."""
    return (isinstance(error, (RCLError, InvalidHandle))
            and not rclpy.ok(context=context))


def spin_node(make_node: Callable, name: str, args=None, make_executor: Callable | None = None,
              keep_ros_on_signal: bool = False) -> None:
    """Build the node and spin it until SIGINT/SIGTERM or shutdown; then close it.

    ``keep_ros_on_signal``: without rclpy's signal handlers, which end every ROS context at
    once; SIGINT and SIGTERM raise KeyboardInterrupt instead, so the node's ``close`` can
    still publish (a robot under ros2_control is told to hold over ROS)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if keep_ros_on_signal:
        def stop(signum, frame):
            raise KeyboardInterrupt
        # Both explicitly: a process started in the background by a shell inherits SIGINT
        # ignored, and Python then installs no KeyboardInterrupt handler for it.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        rclpy.init(args=args, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    else:
        rclpy.init(args=args)
    try:
        node = make_node()
    except ConfigError as e:
        print(f'{name}: bad configuration: {e}', file=sys.stderr)
        rclpy.try_shutdown()
        raise SystemExit(BAD_CONFIG_EXIT)
    freeze_heap()
    executor = (make_executor or rclpy.executors.SingleThreadedExecutor)()
    executor.add_node(node)
    try:
        if keep_ros_on_signal:
            # Nothing wakes the executor's wait on a signal without rclpy's handlers, and
            # Python runs a signal handler only between bytecodes: wait in short slices.
            while rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (RCLError, InvalidHandle) as e:
        if not stopped_by_shutdown(e):
            raise
    finally:
        close = getattr(node, 'close', None)
        if close is not None:
            close()
        node.destroy_node()
        rclpy.try_shutdown()
