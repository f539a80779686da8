"""The sidebar lists pages by their number (10_ after 9_, not after 1_), each with an icon."""

from lmcore.app.frame import _nav_links


def test_pages_are_ordered_by_number():
    links = _nav_links()
    assert links[0] == ("streamlit_app.py", "Home", "🏠")
    numbers = [int(p.split("/")[1].split("_")[0]) for p, _, _ in links[1:]]
    assert numbers == sorted(numbers) and 10 in numbers
    assert ("pages/10_Embeddings.py", "Embeddings", "🧭") in links


def test_every_page_stills_the_progress_bar():
    """The style that stops a job's progress bar gliding (lmcore.app.frame) is on the page,
    as a style-only html element (Streamlit keeps those out of the layout)."""
    from apptest import open_app

    from lmcore.app.frame import STILL_PROGRESS

    at = open_app()
    assert STILL_PROGRESS in [h.proto.body for h in at.get("html")]
