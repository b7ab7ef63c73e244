"""Headless Chromium (Debian's package) driven over the DevTools protocol: open a page,
take screenshots while it loads. For tests of web viewers (WebGL through SwiftShader)."""
from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

FLAGS = ('--headless', '--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
         '--disable-breakpad', '--disable-crash-reporter',
         '--disable-dev-shm-usage', '--no-first-run', '--remote-debugging-port=0')


def chromium_path() -> str | None:
    """Debian's chromium, or None where it is not installed."""
    return shutil.which('chromium')


class HeadlessChromium:
    """A headless browser with one page; ``screenshot()`` returns PNG bytes."""

    def __init__(self, profile_dir: Path, size=(1280, 800)):
        self._log = open(Path(profile_dir) / 'chromium.log', 'wb+')
        self.p = subprocess.Popen(
            [chromium_path(), *FLAGS, f'--user-data-dir={profile_dir}',
             f'--window-size={size[0]},{size[1]}', 'about:blank'],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, 'HOME': str(profile_dir)})
        self.port = self._devtools_port()
        self._ids = itertools.count(1)
        self._ws = None
        self._stack = contextlib.ExitStack()

    def _devtools_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._log.seek(0)
            m = re.search(rb'DevTools listening on ws://[^:]+:(\d+)/', self._log.read())
            if m:
                return int(m.group(1))
            if self.p.poll() is not None:
                break
            time.sleep(0.1)
        self._log.seek(0)
        raise RuntimeError('chromium did not start: ' + self._log.read().decode(errors='replace'))

    def open(self, url: str) -> None:
        """Opens url in a new page and attaches to it."""
        from websockets.sync.client import connect
        req = urllib.request.Request(
            f'http://127.0.0.1:{self.port}/json/new?{url}', method='PUT')
        with urllib.request.urlopen(req, timeout=30) as r:
            target = json.load(r)
        self._ws = self._stack.enter_context(
            connect(target['webSocketDebuggerUrl'], max_size=None, open_timeout=30))

    def call(self, method: str, **params) -> dict:
        """One DevTools command on the page; its result."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({'id': msg_id, 'method': method, 'params': params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=60))
            if reply.get('id') == msg_id:
                if 'error' in reply:
                    raise RuntimeError(f'{method}: {reply["error"]}')
                return reply['result']

    def screenshot(self) -> bytes:
        """The page as PNG bytes."""
        return base64.b64decode(self.call('Page.captureScreenshot', format='png')['data'])

    def close(self) -> None:
        """Ends the browser and every process it started."""
        self._stack.close()  # the DevTools connection
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait()
        self._log.close()
