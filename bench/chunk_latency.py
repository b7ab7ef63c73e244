"""Action chunks from a model three control periods slow: the control period with chunk
overlap against blocking chunks, through real DDS and the real driver (MuJoCo arm).

Two MuJoCo arm drivers (arm0, arm1) run side by side at HZ, each with its own policy node:
arm0's computes the next chunk while the current one runs (`chunks: overlap`), arm1's only
when the current one has run out (`chunks: blocking`, the baseline). Both serve the same
`mlp_chunk` actor (a real torch MLP: state + instruction -> a chunk of H actions; weights
published by this script on /learner/weights as a learner would), and both pad each
inference to 3 control periods (`min_inference_s`): the model is a measured deliberate
delay, not a network that happens to be that slow, so both policies are equally slow
whatever else loads the machine. What each inference took is read from the policy's own
log line and printed. One reward node labels both arms. Both pairs run at the same time,
so they see the same load. Both drivers' control threads run at SCHED_FIFO (`--rt`, 20 by
default, as `multi_arm_sim.yaml` does; what they got is read from their logs and printed), so
the clock's own ticks keep time, and the reward and policy processes at SCHED_FIFO 10
(`chrt`, all four alike), so that a label or a chunk is not late for want of a CPU on a
loaded machine and what is left is the wait for the model; `--rt 0` runs the drivers at
nice -5 and the rest at normal priority, where on a loaded machine the clock itself, and the
reward node's labels, are late at the p99.

Control period = the time between two ticks in which the driver commanded its robot (a
held tick, waiting for an action, commands nothing: the robot waits as long as the model).
Period error = |that time - 1/HZ| * HZ, over the commanded ticks after WARMUP_S; p50 and
p99 per arm (`p99_overlap`, `p99_blocking`). Also printed: the error of the clock's own
ticks (held or not), the share of held ticks, and the time from an observation's arrival
here to the arrival of the chunk that answers it.

Left out: the wait for the first chunk of each episode (nothing can run before it, in both
modes alike; episodes are 400 steps, and the interval from a reset tick is dropped); what a
held tick costs a real task (here the arm just waits); the reward node's
own lateness (a late label holds a tick in both passes alike); network and GPU effects of a
real VLA, whose inference time varies, which the deliberate delay does not.
"""
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from _util import (
    ROOT,
    bench_env,
    emit,
    parse,
    percentile,
    require_workspace,
    start_process,
    stop_process,
)

HZ = 20.0
LATENCY_PERIODS = 3.0
HORIZON = 10
WARMUP_S = 4.0
DOMAIN = 121
EPISODE_STEPS = 400
NODE_RT = 10  # the reward and policy processes' SCHED_FIFO priority, under the drivers'
INSTALL = ROOT / 'install'


def exe(pkg: str, name: str) -> str:
    return str(INSTALL / pkg / 'lib' / pkg / name)


def start_nodes(env: dict, work: Path, rt: int) -> dict:
    procs = {}
    fifo = ['chrt', '-f', str(NODE_RT)] if rt else []
    for rid in ('arm0', 'arm1'):
        procs[rid] = start_process(
            [exe('realrl_driver', 'mujoco_arm_driver'), '--ros-args', '-r', f'__ns:=/{rid}',
             '-p', f'robot_id:={rid}', '-p', 'replay_wait_s:=0.0', '-p', f'control_hz:={HZ}',
             '-p', f'episode_max_steps:={EPISODE_STEPS}', '-p', f'realtime_priority:={rt}',
             '-p', f'timing_log:={work / rid}.ticks.jsonl',
             '-p', 'instruction:=reach the target'], env, work / f'{rid}.log')
    procs['reward'] = start_process(
        [*fifo, exe('realrl_reward', 'reward_node'), '--ros-args',
         '-p', 'robot_ids:=[arm0, arm1]'],
        env, work / 'reward.log')
    for rid, mode in (('arm0', 'overlap'), ('arm1', 'blocking')):
        procs[mode] = start_process(
            [*fifo, exe('realrl_policy', 'policy_node'), '--ros-args',
             '-r', f'__node:=policy_{mode}',
             '-p', f'robot_ids:=[{rid}]', '-p', f'chunks:={mode}', '-p', 'deterministic:=true',
             '-p', f'min_inference_s:={LATENCY_PERIODS / HZ}'], env, work / f'{mode}.log')
    return procs


class Probe:
    """Descriptions, observations and chunks of both arms, as they arrive here."""

    def __init__(self, node):
        from realrl_common.qos import COMMAND_QOS, DATA_QOS, LATCHED_QOS, SENSOR_QOS
        from realrl_interfaces.msg import ActionChunk, EpisodeResult, Observation, RobotDescription
        self.desc, self.obs_at, self.latency = {}, {}, {'arm0': [], 'arm1': []}
        self.episode_starts = {'arm0': [], 'arm1': []}
        for rid in ('arm0', 'arm1'):
            node.create_subscription(RobotDescription, f'/{rid}/description',
                                     lambda m: self.desc.setdefault(m.robot_id, m), LATCHED_QOS)
            node.create_subscription(Observation, f'/{rid}/observation', self._obs, SENSOR_QOS)
            node.create_subscription(ActionChunk, f'/{rid}/action_chunk', self._chunk,
                                     COMMAND_QOS)
            node.create_subscription(  # sent in the tick that resets the robot
                EpisodeResult, f'/{rid}/episode',
                lambda m: self.episode_starts[m.robot_id].append(time.monotonic()), DATA_QOS)

    def _obs(self, m):
        key = (m.robot_id, m.episode_id, m.step)
        if key not in self.obs_at:
            self.obs_at[key] = time.monotonic()
            if m.step == 0:
                self.episode_starts[m.robot_id].append(self.obs_at[key])

    def _chunk(self, m):
        seen = self.obs_at.get((m.robot_id, m.episode_id, m.step))
        if seen is not None:
            self.latency[m.robot_id].append(time.monotonic() - seen)


def publish_weights(node, desc) -> None:
    """A `mlp_chunk` actor for the arm, published as the learner publishes weights."""
    from realrl_common.qos import WEIGHTS_QOS
    from realrl_common.weight_msgs import to_msg
    from realrl_common.weights import chunk_blob
    from realrl_interfaces.msg import WeightChunk
    from realrl_policy.chunk_models import ChunkMLPActor
    from realrl_policy.models import ActorConfig
    from realrl_policy.weights_blob import pack_actor
    cfg = ActorConfig(type='mlp_chunk', hidden_sizes=(256, 256), chunk_horizon=HORIZON)
    actor = ChunkMLPActor(cfg, int(desc.state_dim), int(desc.action_dim))
    pub = node.create_publisher(WeightChunk, '/learner/weights', WEIGHTS_QOS)
    for c in chunk_blob(1, pack_actor(actor)):
        pub.publish(to_msg(c))
    return pub  # kept alive: the topic is transient local


def commanded_errors(tick_log: Path, start: float, end: float, episode_starts) -> dict:
    """Period errors of the commanded ticks and of all ticks in [start, end]. The wait from
    an episode's reset tick (the newest tick before its step-0 observation arrived here) to
    its first step is left out: it waits for the first chunk in both modes alike."""
    from realrl_driver.core.clock_stats import read_held_ticks, read_tick_log
    ticks = np.asarray(read_tick_log(str(tick_log)))
    held = set(read_held_ticks(str(tick_log)))
    resets = {ticks[ticks <= r].max() for r in episode_starts if (ticks <= r).any()}
    ticks = ticks[(ticks >= start) & (ticks <= end)]
    commanded = np.asarray([t for t in ticks if t not in held])
    keep = np.asarray([t not in resets for t in commanded[:-1]], bool)
    err = (np.abs(np.diff(commanded) - 1.0 / HZ) * HZ)[keep]
    clock = np.abs(np.diff(ticks) - 1.0 / HZ) * HZ
    return {'p50': float(np.median(err)), 'p99': percentile(err, 99), 'resets': int((~keep).sum()),
            'clock_p99': percentile(clock, 99), 'ticks': int(len(ticks)),
            'held_share': 1.0 - len(commanded) / max(1, len(ticks))}


def scheduling(log: Path) -> str:
    m = re.search(r'control thread \d+ of \w+: (.*)', log.read_text(errors='replace'))
    return m.group(1) if m else 'not reported'


def held_for(log: Path) -> dict:
    """What the driver's holds waited for (its counters at exit): action, label."""
    m = re.search(r'counters: (\{.*?\}) rejected', log.read_text(errors='replace'))
    counters = json.loads(m.group(1)) if m else {}
    return {k: counters.get(f'waiting_{k}', 0) for k in ('action', 'label')}


def inference_stats(log: Path) -> dict:
    m = re.findall(r'chunk inference: (\{.*\})', log.read_text(errors='replace'))
    return json.loads(m[-1]) if m else {}


def main():
    args = parse(__doc__.splitlines()[0], lambda p: p.add_argument(
        '--rt', type=int, default=20, help="drivers' SCHED_FIFO priority (0: nice -5)"))
    require_workspace()
    import os

    import rclpy

    from realrl_common.lifecycle import bring_up
    duration = 15.0 if args.quick else 60.0
    env = bench_env(DOMAIN)
    os.environ.update(ROS_DOMAIN_ID=env['ROS_DOMAIN_ID'],
                      ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    work = Path(tempfile.mkdtemp(prefix='chunk_latency_'))
    rclpy.init()
    node = rclpy.create_node('chunk_bench')
    ex = rclpy.executors.SingleThreadedExecutor()
    ex.add_node(node)

    def spin(t):
        end = time.monotonic() + t
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=max(0.0, end - time.monotonic()))

    probe = Probe(node)
    procs = start_nodes(env, work, args.rt)
    try:
        for rid in ('arm0', 'arm1'):
            why = bring_up(node, f'/{rid}/driver', spin, timeout=60.0,
                           alive=lambda: procs[rid].poll() is None, target='inactive')
            if why:
                raise SystemExit(f'bench: {rid} did not configure: {why}\n'
                                 f'{(work / f"{rid}.log").read_text()}')
        while 'arm0' not in probe.desc:
            spin(0.1)
        keep = publish_weights(node, probe.desc['arm0'])
        spin(2.0)  # the policies take the weights before the robots move
        for rid in ('arm0', 'arm1'):
            why = bring_up(node, f'/{rid}/driver', spin, timeout=30.0)
            if why:
                raise SystemExit(f'bench: {rid} did not activate: {why}')
        t0 = time.monotonic()
        spin(duration)
        t1 = time.monotonic()
    finally:
        for p in procs.values():
            stop_process(p, grace_s=10.0)
        node.destroy_node()
        rclpy.try_shutdown()
    del keep
    fig = {rid: commanded_errors(work / f'{rid}.ticks.jsonl', t0 + WARMUP_S, t1,
                                 probe.episode_starts[rid])
           for rid in ('arm0', 'arm1')}
    inf = {mode: inference_stats(work / f'{mode}.log') for mode in ('overlap', 'blocking')}
    for rid, mode in (('arm0', 'overlap'), ('arm1', 'blocking')):
        f, lat = fig[rid], probe.latency[rid]
        print(f'{mode:8s} ({rid}): control period error p50 {100 * f["p50"]:.1f} %, '
              f'p99 {100 * f["p99"]:.1f} %; clock ticks p99 {100 * f["clock_p99"]:.1f} %; '
              f'held {100 * f["held_share"]:.1f} % of {f["ticks"]} ticks ({f["resets"]} episode '
              f'starts left out; all run long, held for: {held_for(work / f"{rid}.log")}); '
              f'inference '
              f'{inf[mode]}; observation -> chunk here p50 {1000 * np.median(lat):.0f} ms '
              f'({len(lat)} chunks); control thread: {scheduling(work / f"{rid}.log")}',
              flush=True)
    print(f'control period {1000 / HZ:.0f} ms, model padded to {LATENCY_PERIODS:g} periods '
          f'({1000 * LATENCY_PERIODS / HZ:.0f} ms), horizon {HORIZON}; logs in {work}')
    a0, a1 = fig['arm0'], fig['arm1']
    emit({'p99_overlap': round(a0['p99'], 4), 'p99_blocking': round(a1['p99'], 4),
          'p50_overlap': round(a0['p50'], 4), 'p50_blocking': round(a1['p50'], 4),
          'held_share_overlap': round(fig['arm0']['held_share'], 4),
          'held_share_blocking': round(fig['arm1']['held_share'], 4),
          'inference_p50_s_overlap': inf['overlap'].get('p50_s'),
          'inference_p50_s_blocking': inf['blocking'].get('p50_s'),
          'control_hz': HZ, 'horizon': HORIZON, 'duration_s': duration,
          'realtime_priority': args.rt})


if __name__ == '__main__':
    main()
