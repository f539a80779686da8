"""The hosted demo as a visitor meets it: `deploy/serve.sh` on 127.0.0.1, driven by Chromium.

Proves the launcher serves (health, a page with the limits banner), that an upload over the
cap is refused before the server reads it (by the uploader in the browser, and by the server
for a hand-made request), that XSRF protection is on, that a closed tab's job stops within
seconds and its runs are deleted, and that an idle session expires and is emptied.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from servekit import serve, wait_rendered

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("hosted"), SESSION_RECONNECT_S="3") as s:
        yield s


def _rss(pid: int) -> int:
    """RSS of the server and every process it started (job workers), bytes."""
    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)])


def _runs(home: Path) -> list[tuple[str, str, str | None]]:
    db = home / "runs.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        return con.execute("SELECT id, status, checkpoint FROM runs").fetchall()


def _use_upload(page) -> None:
    page.get_by_text("Upload a file", exact=True).click()
    page.wait_for_selector('[data-testid="stFileUploaderDropzoneInput"]', state="attached")


def test_serves_health_and_a_page_with_the_limits_banner(server, browser):
    with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=5) as r:
        assert (r.status, r.read()) == (200, b"ok")
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(f"{server.url}/N-gram_models")  # deep link on a fresh server
        wait_rendered(page)
        banner = page.locator('[data-testid="stAlert"]').filter(
            has_text="Hosted demo limits").inner_text()
        assert "uploads up to 2 MB" in banner and "5,000 training steps" in banner
        assert not page.locator('[data-testid="stException"]').count()
    finally:
        ctx.close()


def test_upload_over_the_cap_is_refused_before_the_server_reads_it(server, browser, tmp_path):
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        uploads = []
        page.on("request", lambda r: uploads.append(r) if "/upload_file/" in r.url
                and r.method == "PUT" else None)
        page.goto(f"{server.url}/Corpus_and_tokenizers")
        wait_rendered(page)
        _use_upload(page)
        small = "marker-7f3a own text. " * 50
        page.set_input_files('[data-testid="stFileUploaderDropzoneInput"]', files=[
            {"name": "mine.txt", "mimeType": "text/plain", "buffer": small.encode()}])
        page.wait_for_function("() => document.body.innerText.includes('Using mine.txt')",
                               timeout=60_000)
        assert len(uploads) == 1
        url, token = uploads[0].url, uploads[0].headers.get("x-xsrftoken")
        assert token, "the browser sends an XSRF token with each upload"

        before = _rss(server.proc.pid)
        big = b"x" * (30 * MB)
        t0 = time.time()
        for k in range(8):  # the uploader in the browser refuses each: nothing is sent
            path = tmp_path / f"big{k}.txt"
            path.write_bytes(big)
            page.set_input_files('[data-testid="stFileUploaderDropzoneInput"]', str(path))
            page.get_by_text("File must be 2.0MB or smaller.").first.wait_for(timeout=10_000)
            path.unlink()
        assert len(uploads) == 1, "a refused file never reached the server"

        # A hand-made request skips the browser's check: the server refuses it unread (413),
        # and without the XSRF token refuses it outright (403).
        t1 = time.time()
        statuses = []
        for _ in range(6):
            r = ctx.request.put(url, multipart={"file": {"name": "big.txt",
                                                         "mimeType": "text/plain",
                                                         "buffer": big}},
                                headers={"X-Xsrftoken": token}, timeout=60_000)
            statuses.append(r.status)
        no_token = ctx.request.put(url, multipart={"file": {"name": "a.txt",
                                                            "mimeType": "text/plain",
                                                            "buffer": b"abc"}})
        t2 = time.time()
        assert statuses == [413] * 6
        assert no_token.status == 403
        grown = (_rss(server.proc.pid) - before) / MB
        print(f"\nserver RSS {before / MB:.0f} MB before, {before / MB + grown:.0f} MB after 8 "
              f"browser-refused ({t1 - t0:.1f} s) and 6 server-refused ({t2 - t1:.1f} s) "
              "30 MB uploads")
        # 8 browser-refused and 6 server-refused 30 MB uploads: 420 MB offered, none kept
        assert grown < 30, f"server RSS grew {grown:.0f} MB over 14 refused 30 MB uploads"
        _use_upload(page)  # a rerun: the visitor's own text is still the corpus
        wait_rendered(page)
        assert "mine.txt" in page.locator('[data-testid="stSidebar"]').inner_text()
    finally:
        ctx.close()


def _procs(pid: int) -> set[int]:
    return {q.pid for q in psutil.Process(pid).children(recursive=True)}


def test_a_closed_tabs_job_stops_within_seconds_and_its_runs_are_deleted(server, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{server.url}/Transformer")
    wait_rendered(page)
    steps = page.get_by_label("Steps", exact=True)
    steps.fill("2000")
    steps.press("Enter")
    wait_rendered(page)
    before = _procs(server.proc.pid)  # the server's helpers (forkserver), no job yet
    page.get_by_role("button", name="Train", exact=True).click()
    deadline = time.time() + 120
    while not [r for r in _runs(server.home) if r[1] == "running"]:
        assert time.time() < deadline, "the training job did not start"
        time.sleep(0.3)
    workers = _procs(server.proc.pid) - before
    assert workers, "the job runs in a process of its own"
    closed = time.time()
    ctx.close()
    while _procs(server.proc.pid) & workers:
        assert time.time() - closed < 10, "the job's process lives 10 s after its tab closed"
        time.sleep(0.2)
    # after the reconnect window (3 s here) the sweeper deletes the session's runs and models
    while _runs(server.home):
        assert time.time() - closed < 40, f"runs kept after the session ended: {_runs(server.home)}"
        time.sleep(0.5)
    models = server.home / "models"
    assert not models.exists() or not any(models.iterdir())


def test_an_idle_session_expires_and_its_text_is_gone(browser, tmp_path):
    with serve(tmp_path, LMCORE_IDLE_SECONDS="12", SESSION_RECONNECT_S="3") as srv:
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            page.goto(f"{srv.url}/Corpus_and_tokenizers")
            wait_rendered(page)
            page.get_by_text("Paste text", exact=True).click()
            page.get_by_role("textbox", name="Paste text").fill("marker-idle-91c own words. " * 40)
            page.get_by_role("button", name="Use this text").click()
            sidebar = page.locator('[data-testid="stSidebar"]')
            page.wait_for_function("() => document.body.innerText.includes('Using pasted text')",
                                   timeout=30_000)
            assert "pasted text" in sidebar.inner_text()
            # no page run for 12 s: the sweeper expires the session and reruns its page,
            # which empties it and says why; the tab shows a fresh lab on the built-in corpus
            page.get_by_text("This session was idle").wait_for(timeout=40_000)
            wait_rendered(page)
            assert "pasted text" not in sidebar.inner_text()
            assert "Python reference docs" in sidebar.inner_text()
            assert "Using pasted text" not in page.locator("section.main, [data-testid="
                                                           "'stMain']").first.inner_text()
        finally:
            ctx.close()
