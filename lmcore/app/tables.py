"""Tables as a person reads them: headers in words, missing values as a dash, sane digits."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

# snake_case keys of lmcore's result rows -> the header a reader sees
HEADERS = {
    "bits_per_char": "bits/char", "bits_per_token": "bits/token", "bits_per_byte": "bits/byte",
    "tokens_scored": "tokens scored", "chars_scored": "characters scored",
    "coverage": "share of text scored", "peak_extra_mb": "peak extra RSS (MB)",
    "peak_rss_mb": "peak RSS (MB)", "rss_mb": "RSS (MB)", "seconds": "seconds",
    "complete": "complete", "chars": "characters", "index": "window",
    "zero_prob": "tokens with p = 0", "fwd_ms": "forward (ms)", "fwdbwd_ms": "fwd+bwd (ms)",
    "fwd_mib": "forward peak (MiB)", "fwdbwd_mib": "fwd+bwd peak (MiB)", "impl": "implementation",
    "T": "T", "order": "n", "perplexity": "perplexity", "train_loss": "train loss",
    "valid_loss": "validation loss", "elapsed_s": "seconds", "tokens_per_s": "tokens/s",
    "steps": "steps", "status": "status", "vocab_size": "vocabulary",
    "chars_per_token": "chars/token", "bytes_per_token": "bytes/token",
    "unk_share": "unknown share", "train_seconds": "training (s)",
    "non_embedding": "N (non-embedding params)", "params": "parameters", "flops": "FLOPs",
    "run_id": "run", "exact_match": "exact match", "digit_accuracy": "per-digit accuracy",
}
MISSING = "–"


def header(name: str) -> str:
    """A column name in words: known keys mapped, others with underscores as spaces."""
    return HEADERS.get(name, name.replace("_", " "))


def _cell(v: object, digits: int) -> str:
    if v is None or (isinstance(v, numbers.Real) and math.isnan(v)):
        return MISSING
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return f"{v:,}"
    if isinstance(v, numbers.Real):
        v = float(v)
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == round(v) and abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits or v == 0 else f"{v:.2e}"
    return str(v)


def readable(df: pd.DataFrame, digits: int = 4, percent: tuple[str, ...] = ("coverage",)
             ) -> Styler:
    """`df` with headers in words and every cell formatted: None/NaN as '–' (not 'None'),
    integers with thousands separators, floats to `digits` places, `percent` columns as %.

    The values stay numbers (the table still sorts by them); only their display changes.
    """
    shown = df.rename(columns={c: header(c) for c in df.columns})
    pct = {header(c) for c in percent}
    for c in shown.columns:
        col = shown[c]
        if c in pct or not col.isna().any():
            continue
        # a missing cell is drawn by the grid itself as a grey "None" whatever the format
        # says: such a column becomes text ('–' where missing, whole numbers without decimals)
        whole = pd.api.types.is_numeric_dtype(col) and bool(
            (col.dropna() == col.dropna().round()).all())
        shown[c] = [MISSING if v is None or v != v else
                    (f"{int(v):,}" if whole else _cell(v, digits)) for v in col]
    fmt = {c: (lambda v: MISSING if v is None or v != v else f"{100 * v:.1f}%") if c in pct
           else (lambda v: _cell(v, digits)) for c in shown.columns}
    return shown.style.format(fmt)
