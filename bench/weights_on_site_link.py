"""Control latency on a site's shared network while the learner publishes weights over DDS,
unpaced vs. paced (the learner's ``weights_max_mbit_s``, an edge's ``weights.site_mbit_s``).

Two network namespaces joined by a veth shaped with tbf to ``--link-mbit`` (200 Mbit/s:
a robot's Wi-Fi or a busy lab network), no added latency (``realrl_bridge.wan.WanLink``);
DDS between them over UDP only (``FASTDDS_BUILTIN_TRANSPORTS=UDPv4``: shared memory would
bypass the link), discovery by multicast on the veth. ``bench/_site_link_ends.py`` runs
both ends:

- the GPU server: a policy that answers each observation at once, and a learner publishing
  a new weights version of ``--version-mb`` every 2 s as 256 KiB WeightChunks (as the
  learner node does);
- the robot's computer: observations at 50 Hz (SENSOR_QOS, as the driver's), the actions
  back (COMMAND_QOS), and a policy's weights subscription (``BlobAssembler``).

Windows alternate (``--pairs`` rounds of idle, unpaced, paced, the order rotated each round)
so the three see the same machine. Per mode: the observation -> action round trip
(``p50_ms``, ``p99_ms``, over the observations answered), ``lost`` (observations never
answered: a best-effort observation dropped in a full queue, as a congested link drops
them), and ``versions_whole`` (weights versions the robot received whole). The baseline is
the idle windows of the same run. ``paced_mbit`` defaults to half the link.

Left out: a real network card and switch (the tbf queue stands in for the switch's
buffer), other robots' traffic, images. Needs root.

    .venv/bin/python bench/weights_on_site_link.py [--quick] [--link-mbit M]
        [--paced-mbit M] [--version-mb MB] [--chunk-kib K] [--window-s S] [--pairs N]
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import _util

from realrl_bridge import wan

DOMAIN = 183
MODES = ('idle', 'unpaced', 'paced')


def options(p) -> None:
    p.add_argument('--link-mbit', type=float, default=200.0, help='the site link (tbf)')
    p.add_argument('--paced-mbit', type=float, default=0.0,
                   help='the weights budget when paced (default: half the link)')
    p.add_argument('--version-mb', type=float, default=25.0,
                   help='one weights version (default 25 MB: a 6M-parameter actor)')
    p.add_argument('--chunk-kib', type=int, default=256,
                   help="WeightChunk size (the learner's chunk_bytes; default 256 KiB)")
    p.add_argument('--window-s', type=float, default=20.0)
    p.add_argument('--pairs', type=int, default=3, help='rounds of the three windows')


def check(args) -> None:
    """Refuse what cannot be measured, naming the flag."""
    for flag, value, ok, need in (
            ('--link-mbit', args.link_mbit, args.link_mbit > 0, '> 0'),
            ('--paced-mbit', args.paced_mbit, 0 <= args.paced_mbit <= args.link_mbit,
             f'in 0..--link-mbit ({args.link_mbit:g}; 0: half of it)'),
            ('--version-mb', args.version_mb, args.version_mb > 0, '> 0'),
            ('--chunk-kib', args.chunk_kib, args.chunk_kib >= 1, '>= 1'),
            ('--window-s', args.window_s, args.window_s > 2, '> 2 (a version every 2 s)'),
            ('--pairs', args.pairs, args.pairs >= 1, '>= 1')):
        if not ok:
            sys.exit(f'bench: {flag} must be {need}, got {value:g}')


def order(rounds: int) -> list[str]:
    """idle, unpaced, paced; then rotated by one each round."""
    return [MODES[(i + r) % 3] for r in range(rounds) for i in range(3)]


def ends_env() -> dict:
    env = wan.child_env()
    env.update(ROS_DOMAIN_ID=str(DOMAIN), FASTDDS_BUILTIN_TRANSPORTS='UDPv4')
    for key in ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_STATIC_PEERS',
                'FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        env.pop(key, None)      # the default (subnet) range: the veth is the subnet
    return env


def measure(args, modes: list[str]) -> tuple[list, dict]:
    paced = args.paced_mbit or args.link_mbit / 2
    script = str(_util.ROOT / 'bench' / '_site_link_ends.py')
    with wan.WanLink(rate_mbit=args.link_mbit, rtt_ms=0, name='rrsite',
                     subnet='10.215.0') as link:
        for ns, dev in ((link.cloud_ns, link.cloud_dev), (link.edge_ns, link.edge_dev)):
            subprocess.run(['ip', '-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev],
                           check=True)      # DDS discovery's multicast goes on the veth
        env = ends_env()
        robot = link.popen(link.edge_ns, [sys.executable, script, 'robot'], env=env,
                           stdout=subprocess.PIPE, text=True)
        server = link.popen(link.cloud_ns, [
            sys.executable, script, 'server', str(paced), str(args.version_mb), '2.0',
            str(args.window_s), ','.join(modes), str(args.chunk_kib * 1024)], env=env,
            stdout=subprocess.PIPE, text=True)
        windows = []
        for line in server.stdout:
            if line.startswith('window '):
                mode, t0, t1 = line.split()[1:]
                windows.append((mode, float(t0), float(t1)))
                print(f'  window {len(windows)}/{len(modes)}: {mode}', flush=True)
            elif line.strip() == 'done':
                break
        if len(windows) != len(modes):
            raise RuntimeError(f'the server ended after {len(windows)} windows '
                               f'(status {server.poll()})')
        time.sleep(1.0)                 # the last answers
        robot.terminate()
        record = json.loads(robot.communicate(timeout=60)[0].strip().splitlines()[-1])
    return windows, record


def figures(windows, record, settle_s: float = 0.5) -> dict:
    """Per mode, over the observations sent inside its windows (the first ``settle_s`` of
    each left out: the link's queue from the window before drains)."""
    answered = {int(k): t for k, t in record['answered'].items()}
    out = {}
    for mode in MODES:
        rtts, lost, whole = [], 0, 0
        for m, t0, t1 in windows:
            if m != mode:
                continue
            for seq, t in record['sent']:
                if t0 + settle_s <= t < t1:
                    if seq in answered:
                        rtts.append((answered[seq] - t) * 1e3)
                    else:
                        lost += 1
            whole += sum(t0 + settle_s <= t < t1 + settle_s for t, _ in record['versions'])
        n = len(rtts) + lost
        out[mode] = {'p50_ms': round(_util.percentile(rtts, 50), 2),
                     'p99_ms': round(_util.percentile(rtts, 99), 2),
                     'lost': lost, 'lost_share': round(lost / n, 4) if n else None,
                     'samples': n, 'versions_whole': whole}
    return out


def main() -> None:
    args = _util.parse(__doc__.split('\n')[0], options)
    check(args)
    reason = wan.available()
    if reason:
        sys.exit(f'bench: {reason}')
    if args.quick:
        args.window_s, args.pairs = 10.0, 1
    modes = order(args.pairs)
    windows, record = measure(args, modes)
    out = figures(windows, record)
    for mode in MODES:
        f = out[mode]
        print(f"{mode:8s} observation -> action p50 {f['p50_ms']:7.2f} ms  p99 "
              f"{f['p99_ms']:8.2f} ms  lost {f['lost']}/{f['samples']}  weights versions "
              f"whole {f['versions_whole']}", flush=True)
    _util.emit({'link_mbit': args.link_mbit, 'paced_mbit': args.paced_mbit or
                args.link_mbit / 2, 'version_mb': args.version_mb,
                'chunk_kib': args.chunk_kib, 'every_s': 2.0,
                'window_s': args.window_s, 'pairs': args.pairs, 'modes': out,
                'p99_ratio_unpaced_to_idle': round(out['unpaced']['p99_ms'] /
                                                   out['idle']['p99_ms'], 2),
                'p99_ratio_paced_to_idle': round(out['paced']['p99_ms'] /
                                                 out['idle']['p99_ms'], 2)})


if __name__ == '__main__':
    main()
