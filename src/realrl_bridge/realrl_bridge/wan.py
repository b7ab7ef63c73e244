"""An emulated WAN for tests and benchmarks: two network namespaces, a shaped veth, latency.

``with WanLink(rate_mbit=100, rtt_ms=50) as wan:`` creates

    <name>-c (cloud) <subnet>.1/30 ==veth, tbf <rate> each way== <subnet>.2/30 <name>-e (edge)

and removes both namespaces (and with them the veth) when the block ends, also on an error.
The kernel here has no netem, so latency is added in user space: ``wan.delay_proxy(port)``
starts ``realrl_bridge.delay_proxy`` inside the edge namespace, listening on its 127.0.0.1
and relaying to the cloud address with ``rtt_ms / 2`` added in each direction; an edge
process connects to that port instead of the cloud's. ``wan.popen(ns, argv)`` runs a
program inside a namespace. Needs root (``ip netns``, ``tc``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field


class WanError(RuntimeError):
    """The emulated link could not be set up (not root, no ip/tc, a command failed)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(['ip', *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise WanError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def available() -> str:
    """'' if a WanLink can be made here, else the reason why not."""
    if os.geteuid() != 0:
        return 'needs root (ip netns, tc)'
    for tool in ('ip', 'tc'):
        if shutil.which(tool) is None:
            return f'{tool} (iproute2) is not installed'
    return ''


@dataclass
class WanLink:
    """Two namespaces joined by a rate-limited veth; latency through ``delay_proxy``."""

    rate_mbit: float = 100.0
    rtt_ms: float = 50.0
    name: str = 'rrwan'
    """Namespace prefix: <name>-c and <name>-e (at most 10 characters)."""
    subnet: str = '10.213.0'
    """The first three octets of the /30 used on the veth."""
    proxy_nice: int = -10
    """Niceness of the delaying relay: it stands in for the wire, which never waits for a
    CPU, so it runs ahead of the programs it connects (the control path's are at -5); at 0
    its own scheduling delays on a loaded machine would be counted as the link's."""
    _procs: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        if self.rate_mbit <= 0 or self.rtt_ms < 0:
            raise ValueError(f'rate_mbit must be > 0 and rtt_ms >= 0, got {self.rate_mbit}, '
                             f'{self.rtt_ms}')
        if not (0 < len(self.name) <= 10 and self.name.isalnum()):
            raise ValueError(f'name {self.name!r}: 1-10 letters or digits')
        self.cloud_ns, self.edge_ns = f'{self.name}-c', f'{self.name}-e'
        self.cloud_ip, self.edge_ip = f'{self.subnet}.1', f'{self.subnet}.2'
        self.cloud_dev, self.edge_dev = f'{self.name}c0', f'{self.name}e0'
        """The veth's two ends, in the cloud and the edge namespace."""

    def __enter__(self) -> 'WanLink':
        reason = available()
        if reason:
            raise WanError(reason)
        self._remove()                      # leftovers of a run that was killed
        try:
            self._create()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _create(self) -> None:
        veth_c, veth_e = self.cloud_dev, self.edge_dev
        _ip('netns', 'add', self.cloud_ns)
        _ip('netns', 'add', self.edge_ns)
        _ip('link', 'add', veth_c, 'netns', self.cloud_ns, 'type', 'veth', 'peer', 'name',
            veth_e, 'netns', self.edge_ns)
        rate_bytes = self.rate_mbit * 1e6 / 8
        burst = max(16 * 1024, int(rate_bytes / 250))   # >= rate / HZ, a few packets
        for ns, dev, ip in ((self.cloud_ns, veth_c, self.cloud_ip),
                            (self.edge_ns, veth_e, self.edge_ip)):
            _ip('-n', ns, 'link', 'set', 'lo', 'up')
            _ip('-n', ns, 'addr', 'add', f'{ip}/30', 'dev', dev)
            _ip('-n', ns, 'link', 'set', dev, 'up')
            result = subprocess.run(
                ['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf',
                 'rate', f'{self.rate_mbit}mbit', 'burst', str(burst), 'latency', '200ms'],
                capture_output=True, text=True)
            if result.returncode != 0:
                raise WanError(f'tc tbf on {dev}: {result.stderr.strip()}')

    def popen(self, ns: str, argv: list[str], **kw) -> subprocess.Popen:
        """Start ``argv`` inside namespace ``ns``; it is killed when the link closes."""
        proc = subprocess.Popen(['ip', 'netns', 'exec', ns, *argv], **kw)
        self._procs.append(proc)
        return proc

    def delay_proxy(self, cloud_port: int, listen_port: int = 0) -> int:
        """Start the delaying relay in the edge namespace to cloud_ip:cloud_port.

        Returns the port it listens on (127.0.0.1 of the edge namespace)."""
        proc = self.popen(self.edge_ns, [
            sys.executable, '-m', 'realrl_bridge.delay_proxy',
            '--listen', f'127.0.0.1:{listen_port}', '--target', f'{self.cloud_ip}:{cloud_port}',
            '--one-way-delay-ms', str(self.rtt_ms / 2), '--nice', str(self.proxy_nice)],
            stdout=subprocess.PIPE, text=True, env=child_env())
        line = proc.stdout.readline()
        if not line.startswith('ready '):
            raise WanError(f'delay proxy did not start (exit {proc.poll()}): {line!r}')
        return int(line.split()[1])

    def close(self) -> None:
        """Stop the processes started in the namespaces; remove the namespaces."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout:
                proc.stdout.close()
        self._procs.clear()
        self._remove()

    def _remove(self) -> None:
        for ns in (self.cloud_ns, self.edge_ns):
            if os.path.exists(f'/var/run/netns/{ns}'):
                _ip('netns', 'del', ns, check=False)

    def exists(self) -> bool:
        """Whether either namespace is there."""
        listed = _ip('netns', 'list', check=False).stdout.split()
        return self.cloud_ns in listed or self.edge_ns in listed


def child_env() -> dict:
    """This process's environment with its import path, so a child (the relay) imports
    realrl_bridge and what that imports (realrl_common) wherever this process found them.
    Only realrl_bridge's folder was passed before: a bench run without scripts/env.sh then
    started a relay that could not import realrl_common."""
    env = os.environ.copy()
    env['PYTHONPATH'] = os.pathsep.join(p for p in sys.path if p)
    return env
