"""Token colouring: every character shown once, whatever the tokenizer does to multi-byte text."""

from __future__ import annotations

import html
import re

import pytest

from lmcore.app.highlight import token_boundaries_html, token_groups
from lmcore.data.tokenizers import train_tokenizer

TEXT = "希望你好，hello 世界。我们希望明天会更好。😀 café\n" * 12


def _shown(markup: str) -> str:
    """The text a reader sees: tags stripped, entities decoded, line marks undone."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup.replace("⏎<br>", "\n")))


@pytest.mark.parametrize("kind", ["char", "byte", "bpe", "unigram", "wordpiece"])
def test_every_character_is_shown_once(kind):
    size = 300 if kind in ("bpe", "unigram", "wordpiece") else None
    tok = train_tokenizer(kind, TEXT, vocab_size=size)
    sample = "希望 hello 世界😀é"
    _, offsets = tok.encode_offsets(sample)
    assert _shown(token_boundaries_html(sample, offsets)) == sample


def test_byte_pieces_of_one_character_form_one_span():
    # a byte tokenizer reports each of 希's three bytes with the span of the whole character
    groups = token_groups([(0, 1), (0, 1), (0, 1), (1, 2), (1, 2), (1, 2), (2, 3)])
    assert groups == [(0, 1, 0, 2), (1, 2, 3, 5), (2, 3, 6, 6)]
    markup = token_boundaries_html("希望a", [(0, 1), (0, 1), (0, 1), (1, 2), (1, 2), (1, 2),
                                              (2, 3)])
    assert 'title="tokens 0–2"' in markup and 'title="token 6"' in markup
    assert markup.count("希") == 1 and markup.count("望") == 1


def test_text_no_token_covers_is_kept_and_escaped():
    markup = token_boundaries_html("a <b> c", [(0, 1), (6, 7)])
    assert _shown(markup) == "a <b> c" and "<b>" not in markup.replace("<br>", "")
