"""The cloud-edge link cut for real in the middle of training: nothing lost, nothing twice.

The reach demo split across two sites (``config/reach_cloud_edge.yaml``): ``realrl train
--site lab_a`` (driver, reward, edge bridge) in one network namespace and ``realrl train
--site cloud`` (router, cloud bridge, policy, replay, learner) in another, joined by a
veth shaped to 100 Mbit/s (``realrl_bridge.wan.WanLink``), mutual TLS, the site's ACL.
After ``before_s`` of training the edge's veth is set down (``ip link set ... down``) for
``cut_s``, then up again, and training goes on for ``after_s``.

- ``lost``: transitions the driver published (seq 1 .. the highest it had published
  ``settle_s`` before the end) that are not in the cloud's replay store at the end.
- ``duplicated``: rows of the store minus distinct (robot, seq) in it.
- ``cut_s``: how long the link was down.
- ``steps_during_cut``: control steps the robot took while the link was down, after the
  first second (a step needs a fresh action from the cloud: the robot holds instead);
  ``waiting_for_action_s``: how long the driver reported waiting for an action then.
- ``rows_after_reconnect``: rows stored after the link came back (training goes on);
  ``learner_updates_after_reconnect``: learner metric lines written after it.
Baseline: the same figures of the stretch before the cut (``rows_before_cut``). Left out:
the policy's own latency, reconnection time figures, more than one robot. Needs root.

    .venv/bin/python bench/link_cut.py [--quick]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import _util
import yaml

from realrl_bridge import certs, wan
from realrl_bringup.progress import read_jsonl

GRAPH = _util.ROOT / 'config' / 'reach_cloud_edge.yaml'
PORT = 7447


def site_graph(folder: certs.CertFolder, cloud_ip: str, path: Path,
               edge_connect: str = '', graph: Path = GRAPH) -> Path:
    """The cloud-edge graph with this run's certificates and the cloud's address
    (``edge_connect``: where the edge reaches the router, if not there directly)."""
    d = yaml.safe_load(graph.read_text())
    endpoint = f'tls/{cloud_ip}:{PORT}'
    for name, site in d['sites'].items():
        site['connect'] = edge_connect if edge_connect and name != 'cloud' else endpoint
    for node in d['nodes']:
        p = node['parameters']
        if node['executable'] == 'router':
            p['listen'] = endpoint
            p['tls'] = {'ca': str(folder.ca.cert), 'cert': str(folder.router.cert),
                        'key': str(folder.router.key)}
        if node['executable'] == 'bridge':
            name = 'cloud' if p['side'] == 'cloud' else node['site']
            p['connect'] = d['sites'][node['site']]['connect']
            p['tls'] = {'ca': str(folder.ca.cert), 'cert': str(folder.site(name).cert),
                        'key': str(folder.site(name).key)}
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def probe_lines(path: Path) -> list[dict]:
    """The edge probe's lines so far."""
    return read_jsonl(path)


def store_rows(store: Path) -> tuple[list[tuple[int, int]], tuple[str, ...]]:
    """(robot index, seq) of every committed row of the replay store; the robot names."""
    from realrl_replay.reader import ReplayReader
    reader = ReplayReader(store)
    n = reader.count
    if n == 0:
        return [], reader.robot_names
    rows = reader.read(range(reader.first, reader.first + n), fields=['seq', 'robot_id'])
    return ([(int(r), int(s)) for r, s in zip(rows['robot_id'], rows['seq'])],
            reader.robot_names)


def learner_updates(cloud_dir: Path) -> int:
    """The learner's gradient updates so far (its last metrics line)."""
    path = cloud_dir / 'metrics' / 'learner.jsonl'
    lines = path.read_text().splitlines() if path.exists() else []
    for line in reversed(lines):
        try:
            return int(json.loads(line)['updates'])
        except (json.JSONDecodeError, KeyError):
            continue
    return 0


def bridge_counters(site_dir: Path) -> str:
    """The bridge node's last 'counters:' log line of a site's run."""
    for log in sorted((site_dir / 'logs').glob('*bridge*')):
        lines = [ln for ln in log.read_text(errors='replace').splitlines() if 'counters:' in ln]
        if lines:
            return lines[-1].split('counters: ', 1)[1]
    return 'no bridge counters'


def wait_until(what, timeout_s: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(step)
    return False


def run(work: Path, *, cut_s: float, before_s: float, after_s: float, settle_s: float,
        domain: int, name: str = 'rrcut', subnet: str = '10.213.5') -> dict:
    """One link-cut run in ``work``; the figures (see the module's docstring)."""
    procs = []
    with wan.WanLink(rate_mbit=100, rtt_ms=0, name=name, subnet=subnet) as link:
        folder = certs.make_folder(work / 'certs', ['lab_a', 'cloud'], (link.cloud_ip,),
                                   force=True)
        graph = site_graph(folder, link.cloud_ip, work / 'graph.yaml')
        cloud_dir, probe_file = work / 'cloud', work / 'probe.jsonl'
        try:
            for ns, site, dom in ((link.cloud_ns, 'cloud', domain),
                                  (link.edge_ns, 'lab_a', domain + 1)):
                env = _util.bench_env(dom)
                procs.append(_util.start_process(
                    ['ip', 'netns', 'exec', ns, str(_util.REALRL), 'train', '--config',
                     str(graph), '--site', site, '--run-dir', str(work / site),
                     '--no-stop-at-success', '--max-wall-s', '3600'], env,
                    work / f'{site}.log'))
            procs.append(_util.start_process(
                ['ip', 'netns', 'exec', link.edge_ns, sys.executable,
                 str(_util.ROOT / 'bench' / '_link_probe.py'), str(probe_file)],
                _util.bench_env(domain + 1), work / 'probe.log'))
            store = cloud_dir / 'replay'
            if not wait_until(lambda: store_count(store) > 20, 180):
                raise RuntimeError(f'no transitions stored within 180 s; see {work}/*.log')
            time.sleep(before_s)
            rows_before = store_count(store)
            veth = f'{name}e0'
            t_cut = time.time()
            wan._ip('-n', link.edge_ns, 'link', 'set', veth, 'down')
            time.sleep(cut_s)
            wan._ip('-n', link.edge_ns, 'link', 'set', veth, 'up')
            t_up = time.time()
            rows_at_up, updates_at_up = store_count(store), learner_updates(cloud_dir)
            time.sleep(after_s)
            cutoff = max((p['max_seq'] for p in probe_lines(probe_file)
                          if p['t'] <= time.time()), default=0)
            time.sleep(settle_s)
        finally:
            codes = [_util.stop_process(p, 20) for p in reversed(procs)]
    rows, robots = store_rows(cloud_dir / 'replay')
    stored = {s for _, s in rows}
    lines = probe_lines(probe_file)
    during = [p for p in lines if t_cut + 1.0 <= p['t'] <= t_up and 'steps' in p]
    return {
        'lost': sum(1 for s in range(1, cutoff + 1) if s not in stored),
        'duplicated': len(rows) - len(set(rows)),
        'cut_s': round(t_up - t_cut, 2),
        'checked_seqs': cutoff,
        'rows_before_cut': rows_before,
        'rows_after_reconnect': len(rows) - rows_at_up,
        'steps_during_cut': (during[-1]['steps'] - during[0]['steps']) if during else None,
        'waiting_for_action_s': round(0.25 * sum(p.get('waiting_for') == 'action'
                                                 for p in during), 2),
        'learner_updates_after_reconnect': learner_updates(cloud_dir) - updates_at_up,
        'robots': list(robots),
        'exit_codes': codes,
        'edge_bridge': bridge_counters(work / 'lab_a'),
        'cloud_bridge': bridge_counters(work / 'cloud'),
    }


def store_count(store: Path) -> int:
    """Committed rows of the store (0 before it exists)."""
    from realrl_replay.errors import StoreError
    from realrl_replay.reader import ReplayReader
    try:
        return ReplayReader(store).count
    except (StoreError, OSError):
        return 0   # not made yet


def main() -> None:
    args = _util.parse(__doc__.split('\n')[0])
    _util.require_workspace()
    reason = wan.available()
    if reason:
        sys.exit(f'bench: {reason}')
    timings = (dict(cut_s=8.0, before_s=10.0, after_s=15.0, settle_s=8.0) if args.quick else
               dict(cut_s=30.0, before_s=30.0, after_s=40.0, settle_s=10.0))
    with tempfile.TemporaryDirectory(prefix='link_cut_') as tmp:
        result = run(Path(tmp), domain=int(_util.bench_env(175)['ROS_DOMAIN_ID']), **timings)
    for side in ('edge', 'cloud'):
        print(f'{side} bridge: ' + result.pop(f'{side}_bridge'))
    print(f"link cut {result['cut_s']} s: lost {result['lost']} of {result['checked_seqs']}, "
          f"duplicated {result['duplicated']}; steps during the cut "
          f"{result['steps_during_cut']} (waiting for actions {result['waiting_for_action_s']} "
          f"s); rows before the cut {result['rows_before_cut']}, after reconnect "
          f"{result['rows_after_reconnect']}")
    _util.emit(result)


if __name__ == '__main__':
    main()
