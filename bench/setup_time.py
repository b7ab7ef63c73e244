"""Time of scripts/setup.sh from nothing (a fresh clone, no .venv, no build) and again
with nothing changed. Baseline, measured in the same run: `python -m venv` plus a bare
`pip install -r requirements.txt` into another new folder — the floor any set-up pays
(registry downloads come from pip's cache on a machine that installed them before).
--quick times only the second run, in this checkout."""
import subprocess
import sys
import tempfile
from pathlib import Path

from _util import ROOT, emit, parse, timed


def sh(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def main():
    args = parse(__doc__)
    if args.quick:
        sh(['bash', 'scripts/setup.sh'], ROOT)
        _, second = timed(sh, ['bash', 'scripts/setup.sh'], ROOT)
        print(f'second run (nothing changed): {second:.2f} s (target <= 10 s)')
        emit({'fresh_s': None, 'second_run_s': round(second, 2)})
        return
    with tempfile.TemporaryDirectory(prefix='realrl-bench-setup-') as tmp:
        clone = Path(tmp) / 'realrl'
        sh(['git', 'clone', '-q', str(ROOT), str(clone)], tmp)
        _, fresh = timed(sh, ['bash', 'scripts/setup.sh'], clone)
        _, second = timed(sh, ['bash', 'scripts/setup.sh'], clone)
        floor = Path(tmp) / 'floor'
        _, base = timed(lambda: (sh([sys.executable, '-m', 'venv', str(floor)], tmp),
                                 sh([str(floor / 'bin/pip'), 'install', '-q', '-r',
                                     str(ROOT / 'requirements.txt')], tmp)))
    print(f'fresh clone set-up {fresh:.1f} s; second run {second:.2f} s (target <= 10 s); '
          f'baseline venv + pip install alone {base:.1f} s')
    emit({'fresh_s': round(fresh, 1), 'second_run_s': round(second, 2),
          'baseline_pip_only_s': round(base, 1)})


if __name__ == '__main__':
    main()
