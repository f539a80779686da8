"""Shared test fixtures: the KenLM reference folder, a private LMCORE_HOME, fixed seeds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture
def kenlm_dir() -> Path:
    """The KenLM reference data; tests that need it skip with a reason when it is absent."""
    d = FIXTURES / "kenlm"
    if not (d / "expected.json").exists():
        pytest.skip(f"KenLM fixtures not found at {d} (they live in ../shared/fixtures)")
    return d


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch) -> None:
    """Every test gets its own LMCORE_HOME so the run store never touches ~/.lmcore."""
    monkeypatch.setenv("LMCORE_HOME", str(tmp_path / "lmcore-home"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module (`pytestmark = usefixtures(...)`): on a busy
    shared machine two OpenMP threads stall for whole time slices and training tests crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def two_threads():
    """torch at two intra-op threads for one test (modules may run at one), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole session, shared by tests/browser and tests/deploy.

    Why one: Playwright's sync API runs an event loop while it is open, so a second
    `sync_playwright()` in the same process (a module-scoped one after a session-scoped one)
    fails with "using Playwright Sync API inside the asyncio loop".
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium); .ci/run "
                    "installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
