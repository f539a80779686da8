"""Click through the real app in Chromium: every page by URL, an upload, a page switch."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from browserkit import ROOT, exceptions_on, screenshot, wait_idle

pytestmark = pytest.mark.browser

PAGES = sorted(p.stem for p in (ROOT / "pages").glob("*.py"))


def _url_path(stem: str) -> str:
    """Streamlit's URL for pages/N_Name.py is /Name (the number only orders the sidebar)."""
    return stem.split("_", 1)[1]


def test_home_page(page, server):
    page.goto(server)
    wait_idle(page)
    assert "lmcore" in page.locator("h1").first.inner_text()
    assert not exceptions_on(page)
    assert screenshot(page, "00_home").stat().st_size > 10_000


@pytest.mark.parametrize("stem", PAGES)
def test_every_page_opens_by_url(page, server, stem):
    page.goto(f"{server}/{_url_path(stem)}")
    wait_idle(page)
    assert not exceptions_on(page), exceptions_on(page)
    assert page.locator("h1").count() >= 1
    screenshot(page, stem)


def test_upload_then_switch_pages(page, server, tmp_path: Path):
    page.goto(f"{server}/Corpus_and_tokenizers")
    wait_idle(page)
    page.get_by_text("Upload a file").first.click()
    wait_idle(page)
    text = "北京是中国的首都。Beijing is the capital of China.\n" * 50
    f = tmp_path / "mixed.txt"
    f.write_bytes(text.encode("utf-16"))
    page.locator('input[type="file"]').first.set_input_files(str(f))
    page.get_by_text("Using mixed.txt").wait_for(timeout=60_000)
    wait_idle(page)
    assert not exceptions_on(page)
    screenshot(page, "upload_utf16")
    # the corpus follows the visitor to another page (session state, via the sidebar link)
    page.locator('[data-testid="stSidebar"] a').filter(has_text="N-gram").first.click()
    page.wait_for_url("**/N-gram_models")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("mixed.txt").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert not exceptions_on(page)
    screenshot(page, "switched_page_keeps_corpus")
    # back on the Corpus page (and on the home page) the upload is still the current corpus:
    # opening a page with the corpus picker must not fall back to the built-in corpus
    for link, url, title in (("Corpus", "**/Corpus_and_tokenizers", "Corpus"),
                             ("Home", "**/", "lmcore")):
        page.locator('[data-testid="stSidebar"] a').filter(has_text=link).first.click()
        page.wait_for_url(url)
        page.locator("h1").filter(has_text=title).first.wait_for(timeout=60_000)
        wait_idle(page)
        assert not exceptions_on(page)
        main = page.locator('[data-testid="stMain"]')
        main.get_by_text("Using mixed.txt").first.wait_for(timeout=60_000)
        assert main.get_by_text("Python reference docs").count() == 0
        assert sidebar.get_by_text("mixed.txt").count() >= 1
        checked = main.locator('[data-testid="stRadio"] input:checked').first
        assert checked.evaluate("e => e.closest('label').innerText").strip() == "Upload a file"
        screenshot(page, f"back_on_{link.lower()}_keeps_corpus")


def test_bad_upload_shows_error_box(page, server, tmp_path: Path):
    page.goto(f"{server}/Corpus_and_tokenizers")
    wait_idle(page)
    page.get_by_text("Upload a file").first.click()
    wait_idle(page)
    f = tmp_path / "archive.gz"
    f.write_bytes(gzip.compress(b"some text " * 200))
    page.locator('input[type="file"]').first.set_input_files(str(f))
    page.locator('[data-testid="stAlert"]').filter(has_text="gzip").first.wait_for(
        timeout=60_000)
    assert not exceptions_on(page)
    screenshot(page, "bad_upload")
