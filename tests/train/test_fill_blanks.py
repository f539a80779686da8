"""Fill in the blank: letters hidden only, [CLS] A [SEP] B [SEP] for an NSP model, printable
fills only."""

from __future__ import annotations

import torch
from objective_models import tiny

from lmcore.data.tokenizers import CLS_ID, MASK_ID, N_SPECIAL, SEP_ID, train_tokenizer
from lmcore.models.transformer import Transformer
from lmcore.train.fill_blanks import fill_blanks, fillable_ids, make_blanks


def test_make_blanks_hides_letters_only():
    text = "the cat sat on the mat"
    out = make_blanks(text, n=3, seed=1)
    assert len(out) == len(text) and out.count("_") == 3 and out[0] == "t"
    assert all(a == b or (b == "_" and a.isalpha()) for a, b in zip(text, out, strict=True))
    assert out == make_blanks(text, n=3, seed=1)


class _Recording(torch.nn.Module):
    """A model wrapper that keeps every input it is given and can push some logits up."""

    def __init__(self, inner: Transformer, boost: dict[int, float] | None = None):
        super().__init__()
        self.inner, self.config, self.nsp = inner, inner.config, inner.nsp
        self.seen: list[torch.Tensor] = []
        self.bias = torch.zeros(inner.config.vocab_size)
        for i, v in (boost or {}).items():
            self.bias[i] = v

    def forward(self, x, **kw):
        self.seen.append(x.clone())
        return self.inner(x, **kw) + self.bias


def test_fill_with_an_nsp_model_reads_cls_a_sep_b_sep():
    tok = train_tokenizer("char", "abcde")
    rec = _Recording(tiny("bidirectional", vocab_size=tok.vocab_size, nsp_head=True))
    filled, probs = fill_blanks(rec, tok, "ab_de", "masked")
    a, b, d, e = tok.encode("abde")
    assert rec.seen[0][0].tolist() == [CLS_ID, a, b, SEP_ID, MASK_ID, d, e, SEP_ID]
    assert len(filled) == 5 and filled.startswith("ab") and filled.endswith("de")
    assert "[" not in filled and len(probs) == 1


def test_blanks_are_never_filled_with_byte_fallback_or_unseen_tokens():
    tok = train_tokenizer("char", "abc abc")
    stray = N_SPECIAL + 0xE4  # <0xE4>: half a character, decodes to "\ufffd"
    unseen = N_SPECIAL + ord("A")  # <0x41>: decodes to "A" but never occurs in training
    assert tok.decode([stray]) == "\ufffd" and tok.decode([unseen]) == "A"
    printable = fillable_ids(tok)
    assert not printable[:N_SPECIAL].any() and not printable[stray] and printable[unseen]
    seen = fillable_ids(tok, torch.tensor(tok.encode("abc abc")))
    assert seen.sum() == 4 and not seen[unseen]  # a, b, c and the space
    for kind, mask in (("masked", "bidirectional"), ("prefix", "prefix"), ("causal", "causal")):
        rec = _Recording(tiny(mask, vocab_size=tok.vocab_size),
                         boost={stray: 50.0, unseen: 40.0})
        filled, probs = fill_blanks(rec, tok, "a_c", kind)
        assert "\ufffd" not in filled and filled == "aAc", (kind, filled)
        filled, probs = fill_blanks(rec, tok, "a_c", kind, allowed=seen)
        assert filled[1] in "abc " and probs[0][0] in ("a", "b", "c", "␣"), (kind, filled)
