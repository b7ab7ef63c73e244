"""A TCP relay that adds latency, and can cut its connections: a WAN link in user space.

``DelayProxy(listen_port, target)`` accepts TCP connections and relays each one to
``target``. Every piece of data is held for ``one_way_delay_s`` before it is written on, in
both directions, so a round trip gains twice that; data is pipelined, so the bandwidth is
not reduced (pair it with a ``tc`` rate limit for a slow link). ``cut()`` closes every
open connection at once, the way a dropped WAN link looks to both ends; ``refuse`` makes
new connections fail until it is cleared. It runs its own asyncio loop in a thread.
"""
from __future__ import annotations

import asyncio
import sys
import threading
import time

from realrl_common.scheduling import set_process_nice


class DelayProxy:
    """A delaying TCP relay in a background thread (context manager: start/stop)."""

    def __init__(self, target: tuple[str, int], *, listen: tuple[str, int] = ('127.0.0.1', 0),
                 one_way_delay_s: float = 0.0, read_size: int = 64 * 1024):
        if one_way_delay_s < 0:
            raise ValueError(f'one_way_delay_s must be >= 0, got {one_way_delay_s}')
        self.target = target
        self.listen = listen
        self.delay = one_way_delay_s
        self.read_size = read_size
        self.refuse = False
        """While true, new connections are closed at once (the far end is unreachable)."""
        self.port = 0
        self.connections = 0
        """Connections accepted so far."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> 'DelayProxy':
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Listen (the chosen port is in ``port``)."""
        self._thread = threading.Thread(target=self._main, name='delay-proxy', daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise RuntimeError('delay proxy did not start within 10 s')

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._open())
        except OSError as e:
            self._error = e
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._close_all())
            self._loop.close()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._handle, *self.listen)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if self.refuse:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(self.read_size):
                await queue.put((time.monotonic() + self.delay, data))
                if queue.qsize() > 4096:  # the far side is slower than the near one
                    await asyncio.sleep(0.001)
        except (ConnectionError, OSError):
            pass  # the connection was cut; both halves close below
        finally:
            await queue.put((0.0, None))
            try:
                await sender
            except (ConnectionError, OSError):
                pass  # the other half is gone already
            writer.close()

    async def _close_all(self) -> None:
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        """Abort every open connection now (a dropped link); new ones are still accepted."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)

    def stop(self) -> None:
        """Close the listener and every connection; join the thread."""
        if self._loop is None or self._thread is None:
            return

        async def shut():
            self._server.close()
            await self._close_all()
        try:
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(':')
    if not host or not port.isdigit():
        raise ValueError(f'{text!r}: write HOST:PORT')
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    """Command line: relay until SIGTERM/SIGINT; prints 'ready <port>' once listening."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog='python -m realrl_bridge.delay_proxy',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--listen', default='127.0.0.1:0', help='HOST:PORT to accept on')
    parser.add_argument('--target', required=True, help='HOST:PORT to relay to')
    parser.add_argument('--one-way-delay-ms', type=float, default=0.0,
                        help='added in each direction (a round trip gains twice this)')
    parser.add_argument('--nice', type=int, default=0,
                        help='scheduling niceness (below 0: the relay, standing in for a '
                             'wire, is not late behind the programs it connects)')
    args = parser.parse_args(argv)
    if not -20 <= args.nice <= 19:
        parser.error(f'--nice must be in -20..19, got {args.nice}')
    try:
        proxy = DelayProxy(_host_port(args.target), listen=_host_port(args.listen),
                           one_way_delay_s=args.one_way_delay_ms / 1000.0)
    except ValueError as e:
        parser.error(str(e))
    refused = set_process_nice(args.nice)
    if refused:
        print(f'delay proxy: {refused}', file=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with proxy:
        print(f'ready {proxy.port}', flush=True)
        stop.wait()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
