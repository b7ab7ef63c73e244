"""The style is held by a tool: `ruff check .` (settings in pyproject.toml) finds nothing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--output-format', 'concise',
                           '--no-cache', '.'], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f'ruff check . found problems:\n{done.stdout}{done.stderr}'


def test_ruff_reads_the_project_settings():
    # A lint that silently ran with defaults would pass on anything it does not check.
    done = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--show-settings',
                           'pyproject.toml'], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'line_length = 99' in done.stdout
    assert 'max_complexity = 15' in done.stdout
