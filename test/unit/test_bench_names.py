"""What a benchmark calls in a module exists: benches are not run by the test suite, so a
name renamed in ``src`` (``wan._env_with_package``, once) would otherwise break a bench
unseen until someone runs it. Reads each ``bench/*.py`` and checks every ``module.name`` it
uses against the module it imported."""
from __future__ import annotations

import ast
import importlib
import types
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / 'bench'


def imported_modules(tree: ast.Module) -> dict[str, str]:
    """Local name -> module, for each module a file imports (as a module)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split('.')[0]] = (
                    alias.name if alias.asname else alias.name.split('.')[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:   # `from package import module`
                full = f'{node.module}.{alias.name}'
                try:
                    importlib.import_module(full)
                except ImportError:
                    continue           # a name in a module, not a module
                names[alias.asname or alias.name] = full
    return names


def missing_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    modules = imported_modules(tree)
    missing = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            module = importlib.import_module(modules[node.value.id])
            if isinstance(module, types.ModuleType) and not hasattr(module, node.attr):
                missing.append(f'{path.name}:{node.lineno}: {module.__name__}.{node.attr}')
    return missing


def test_every_module_name_a_bench_uses_exists(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))    # benches import their helpers (_util)
    benches = sorted(BENCH.glob('*.py'))
    assert len(benches) > 10
    missing = [m for path in benches for m in missing_names(path)]
    assert not missing, missing


def test_a_renamed_name_is_found(tmp_path):
    bench = tmp_path / 'renamed.py'
    bench.write_text('from realrl_bridge import wan\n\nenv = wan._env_with_package()\n')
    assert missing_names(bench) == ['renamed.py:3: realrl_bridge.wan._env_with_package']
