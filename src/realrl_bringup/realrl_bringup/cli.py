"""`realrl`: start a graph from its YAML description, watch it, stop it cleanly.

realrl train [--config config/reach_sim.yaml] [--run-dir DIR] [--set node.key=value]
realrl train --resume DIR
realrl train --config graph.yaml --site lab_a    one site of a cloud-edge graph
realrl check [--config FILE]          validate a graph file, start nothing
realrl eval RUN_DIR_OR_CKPT --episodes N [--deterministic]   a checkpoint's policy, frozen,
                                      on the run's robots (figures in RUN_DIR/eval-*.json)
realrl plot DIR                       redraw a run's learning curve
realrl report DIR                     a run as PNG plots and a text summary (DIR/report/)
realrl view DIR [--save FILE.rrd]     a run in Rerun's web viewer (or an .rrd file)
realrl record FILE.mcap [--topic T]   record the graph's topics to MCAP (rosbag2, Foxglove)
realrl robots [--wait-s S]            the hardware manager's robots: kind, state, holder,
rate, health
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from realrl_bringup import robots_cmd
from realrl_bringup.graph import DEFAULT_CONFIG, load_graph
from realrl_bringup.learning_curve import plot_learning_curve
from realrl_bringup.recording.record_config import add_record_arguments, config_from_args
from realrl_common.config import ConfigError


def parse_args(argv):
    """The parsed command line of `realrl` (train, check, plot, robots)."""
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
    train.add_argument('--site', default='',
                       help="start only this site's nodes of a graph with sites")
    check = sub.add_parser('check', help='validate a graph file; start nothing')
    check.add_argument('--config', default=DEFAULT_CONFIG)
    check.add_argument('--set', action='append', default=[])
    check.add_argument('--site', default='', help='also list the nodes of this site')
    ev = sub.add_parser('eval', help="a checkpoint's policy on the run's robots, no learning")
    ev.add_argument('target', metavar='RUN_DIR_OR_CHECKPOINT')
    ev.add_argument('--episodes', type=int, default=20, help='episodes to run (default 20)')
    ev.add_argument('--deterministic', action='store_true', help='act with the mean action')
    ev.add_argument('--seed', type=int, default=100_000,
                    help="added to each driver's seed (default 100000: unseen episodes)")
    ev.add_argument('--max-wall-s', type=float, help='stop after this many seconds')
    plot = sub.add_parser('plot', help="redraw a run's learning curve")
    plot.add_argument('run_dir')
    report = sub.add_parser('report', help='a run folder as PNG plots and a text summary')
    report.add_argument('run_dir')
    view = sub.add_parser('view', help="a run in Rerun's web viewer")
    view.add_argument('run_dir')
    view.add_argument('--web-port', type=int, default=9090, help='HTTP port of the viewer')
    view.add_argument('--grpc-port', type=int, default=9876, help="port of Rerun's data server")
    view.add_argument('--save', metavar='FILE.rrd', help='write an .rrd file instead of serving')
    view.add_argument('--frame-every', type=int, default=1, help='log every Nth camera frame')
    view.add_argument('--open', action='store_true', help='open the viewer in a browser')
    add_record_arguments(sub.add_parser('record', help='record topics to an MCAP file'))
    robots = sub.add_parser('robots', help="list the hardware manager's robots")
    robots.add_argument('--wait-s', type=float, default=3.0,
                        help='how long to wait for the hardware manager (default 3)')
    return p.parse_args(argv)


def train(args) -> int:
    """Runs `realrl train`: a new run, or one resumed; returns the exit status."""
    from realrl_bringup.run import Run, RunOptions  # processes and ROS only for a run
    options = RunOptions(args.max_wall_s, not args.no_stop_at_success, args.status_every_s,
                         args.site)
    if args.resume:
        run = Run.resume(args.resume, args.set, options)
    else:
        run = Run.new(args.config, args.run_dir, args.set, options)
    return run.execute()


def look(args) -> int:
    """Runs `realrl report`, `realrl view` or `realrl record`; returns the exit status."""
    if args.command == 'report':
        from realrl_bringup.report import make_report
        out = make_report(args.run_dir)
        print((out / 'summary.txt').read_text(), end='')
        print(f'realrl: report in {out}')
        return 0
    if args.command == 'record':
        from realrl_bringup.recording.record_node import record  # rclpy only here
        return record(config_from_args(args))
    from realrl_bringup import rerun_view
    if args.frame_every < 1:
        raise ConfigError(f'--frame-every must be >= 1, got {args.frame_every}')
    if args.save:
        logged = rerun_view.save(args.run_dir, args.save, args.frame_every)
        print(f'realrl: wrote {args.save} ({logged}); open it with: rerun {args.save}')
        return 0
    url, logged, _recording = rerun_view.serve(args.run_dir, args.web_port, args.grpc_port,
                                               args.frame_every, args.open)
    print(f'realrl: serving {args.run_dir} ({logged}) at {url}  (Ctrl-C to stop)', flush=True)
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)
    return 0


def main(argv=None) -> int:
    """Entry point of `realrl`; returns the exit status (2 for a bad graph or file)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == 'check':
            graph = load_graph(args.config, {'run_dir': 'runs/check'}, args.set)
            print(f'{args.config}: ok ({len(graph.nodes)} nodes, robots {graph.robot_ids()}), '
                  f'mode {graph.mode}')
            if args.site:
                names = [n.label for n in graph.for_site(args.site).nodes]
                print(f'site {args.site}: {names}')
            return 0
        if args.command == 'plot':
            print(plot_learning_curve(Path(args.run_dir)))
            return 0
        if args.command in ('report', 'view', 'record'):
            return look(args)
        if args.command == 'robots':
            return robots_cmd.robots(args.wait_s)
        if args.command == 'eval':
            from realrl_bringup.evaluate import evaluate  # processes and ROS only for a run
            code, figures = evaluate(args.target, args.episodes, args.deterministic, args.seed,
                                     args.max_wall_s)
            print('realrl eval: ' + json.dumps(figures), flush=True)
            return code
        return train(args)
    except (ConfigError, FileNotFoundError) as e:
        print(f'realrl: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
