"""The WAN emulation's relay is a child process: it must import what it needs from any
environment, not only from one that scripts/env.sh prepared (no root needed for this)."""
import subprocess
import sys

from realrl_bridge import wan


def test_relay_child_imports_its_packages_without_a_pythonpath(monkeypatch):
    monkeypatch.delenv('PYTHONPATH', raising=False)
    env = wan.child_env()
    result = subprocess.run([sys.executable, '-c', 'import realrl_bridge.delay_proxy'],
                            env=env, capture_output=True, text=True, cwd='/', timeout=60)
    assert result.returncode == 0, result.stderr
