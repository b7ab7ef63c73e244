"""A node process started ahead of need: its code imported, waiting to become the node.

Most of a Python node's start is imports (torch alone takes 2 s on an idle core and ten
under load). For a node with ``standby: true`` the supervisor keeps one such process beside
the running one::

    python -m realrl_bringup.standby MODULE:FUNCTION EXECUTABLE [ARGS...]

imports MODULE (and with it torch, rclpy, MuJoCo: whatever the node imports at the top),
then blocks on its stdin. One byte, and it calls FUNCTION with ``sys.argv = [EXECUTABLE,
*ARGS]``, exactly as the installed EXECUTABLE would; it is the node from then on. End of
file instead (the supervisor stopping, or gone) and it exits 0 without ever having been a
node. Nothing here starts ROS: rclpy is initialised by the node's own FUNCTION.
"""
from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

GO = b'g'


def entry_point(package: str, executable: str) -> str:
    """'module:function' of the console script ``executable`` of ``package``;
    FileNotFoundError saying how to build it if it is not installed."""
    want = package.replace('-', '_').lower()
    for ep in entry_points(group='console_scripts', name=executable):
        if ep.dist is not None and ep.dist.name.replace('-', '_').lower() == want:
            return ep.value
    raise FileNotFoundError(f'no console script {executable!r} of package {package!r} is '
                            'installed; run scripts/setup.sh (colcon build) and source '
                            'install/setup.bash')


def load(spec: str):
    """The function named by 'module:function' (the module imported now)."""
    module, _, function = spec.partition(':')
    if not module or not function:
        raise ValueError(f'expected MODULE:FUNCTION, got {spec!r}')
    target = importlib.import_module(module)
    for part in function.split('.'):
        target = getattr(target, part)
    return target


def main(argv: list[str] | None = None) -> int:
    """Import, wait for the word, then be the node (its exit status)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print('usage: python -m realrl_bringup.standby MODULE:FUNCTION EXECUTABLE [ARGS...]',
              file=sys.stderr)
        return 2
    function = load(argv[0])
    try:
        go = sys.stdin.buffer.read(1)
    except KeyboardInterrupt:  # stopped while waiting: it never was the node
        return 0
    if go != GO:
        return 0
    sys.argv = argv[1:]
    return function()


if __name__ == '__main__':
    sys.exit(main())
