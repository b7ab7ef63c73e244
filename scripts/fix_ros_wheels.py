"""Repair packaging faults of the ROS 2 wheels inside a virtual environment.

The wheels' generated ``*Export.cmake`` files name the Python and numpy include
folders of the machine that built them (``/opt/python/cp311-cp311/...``); CMake
refuses targets whose include folders do not exist, so ``rosidl_generate_interfaces``
fails in any package that depends on those messages. This rewrites them to this
interpreter's folders. Idempotent: a file already repaired is left untouched.
"""
import pathlib
import re
import sys
import sysconfig

import numpy

FOREIGN = re.compile(r'/opt/python/cp3\d+-cp3\d+[^;"\s)]*')


def local_path(foreign: str) -> str:
    """This interpreter's include folder for a foreign one (numpy's for a numpy path)."""
    if 'numpy' in foreign:
        return numpy.get_include()
    return sysconfig.get_paths()['include']


def main(prefix: str) -> int:
    """Rewrites the foreign include paths in the cmake files under prefix/share; returns 0."""
    fixed = 0
    for path in pathlib.Path(prefix, 'share').glob('*/cmake/*.cmake'):
        text = path.read_text()
        if '/opt/python/' not in text:
            continue
        path.write_text(FOREIGN.sub(lambda m: local_path(m.group(0)), text))
        fixed += 1
    print(f'fix_ros_wheels: repaired {fixed} cmake file(s) under {prefix}/share')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
