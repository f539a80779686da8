"""The app served by `deploy/serve.sh` (the hosted launcher) on 127.0.0.1; page helpers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A running `deploy/serve.sh serve`: its URL, process, run-store folder and log."""

    def __init__(self, url: str, proc: subprocess.Popen, home: Path, log: Path):
        self.url, self.proc, self.home, self.log = url, proc, home, log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(tmp: Path, **env: str) -> Iterator[Served]:
    """Start the hosted launcher with `env` added; yield once /_stcore/health answers ok."""
    port = free_port()
    home = tmp / "home"
    log = tmp / "serve.log"
    full = dict(os.environ, PYTHON=sys.executable, ADDRESS="127.0.0.1", PORT=str(port),
                LMCORE_PROFILE="hosted", LMCORE_HOME=str(home), PYTHONUNBUFFERED="1",
                PYTHONPATH=str(ROOT), **env)
    with open(log, "w") as out:
        proc = subprocess.Popen([str(ROOT / "deploy" / "serve.sh"), "serve"], cwd=ROOT,
                                env=full, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                pytest.fail("deploy/serve.sh did not serve in 90 s:\n" + log.read_text()[-3000:])
            time.sleep(0.5)
        yield Served(url, proc, home, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_rendered(page, timeout: float = 90_000) -> None:
    """The page's script run finished: a title is drawn and no 'Running' status is shown."""
    page.wait_for_selector("h1", timeout=timeout)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
                 || !document.querySelector('[data-testid="stStatusWidget"]').innerText
                      .includes('Running')""", timeout=timeout)
    page.wait_for_timeout(300)
