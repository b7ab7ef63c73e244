"""Whether this machine can render offscreen (a GL context for MuJoCo): tests that render skip
on that missing capability only; any other error of theirs fails them."""
from __future__ import annotations

import functools
import re

import pytest

_NO_GL = re.compile(r'EGL|OSMesa|OpenGL|GLFW|glGetError|display', re.IGNORECASE)


@functools.cache
def _missing() -> str | None:
    """Why an 8x8 render of an empty MuJoCo model fails here, or None if it works."""
    import mujoco

    model = mujoco.MjModel.from_xml_string('<mujoco/>')
    try:
        renderer = mujoco.Renderer(model, 8, 8)
    except (ImportError, OSError, AttributeError, RuntimeError, mujoco.FatalError) as e:
        # PyOpenGL without its platform library raises AttributeError ('NoneType' ...
        # glGetError), a missing libEGL ImportError, no display FatalError/RuntimeError
        if isinstance(e, (ImportError, OSError)) or _NO_GL.search(str(e)):
            return f'{type(e).__name__}: {e}'
        raise
    renderer.close()
    return None


def require_offscreen_rendering() -> None:
    """Skip the calling test if this machine has no offscreen GL context."""
    reason = _missing()
    if reason is not None:
        pytest.skip(f'no offscreen rendering here (MUJOCO_GL): {reason}')
