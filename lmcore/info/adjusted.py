"""The size of a model itself, for the "adjusted" compression rate of Delétang et al. (2023).

"Language Modeling Is Compression" points out that a decoder needs the model too: a rate that
ignores the model's size flatters large models. The adjusted rate charges it:
(coded bytes + model bytes) / text size. Model bytes here are what a decoder must be sent:
a Transformer's float32 weights plus its tokenizer; an n-gram's ARPA file plus its tokenizer,
both xz-compressed (the ARPA text is mostly digits and repeated contexts); nothing for a model
that learns only from the text itself.
"""

from __future__ import annotations

import io
import lzma
import threading

from lmcore.models.lm import LanguageModel

_CACHE: dict[str, int] = {}  # fingerprint -> bytes (xz of a large ARPA file takes seconds)
_LOCK = threading.Lock()


def _tokenizer_bytes(model: LanguageModel) -> int:
    tok = getattr(model, "tokenizer", None)
    return len(lzma.compress(tok.to_json().encode("utf-8"), preset=9)) if tok is not None else 0


def model_bytes(model: LanguageModel | None) -> int:
    """Bytes a decoder must receive to rebuild `model` (see the module docstring)."""
    if model is None:
        return 0
    from lmcore.info.adaptive import AdaptiveLM
    from lmcore.models.ngram import NGramLM

    if isinstance(model, AdaptiveLM):
        return model_bytes(model.base) if model.base is not None else 0
    if isinstance(model, NGramLM):
        from lmcore.models.arpa import write_arpa

        key = model.fingerprint()
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
        buf = io.StringIO()
        write_arpa(model, buf)
        size = len(lzma.compress(buf.getvalue().encode("utf-8"), preset=9)) + \
            _tokenizer_bytes(model)
        with _LOCK:
            _CACHE[key] = size
        return size
    return 4 * model.num_parameters() + _tokenizer_bytes(model)  # float32 weights


def adjusted_bits_per_char(coded_bytes: int, model_size: int, chars: int) -> float:
    """(coded + model) bytes * 8 / characters: the rate with the model paid for."""
    if chars <= 0:
        raise ValueError("the text has no characters")
    return 8 * (coded_bytes + model_size) / chars
