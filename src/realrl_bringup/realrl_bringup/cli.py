"""`realrl`: start a graph from its YAML description, watch it, stop it cleanly.

    realrl train [--config config/reach_sim.yaml] [--run-dir DIR] [--set node.key=value]
    realrl train --resume DIR
    realrl check [--config FILE]          validate a graph file, start nothing
    realrl plot DIR                       redraw a run's learning curve
    realrl robots [--wait-s S]            the hardware manager's robots: kind, state, holder, rate, health
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

from realrl_common.config import ConfigError
from realrl_bringup.graph import GraphSpec, apply_override, load_graph
from realrl_bringup.learning_curve import plot_learning_curve
from realrl_bringup.lease_keeper import LeaseError, LeaseKeeper
from realrl_bringup.progress import EpisodeLog, Progress
from realrl_bringup import robots_cmd
from realrl_bringup.shm_cleanup import files_of
from realrl_bringup.supervisor import Supervisor, executable_path, ros_args

DEFAULT_CONFIG = 'config/reach_sim.yaml'
GRAPH_SNAPSHOT = 'graph.yaml'


def parse_args(argv):
    p = argparse.ArgumentParser(prog='realrl', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True)
    train = sub.add_parser('train', help='run a training graph until it succeeds')
    train.add_argument('--config', default=DEFAULT_CONFIG, help='graph file (YAML)')
    train.add_argument('--run-dir', help='new run folder (default runs/<name>-<time>)')
    train.add_argument('--resume', metavar='DIR', help='continue the run in DIR')
    train.add_argument('--set', action='append', default=[], metavar='NODE.KEY=VALUE',
                       help='override a parameter, e.g. learner.sac.batch_size=128')
    train.add_argument('--max-wall-s', type=float, help='stop after this many seconds')
    train.add_argument('--no-stop-at-success', action='store_true',
                       help='keep running after the success criterion is met')
    train.add_argument('--status-every-s', type=float, default=2.0)
    check = sub.add_parser('check', help='validate a graph file; start nothing')
    check.add_argument('--config', default=DEFAULT_CONFIG)
    check.add_argument('--set', action='append', default=[])
    plot = sub.add_parser('plot', help="redraw a run's learning curve")
    plot.add_argument('run_dir')
    robots = sub.add_parser('robots', help="list the hardware manager's robots")
    robots.add_argument('--wait-s', type=float, default=3.0,
                        help='how long to wait for the hardware manager (default 3)')
    return p.parse_args(argv)


def prepare_run_dir(args) -> tuple[Path, dict]:
    """The run folder and the raw graph description it runs (snapshotted inside it)."""
    if args.resume:
        run_dir = Path(args.resume)
        snapshot = run_dir / GRAPH_SNAPSHOT
        if not snapshot.is_file():
            raise ConfigError(f'--resume {run_dir}: no {GRAPH_SNAPSHOT} there; give the folder '
                              f'of an earlier `realrl train` run')
        return run_dir, {'path': snapshot, 'overrides': args.set}
    config = Path(args.config)
    if not config.is_file():
        raise ConfigError(f'--config {config}: no such file; try {DEFAULT_CONFIG}')
    if args.run_dir:
        run_dir = Path(args.run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise ConfigError(f'--run-dir {run_dir} is not empty; use --resume {run_dir} to '
                              f'continue that run or choose a new folder')
    else:
        name = (yaml.safe_load(config.read_text()) or {}).get('name', config.stem)
        run_dir = Path('runs') / f'{name}-{time.strftime("%Y%m%d-%H%M%S")}'
    return run_dir, {'path': config, 'overrides': args.set}


def write_params(graph: GraphSpec, run_dir: Path) -> dict[str, Path]:
    """One ROS parameters file per node, in the standard `ros__parameters` form."""
    out = {}
    (run_dir / 'params').mkdir(parents=True, exist_ok=True)
    for spec in graph.nodes:
        path = run_dir / 'params' / f'{spec.label}.yaml'
        params = _drop_empty_lists(spec.parameters)
        path.write_text(yaml.safe_dump({spec.fqn: {'ros__parameters': params}}, sort_keys=False))
        out[spec.fqn] = path
    return out


def _drop_empty_lists(d: dict) -> dict:
    # ROS parameter files cannot type an empty list; the node's default applies instead.
    return {k: _drop_empty_lists(v) if isinstance(v, dict) else v
            for k, v in d.items() if v != []}


class StopFlag:
    def __init__(self):
        self.signal = None
        signal.signal(signal.SIGINT, self._set)
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, signum, frame):
        self.signal = signum


def train(args) -> int:
    run_dir, source = prepare_run_dir(args)
    variables = {'run_dir': str(run_dir.resolve())}
    graph = load_graph(source['path'], variables, source['overrides'])
    run_dir.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load(Path(source['path']).read_text())
    for item in source['overrides']:
        apply_override(raw, item)
    (run_dir / GRAPH_SNAPSHOT).write_text(yaml.safe_dump(raw, sort_keys=False))  # for --resume
    params = write_params(graph, run_dir)
    commands = {s.fqn: [executable_path(s)] + ros_args(s, params[s.fqn]) for s in graph.nodes}

    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from realrl_bringup.monitor_node import MonitorNode

    stop = StopFlag()
    # `kill -USR1 <pid>` prints where every thread of this process is (into the run's output)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    supervisor = Supervisor(run_dir / 'logs')
    for spec in graph.nodes:
        supervisor.add(spec, commands[spec.fqn])
    max_wall = args.max_wall_s or graph.stop.max_wall_s
    episode_log = EpisodeLog(run_dir / 'metrics' / 'episodes.jsonl')
    progress = Progress(window=graph.stop.window, time_offset=episode_log.last_time())
    print(f'realrl: run folder {run_dir}  (logs in {run_dir / "logs"})', flush=True)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    monitor = MonitorNode(graph.robot_ids(), progress, episode_log)
    spin = lambda t: rclpy.spin_once(monitor, timeout_sec=t)  # noqa: E731
    outcome, code = 'interrupted', 130
    try:
        supervisor.start_all()
        for fqn, m in supervisor.nodes.items():
            print(f'realrl: started {fqn} (pid {m.proc.pid}, log {m.log_path.name})', flush=True)
        leasing = graph.lease.enabled
        if leasing:  # drivers configured (no motion), then the lease, then activation
            bring_up_all(graph, supervisor, monitor, spin, stop, 'inactive', drivers_only=True)
            monitor.start_leasing(LeaseKeeper(graph.lease, graph.robot_ids(),
                                              f'realrl:{run_dir.name}:{os.getpid()}',
                                              time.monotonic()))
            while not monitor.lease.held and stop.signal is None:
                report(monitor.tend_lease())
                spin(0.05)
        bring_up_all(graph, supervisor, monitor, spin, stop, 'active')
        last_print = last_shm_note = 0.0
        while stop.signal is None:
            spin(0.1)
            if leasing:
                report(monitor.tend_lease())
            now = time.monotonic()
            for m, exit_code, restarted in supervisor.poll():
                print(f'realrl: {m.spec.fqn} exited with {exit_code}'
                      f'{"; restarting" if restarted else ""} (log: {m.log_path})', flush=True)
                if restarted and m.spec.lifecycle:
                    why = monitor.bring_up(m.spec.fqn, spin,
                                           alive=lambda: m.running and stop.signal is None)
                    print(f'realrl: {m.spec.fqn} ' + (why or 'active again'), flush=True)
            progress.update_rate(now)
            if now - last_shm_note >= 2.0:
                supervisor.note_shm()
                last_shm_note = now
            if now - last_print >= args.status_every_s:
                up = [f for f, m in supervisor.nodes.items() if m.running]
                down = [f for f, m in supervisor.nodes.items() if not m.running]
                print(progress.line(up, down), flush=True)
                last_print = now
            if not args.no_stop_at_success and progress.reached(graph.stop.success_rate):
                outcome, code = 'success', 0
                break
            if now - progress.started > max_wall:  # per start, not counting earlier ones
                outcome, code = 'time_limit', 1
                break
    except LeaseError as e:
        print(f'realrl: {e}', file=sys.stderr, flush=True)
        outcome, code = 'no_lease', 1
    except RuntimeError as e:
        print(f'realrl: {e}', file=sys.stderr, flush=True)
        outcome, code = 'failed', 1
    finally:
        summary = dict(progress.summary(), outcome=outcome, run_dir=str(run_dir))
        print(f'realrl: {outcome}; stopping {len(supervisor.nodes)} nodes', flush=True)
        try:
            monitor.release_lease(spin)
        except Exception as e:  # the nodes must be stopped whatever happened; the lease expires
            print(f'realrl: could not release the lease ({e}); it expires after its ttl',
                  file=sys.stderr, flush=True)
        codes = supervisor.stop_all()
        monitor.destroy_node()
        rclpy.try_shutdown()
        # Our own files too: this process keeps them mapped until it exits, moments from now.
        supervisor.shm_seen |= files_of(os.getpid())
        supervisor.remove_orphans(ignore_pids=frozenset({os.getpid()}))
        summary['exit_codes'] = codes
        (run_dir / 'summary.json').write_text(json.dumps(summary, indent=2))
        try:
            png = plot_learning_curve(run_dir, window=graph.stop.window)
            print(f'realrl: learning curve {png}', flush=True)
        except Exception as e:  # a plot must never hide the run's outcome
            print(f'realrl: could not plot the learning curve: {e}', file=sys.stderr)
        print('realrl: ' + json.dumps(summary), flush=True)
    return code


def bring_up_all(graph, supervisor, monitor, spin, stop, target: str,
                 drivers_only: bool = False) -> None:
    """Bring the graph's lifecycle nodes (or only its drivers) to ``target``, in order."""
    drivers = {d.fqn for d in graph.drivers}
    for spec in graph.nodes:
        if not spec.lifecycle or stop.signal is not None:
            continue
        if drivers_only and spec.fqn not in drivers:
            continue
        node = supervisor.nodes[spec.fqn]
        why = monitor.bring_up(spec.fqn, spin, alive=lambda: node.running and stop.signal is None,
                               target=target)
        if stop.signal is not None:
            return
        if why:
            raise RuntimeError(f'{why}; see {node.log_path}')
        print(f'realrl: {spec.fqn} {target}', flush=True)


def report(events: list[str]) -> None:
    for event in events:
        print(f'realrl: {event}', flush=True)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == 'check':
            graph = load_graph(args.config, {'run_dir': 'runs/check'}, args.set)
            print(f'{args.config}: ok ({len(graph.nodes)} nodes, robots {graph.robot_ids()})')
            return 0
        if args.command == 'plot':
            print(plot_learning_curve(Path(args.run_dir)))
            return 0
        if args.command == 'robots':
            return robots_cmd.robots(args.wait_s)
        return train(args)
    except (ConfigError, FileNotFoundError) as e:
        print(f'realrl: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
