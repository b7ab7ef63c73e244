"""The end-to-end part of bench/replay_ingest.py: robots -> DDS -> replay node -> disk -> ack.

``render_pool`` renders arm episodes with MuJoCo (the Panda-like arm's 'front' and 'wrist'
cameras, 128x128) into an npz that the robot processes (bench/_e2e_publisher.py) play back.
``run`` starts one receiver (the installed replay_node executable with fsync on, or the
in-memory baseline bench/_memory_replay_node.py), then the robot processes, and measures
durable-acknowledged transitions per second, ack latency, the receiver's CPU and write bytes,
and (store) the bytes per transition on disk. ``disk_write_mb_s`` times large O_DIRECT writes
plus fdatasync in a folder: the disk's sequential write bandwidth on that file system.
"""
from __future__ import annotations

import json
import mmap
import os
import shlex
import time
from pathlib import Path

import numpy as np
from _util import ROOT, bench_env, percentile, start_process, stop_process

REPLAY_NODE = ROOT / 'install' / 'realrl_replay' / 'lib' / 'realrl_replay' / 'replay_node'
MEMORY_NODE = ROOT / 'bench' / '_memory_replay_node.py'
PUBLISHER = ROOT / 'bench' / '_e2e_publisher.py'
PYTHON = ROOT / '.venv' / 'bin' / 'python'
PROFILER = ROOT / 'bench' / '_cpu_profile.py'


def render_pool(path: Path, episodes: int, steps: int, noise: float, seed: int = 0) -> dict:
    """Render ``episodes`` reach episodes of ``steps`` steps (random targets, a noisy
    proportional controller moving the arm toward them) and save states, actions and both
    cameras' frames; ``noise`` adds Gaussian sensor noise (std, grey levels) to every frame."""
    from realrl_driver.robots.mujoco_arm.sim import ArmSimConfig, MujocoArmSim
    sim = MujocoArmSim(ArmSimConfig(model='panda7'), seed=seed)
    rng = np.random.default_rng(seed)
    a, b = sim.observation_layout['ee_to_target']
    states = np.zeros((episodes, steps + 1, sim.state_dim), np.float32)
    actions = np.zeros((episodes, steps + 1, sim.action_dim), np.float32)
    frames = {cam: np.zeros((episodes, steps + 1, 128, 128, 3), np.uint8)
              for cam in ('front', 'wrist')}
    start = time.perf_counter()
    for e in range(episodes):
        state = sim.reset(seed + e)
        for t in range(steps + 1):
            states[e, t] = state
            for cam, out in frames.items():
                img = sim.render(cam, 128, 128)
                if noise:
                    img = np.clip(img + rng.normal(0, noise, img.shape), 0, 255)
                out[e, t] = img
            act = np.clip(state[a:b] / sim.cfg.max_ee_step_m * 0.5
                          + rng.normal(0, 0.3, sim.action_dim), -1, 1)
            actions[e, t] = act
            if t < steps:
                state = sim.apply(act)
    seconds = time.perf_counter() - start
    sim.close()
    np.savez(path, states=states, actions=actions, **frames,
             layout=json.dumps({k: list(v) for k, v in sim.observation_layout.items()}))
    n = episodes * (steps + 1) * len(frames)
    return {'frames': n, 'render_fps': round(n / seconds), 'noise_std': noise,
            'arm': 'panda7', 'cameras': sorted(frames), 'episodes': episodes}


def disk_write_mb_s(folder: Path, mb: int, block_mb: int = 8) -> float:
    """Sequential write bandwidth: ``mb`` MB of random bytes in ``block_mb`` blocks with
    O_DIRECT (no page cache), fdatasync every 64 MB and at the end, timed."""
    buf = mmap.mmap(-1, block_mb << 20)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(block_mb << 20))
    path = folder / 'disk_probe.bin'
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, 'O_DIRECT', 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # a file system without O_DIRECT (tmpfs): plain writes + fdatasync
        fd = os.open(path, flags & ~getattr(os, 'O_DIRECT', 0))
    try:
        start = time.perf_counter()
        for i in range(mb // block_mb):
            os.write(fd, buf)
            if (i + 1) * block_mb % 64 == 0:
                os.fdatasync(fd)
        os.fdatasync(fd)
        seconds = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink()
        buf.close()
    return (mb // block_mb) * block_mb * (1 << 20) / 1e6 / seconds


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _proc_write_bytes(pid: int) -> int:
    for line in Path(f'/proc/{pid}/io').read_text().splitlines():
        if line.startswith('write_bytes:'):
            return int(line.split()[1])
    return 0


def _sourced(cmd: list) -> list[str]:
    """Cmd run with the workspace's ROS environment (scripts/env.sh), exec-ed (same pid)."""
    line = ' '.join(shlex.quote(str(c)) for c in cmd)
    return ['bash', '-c', f'source {shlex.quote(str(ROOT / "scripts/env.sh"))} && exec {line}']


TRANSPORTS = {'default': {}, 'large_data': {'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'}}
"""DDS transports: 'default' is what `realrl train` runs with (Fast DDS's builtin shared
memory + UDP, config/fastdds.xml); 'large_data' is Fast DDS's LARGE_DATA builtin transports
(shared memory, TCP on loopback for large samples, UDP for discovery only)."""


def run(kind: str, work: Path, pool: Path, robots: int, procs: int, hz: float,
        seconds: float, warm_s: float, domain: int, startup_s: float = 90.0,
        transport: str = 'default', frames_twice: bool = False) -> dict:
    """One end-to-end run with receiver ``kind`` ('store' or 'memory')."""
    names = [f'arm_{i:02d}' for i in range(robots)]
    work.mkdir(parents=True, exist_ok=True)
    store = work / f'e2e_{kind}'
    params = work / f'replay_{kind}.yaml'
    params.write_text(json.dumps({'replay': {'ros__parameters': {
        'store_path': str(store), 'robot_ids': names, 'fsync': True}}}))
    load0 = os.getloadavg()[0]
    env = {**bench_env(domain), **TRANSPORTS[transport]}
    exe = [PYTHON, REPLAY_NODE] if kind == 'store' else [PYTHON, MEMORY_NODE]
    profile = os.environ.get('REALRL_BENCH_PROFILE')  # a folder: processes run in cProfile
    if profile:
        exe = [PYTHON, PROFILER, Path(profile) / f'{kind}_node.prof', *exe[1:]]
    node = start_process(_sourced([*exe, '--ros-args', '--params-file', params]), env,
                         work / f'{kind}_node.log')
    go = work / f'go_{kind}'
    outs, pubs = [], []
    per = -(-robots // procs)
    try:
        for p in range(procs):
            part = names[p * per:(p + 1) * per]
            if not part:
                break
            out = work / f'{kind}_robots_{p}.json'
            outs.append(out)
            wrap = [PROFILER, Path(profile) / f'{kind}_robots_{p}.prof'] if profile else []
            pubs.append(start_process(_sourced([
                PYTHON, *wrap, PUBLISHER, '--robots', ','.join(part), '--first-k', p * per,
                '--pool', pool, '--hz', hz, '--go', go, '--seconds', seconds,
                '--out', out, *(['--frames-twice'] if frames_twice else [])]), env,
                work / f'{kind}_robots_{p}.log'))
        ready_s = _wait_ready(kind, store, work / f'{kind}_node.log', node, startup_s)
        start = time.time() + 1.0
        tmp = go.with_suffix('.tmp')
        tmp.write_text(repr(start))
        tmp.rename(go)
        time.sleep(max(0.0, start + warm_s - time.time()))
        cpu0, io0, t0 = _proc_cpu_s(node.pid), _proc_write_bytes(node.pid), time.time()
        time.sleep(max(0.0, start + seconds - time.time()))
        cpu1, io1, t1 = _proc_cpu_s(node.pid), _proc_write_bytes(node.pid), time.time()
        for pub in pubs:
            pub.wait(timeout=60)
    finally:
        for pub in pubs:
            stop_process(pub)
        node_rc = stop_process(node, grace_s=30)
    acked, counters, unacked, top, late, outbox_max, pub_cpu = [], {}, 0, {}, 0, 0, 0.0
    for out in outs:
        if not out.exists():
            raise RuntimeError(f'robot process wrote no {out.name}; see {out.with_suffix(".log")}')
        data = json.loads(out.read_text())
        acked += data['acked']
        for k, v in data['counters'].items():
            counters[k] = counters.get(k, 0) + v
        unacked += data['unacked']
        late += data['late_ticks']
        outbox_max = max(outbox_max, data['outbox_max'])
        pub_cpu += data['cpu_s'] / max(1e-9, data['wall_s'])
        top.update(data['top_ack'])
    window = [lat for at, lat in acked if start + warm_s <= at < start + seconds]
    result = {
        'transitions_per_s': len(window) / (seconds - warm_s),
        'offered_per_s': robots * hz,
        'ack_p50_ms': 1e3 * percentile(window, 50), 'ack_p99_ms': 1e3 * percentile(window, 99),
        'node_cpu_per_s': (cpu1 - cpu0) / (t1 - t0),
        'robots_cpu_per_s': pub_cpu, 'load_avg_1m': [load0, os.getloadavg()[0]],
        'node_write_mb_s': (io1 - io0) / 1e6 / (t1 - t0),
        'sent': counters.get('transitions_sent', 0), 'resends': counters.get('resends', 0),
        'acked_total': len(acked), 'unacked_at_end': unacked, 'outbox_max': outbox_max,
        'late_ticks': late, 'node_exit': node_rc, 'transport': transport,
        'receiver_ready_s': round(ready_s, 1),
    }
    rate = result['transitions_per_s']
    result['cpu_ms_per_transition'] = (1e3 * (result['node_cpu_per_s'] + pub_cpu) / rate
                                       if rate else None)
    if kind == 'store':
        result.update(_check_store(store, top))
    return result


def _wait_ready(kind: str, store: Path, log: Path, node, timeout_s: float) -> float:
    """Seconds until the receiver has every robot's description (the store exists; for the
    baseline, its log says so)."""
    start = time.time()
    while time.time() - start < timeout_s:
        if node.poll() is not None:
            raise RuntimeError(f'the {kind} receiver exited ({node.returncode}); see {log}')
        if (kind == 'store' and (store / 'realrl_replay.json').exists()) or (
                kind == 'memory' and 'in-memory baseline for' in log.read_text()):
            return time.time() - start
        time.sleep(0.1)
    raise RuntimeError(f'the {kind} receiver did not get every robot description within '
                       f'{timeout_s} s; see {log}')


def _check_store(store: Path, top_ack: dict) -> dict:
    """Bytes per transition on disk, and that every acknowledged seq is in the store."""
    from realrl_replay import ReplayReader
    from realrl_replay.schema import LINK
    reader = ReplayReader(store)
    seqs = reader.committed_seqs
    missing = {r: s for r, s in top_ack.items() if seqs.get(r, -1) < s}
    size = sum(p.stat().st_size for p in store.rglob('*') if p.is_file())
    markers = sum(p.stat().st_size for p in store.glob('commit.*'))
    linked = None
    links = reader.schema.links
    if links and reader.count:
        bits = reader.read_range(0, reader.count, [LINK])[LINK]
        linked = float(np.unpackbits(bits[:, None], axis=1).sum() / (len(bits) * len(links)))
    return {'rows': reader.count, 'bytes_per_transition': size // max(1, reader.count),
            'marker_bytes': markers, 'next_obs_linked_share': linked,
            'acked_not_stored': missing}
