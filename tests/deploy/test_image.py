"""The container recipe, proven where a Docker daemon runs: `deploy/check-image.sh` starts the
image with no network (it must turn healthy: nothing downloads at run time), then on loopback,
where Chromium opens one page and reads the hosted limits banner.

Building the image needs PyTorch's CPU index and Debian's archive, so the test takes an image
already built (`docker build -f deploy/Dockerfile -t lmcore .`) named by LMCORE_TEST_IMAGE,
and skips with the reason where there is no daemon or no image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from servekit import free_port, wait_rendered

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("LMCORE_TEST_IMAGE", "")
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _daemon() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.mark.skipif(not IMAGE, reason="set LMCORE_TEST_IMAGE to a built lmcore image")
def test_the_image_is_healthy_offline_and_serves_a_page(browser):
    if not _daemon():
        pytest.skip("no Docker daemon (apt-get install docker.io; dockerd &)")
    port = free_port()
    out = subprocess.run([str(ROOT / "deploy" / "check-image.sh"), IMAGE, str(port)],
                         capture_output=True, text=True, timeout=400)
    try:
        assert out.returncode == 0, out.stderr[-3000:]
        assert "healthy, user lmcore, LMCORE_PROFILE=hosted" in out.stderr
        url = out.stdout.strip()
        assert url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
            assert r.read() == b"ok"
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(f"{url}/Information")
        wait_rendered(page)
        banner = page.locator('[data-testid="stAlert"]').filter(has_text="Hosted demo limits")
        assert "uploads up to 2 MB" in banner.inner_text()
        assert not page.locator('[data-testid="stException"]').count()
        ctx.close()
    finally:
        subprocess.run(["docker", "rm", "-f", f"lmcore-check-{port}"], capture_output=True)
