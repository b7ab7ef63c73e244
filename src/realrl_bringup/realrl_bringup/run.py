"""One `realrl train`: a graph validated once, its run folder, its processes, its outcome.

``Run.new`` (a graph file) and ``Run.resume`` (an earlier run's folder) read the description
once and apply the --set overrides once; the run folder then gets that description as
``graph.yaml`` (for --resume), one ROS parameters file per node and the logs. ``Run.execute``
starts the processes, brings up the lifecycle nodes (leasing the robots first if the graph
says so), restarts what crashes, prints progress, stops at success or the time limit (or when
a node exits on a bad configuration, which no restart mends), and writes the summary and the
learning curve. Nothing here runs before the graph is valid.
"""
from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from realrl_bringup.dds_transport import BUILTIN_TRANSPORTS, graph_env
from realrl_bringup.graph import DEFAULT_CONFIG, Graph, build_graph, read_description
from realrl_bringup.learning_curve import plot_learning_curve
from realrl_bringup.lease_keeper import LeaseError, LeaseKeeper
from realrl_bringup.progress import EpisodeLog, Progress
from realrl_bringup.shm_cleanup import files_of
from realrl_bringup.supervisor import Supervisor, executable_path, ros_args, standby_command
from realrl_common.config import BAD_CONFIG_EXIT, ConfigError
from realrl_common.scheduling import CpuWakeLatency

GRAPH_SNAPSHOT = 'graph.yaml'


@dataclass(frozen=True)
class RunOptions:
    """How `realrl train` watches a run (its command-line options)."""

    max_wall_s: float | None = None
    """Stop after this many seconds (None: the graph's stop.max_wall_s)."""
    stop_at_success: bool = True
    """End the run once the success criterion is met."""
    status_every_s: float = 2.0
    """Seconds between progress lines."""
    site: str = ''
    """Start only this site's nodes of a cloud-edge graph ('' : all nodes)."""
    max_episodes: int = 0
    """Stop once this many episodes have ended (`realrl eval`); 0: no such limit."""


class Run:
    """A validated graph and the folder it runs in."""

    def __init__(self, graph: Graph, run_dir: Path, options: RunOptions = RunOptions()):
        self.graph = graph
        self.run_dir = run_dir
        self.options = options

    @classmethod
    def new(cls, config: str | Path, run_dir: str | Path | None = None,
            overrides: list[str] = (), options: RunOptions = RunOptions()) -> Run:
        """A run of the graph file ``config`` in a new folder (default runs/<name>-<time>)."""
        config = Path(config)
        if not config.is_file():
            raise ConfigError(f'--config {config}: no such file; try {DEFAULT_CONFIG}')
        if run_dir is not None:
            run_dir = Path(run_dir)
            if run_dir.exists() and any(run_dir.iterdir()):
                raise ConfigError(f'--run-dir {run_dir} is not empty; use --resume {run_dir} '
                                  f'to continue that run or choose a new folder')
        description = read_description(config, overrides)
        if run_dir is None:
            name = description.get('name', config.stem)
            run_dir = Path('runs') / f'{name}-{time.strftime("%Y%m%d-%H%M%S")}'
        return cls(cls._graph(description, run_dir, str(config), options.site), run_dir,
                   options)

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: list[str] = (),
               options: RunOptions = RunOptions()) -> Run:
        """The run in ``run_dir`` continued, from the graph it snapshotted."""
        run_dir = Path(run_dir)
        snapshot = run_dir / GRAPH_SNAPSHOT
        if not snapshot.is_file():
            raise ConfigError(f'--resume {run_dir}: no {GRAPH_SNAPSHOT} there; give the folder '
                              f'of an earlier `realrl train` run')
        description = read_description(snapshot, overrides)
        return cls(cls._graph(description, run_dir, str(snapshot), options.site), run_dir,
                   options)

    @staticmethod
    def _graph(description: dict, run_dir: Path, where: str, site: str = '') -> Graph:
        graph = build_graph(description, {'run_dir': str(run_dir.resolve())}, where)
        return graph.for_site(site) if site else graph

    def prepare(self) -> dict[str, list[str]]:
        """Create the run folder with graph.yaml and the parameter files; the command line
        of each node."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / GRAPH_SNAPSHOT).write_text(
            yaml.safe_dump(self.graph.description, sort_keys=False))  # for --resume
        params = write_params(self.graph, self.run_dir)
        commands = {}
        for s in self.graph.nodes:
            command = [executable_path(s)] + ros_args(s, params[s.fqn])
            launch = self.graph.kinds[s.fqn].launch  # e.g. the learner's ranks: torchrun
            commands[s.fqn] = launch(self.graph.configs[s.fqn], command) if launch else command
        return commands

    def execute(self) -> int:
        """Run until success, the time limit, a failure or a signal; the exit status (0
        success, 1 time limit or failure, 130 interrupted)."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        from realrl_bringup.monitor_node import MonitorNode

        commands = self.prepare()
        graph, run_dir = self.graph, self.run_dir
        self.stop = StopFlag()
        # `kill -USR1 <pid>` prints where every thread of this process is (into the run's output)
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        self.wake_latency = hold_wake_latency(graph.host.cpu_wake_latency_us)
        env = graph_env(os.environ)  # LARGE_DATA transports for camera frames
        self.supervisor = Supervisor(run_dir / 'logs', env)
        # the monitor node's participant (this process) uses the graph's transports too
        os.environ[BUILTIN_TRANSPORTS] = env[BUILTIN_TRANSPORTS]
        for spec in graph.nodes:
            command = commands[spec.fqn]
            standby = spec.standby and command[0] == executable_path(spec)
            if spec.standby and not standby:  # e.g. the learner's ranks, through torchrun
                print(f'realrl: {spec.fqn} starts through its own launcher ({command[0]} ...): '
                      'it gets no standby', flush=True)
            self.supervisor.add(spec, command,
                                standby_command(spec, command) if standby else None)
        episode_log = EpisodeLog(run_dir / 'metrics' / 'episodes.jsonl')
        self.progress = Progress(window=graph.stop.window, time_offset=episode_log.last_time())
        print(f'realrl: run folder {run_dir}  (logs in {run_dir / "logs"})', flush=True)
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        self.monitor = MonitorNode(graph.robot_ids(), self.progress, episode_log)
        # A private executor, shut down before the node is destroyed (_finish): a spin_once
        # may leave its wait generator suspended with the node's handles in use, and
        # destroying the node then waits for them forever (seen as a rare hang at shutdown).
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.monitor)
        self.spin = lambda t: self.executor.spin_once(timeout_sec=t)  # noqa: E731
        outcome, code = 'interrupted', 130
        try:
            self.supervisor.start_all()
            for fqn, m in self.supervisor.nodes.items():
                print(f'realrl: started {fqn} (pid {m.proc.pid}, log {m.log_path.name})',
                      flush=True)
            if graph.lease.enabled:
                self._lease()
            bring_up_all(graph, self.supervisor, self.monitor, self.spin, self.stop, 'active')
            outcome, code = self._watch() or (outcome, code)
        except LeaseError as e:
            print(f'realrl: {e}', file=sys.stderr, flush=True)
            outcome, code = 'no_lease', 1
        except RuntimeError as e:
            print(f'realrl: {e}', file=sys.stderr, flush=True)
            outcome, code = 'failed', 1
        finally:
            self._finish(outcome, rclpy.try_shutdown)
        return code

    def _lease(self) -> None:
        """Drivers configured (no motion), then the lease of all the graph's robots."""
        bring_up_all(self.graph, self.supervisor, self.monitor, self.spin, self.stop,
                     'inactive', drivers_only=True)
        self.monitor.start_leasing(LeaseKeeper(
            self.graph.lease, self.graph.robot_ids(),
            f'realrl:{self.run_dir.name}:{os.getpid()}', time.monotonic()))
        while not self.monitor.lease.held and self.stop.signal is None:
            report(self.monitor.tend_lease())
            self.spin(0.05)

    def _watch(self) -> tuple[str, int] | None:
        """Restart what exits, print progress; (outcome, exit status) at success or the time
        limit, None on a signal."""
        graph, progress, supervisor = self.graph, self.progress, self.supervisor
        max_wall = self.options.max_wall_s or graph.stop.max_wall_s
        last_print = last_shm_note = 0.0
        while self.stop.signal is None:
            self.spin(0.1)
            if graph.lease.enabled:
                report(self.monitor.tend_lease())
            now = time.monotonic()
            for m, exit_code, restarted in supervisor.poll():
                self._on_exit(m, exit_code, restarted)
                if exit_code == BAD_CONFIG_EXIT:
                    return 'bad_config', BAD_CONFIG_EXIT
            progress.update_rate(now)
            if now - last_shm_note >= 2.0:
                supervisor.note_shm()
                last_shm_note = now
            if now - last_print >= self.options.status_every_s:
                up = [f for f, m in supervisor.nodes.items() if m.running]
                down = [f for f, m in supervisor.nodes.items() if not m.running]
                print(progress.line(up, down), flush=True)
                last_print = now
            if self.options.max_episodes and progress.episodes >= self.options.max_episodes:
                return 'episodes_done', 0
            if self.options.stop_at_success and progress.reached(graph.stop.success_rate):
                return 'success', 0
            if now - progress.started > max_wall:  # per start, not counting earlier ones
                return 'time_limit', 1
        return None

    def _on_exit(self, m, exit_code: int, restarted: bool) -> None:
        print(f'realrl: {m.spec.fqn} exited with {exit_code}'
              f'{"; restarting" if restarted else ""} (log: {m.log_path})', flush=True)
        if exit_code == BAD_CONFIG_EXIT:  # not restarted: the run stops (_watch)
            print(f'realrl: {m.spec.fqn} cannot run with its configuration, so the run stops: '
                  f'{m.last_words()}', file=sys.stderr, flush=True)
        if restarted and m.spec.lifecycle:
            why = self.monitor.bring_up(m.spec.fqn, self.spin,
                                        alive=lambda: m.running and self.stop.signal is None)
            print(f'realrl: {m.spec.fqn} ' + (why or 'active again'), flush=True)

    def _finish(self, outcome: str, shutdown_ros) -> None:
        """Release the lease, stop every node, clean up, write the summary and the curve."""
        run_dir, supervisor = self.run_dir, self.supervisor
        summary = dict(self.progress.summary(), outcome=outcome, run_dir=str(run_dir))
        print(f'realrl: {outcome}; stopping {len(supervisor.nodes)} nodes', flush=True)
        try:
            self.monitor.release_lease(self.spin)
        except Exception as e:  # noqa: BLE001 - the nodes must be stopped whatever happened;
            # the lease expires
            print(f'realrl: could not release the lease ({e}); it expires after its ttl',
                  file=sys.stderr, flush=True)
        codes = supervisor.stop_all()
        if self.wake_latency is not None:
            self.wake_latency.close()   # the machine's own power management again
        self.executor.shutdown(timeout_sec=0)  # releases what a suspended wait still holds
        self.monitor.destroy_node()
        shutdown_ros()
        # Our own files too: this process keeps them mapped until it exits, moments from now.
        supervisor.shm_seen |= files_of(os.getpid())
        supervisor.remove_orphans(ignore_pids=frozenset({os.getpid()}))
        summary['exit_codes'] = codes
        (run_dir / 'summary.json').write_text(json.dumps(summary, indent=2))
        try:
            png = plot_learning_curve(run_dir, window=self.graph.stop.window)
            print(f'realrl: learning curve {png}', flush=True)
        except Exception as e:  # noqa: BLE001 - a plot must never hide the run's outcome
            print(f'realrl: could not plot the learning curve: {e}', file=sys.stderr)
        print('realrl: ' + json.dumps(summary), flush=True)


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


def hold_wake_latency(us: int | None) -> CpuWakeLatency | None:
    """The graph's host.cpu_wake_latency_us, held for the run (None: not asked); a refusal
    is printed and the run goes on with the machine as it is."""
    if us is None:
        return None
    held = CpuWakeLatency(us)
    if held.refused:
        print(f'realrl: host.cpu_wake_latency_us: {held.refused}; the run goes on, its '
              f'messages may wait for idle CPUs to wake', file=sys.stderr, flush=True)
    else:
        print(f'realrl: idle CPUs wake within {us} us while the run lasts '
              f'(host.cpu_wake_latency_us)', flush=True)
    return held


def report(events: list[str]) -> None:
    """Prints each event as a `realrl:` line."""
    for event in events:
        print(f'realrl: {event}', flush=True)


def write_params(graph: Graph, run_dir: Path) -> dict[str, Path]:
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
    """Records SIGINT or SIGTERM (in ``signal``) instead of raising, so a run stops cleanly."""

    def __init__(self):
        self.signal = None
        signal.signal(signal.SIGINT, self._set)
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, signum, frame):
        self.signal = signum
