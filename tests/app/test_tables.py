"""Tables as a person reads them: words for headers, '–' for missing cells, no 'None'."""

from __future__ import annotations

import pandas as pd

from lmcore.app.tables import readable


def _shown(styler) -> list[list[str]]:
    """The cell texts a reader sees (the Styler's display values)."""
    ctx = styler._translate(False, False)
    return [[cell["display_value"] for cell in row[1:]] for row in ctx["body"]]


def test_missing_cells_are_dashes_and_whole_numbers_have_no_decimals():
    df = pd.DataFrame({"strategy": ["truncation", "disjoint", "sliding"],
                       "stride": [None, 32, 8], "bits_per_char": [0.3661, 0.616, 0.1409]})
    styler = readable(df)
    assert list(styler.data.columns) == ["strategy", "stride", "bits/char"]
    rows = _shown(styler)
    assert [r[1] for r in rows] == ["–", "32", "8"]
    assert [r[2] for r in rows] == ["0.3661", "0.6160", "0.1409"]
    assert not any("None" in c or "nan" in c for r in rows for c in r)
    # a column without gaps keeps its numbers (the grid can sort by them)
    assert pd.api.types.is_float_dtype(styler.data["bits/char"])
