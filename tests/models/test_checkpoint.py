"""Checkpoints: save then load gives the same logits; corrupt folders give clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.checkpoint import CheckpointError, load_model, save_model
from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM


def model(vocab: int, **kw) -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=vocab, context=16, n_layer=2, n_head=2,
                                         n_embd=16, **kw))


@pytest.mark.parametrize("kw", [{}, dict(tie_weights=False, norm="rmsnorm",
                                         activation="swiglu", mask="prefix")])
def test_round_trip_identical_logits(tmp_path, kw):
    tok = train_tokenizer("char", "hello world, hello lab")
    m = model(tok.vocab_size, **kw)
    with torch.no_grad():
        m.h[1].attn.c_attn.weight.add_(0.1)  # not the init: the saved weights must be used
    save_model(tmp_path / "ck", m, tok, extra={"steps": 7})
    m2, tok2, extra = load_model(tmp_path / "ck")
    x = torch.tensor([[2] + tok.encode("hello")])
    kwargs = {"prefix_len": torch.tensor([2])} if kw else {}
    assert torch.equal(m.eval()(x, **kwargs), m2(x, **kwargs))
    assert m2.config == m.config and extra == {"steps": 7}
    assert tok2.fingerprint() == tok.fingerprint()
    assert TransformerLM(m, tok).fingerprint() == TransformerLM(m2, tok2).fingerprint()
    if m.config.tie_weights:
        assert m2.lm_head.weight is m2.wte.weight
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "config.json", "extra.json", "model.safetensors", "tokenizer.json"]  # no temp files


def test_save_lm_and_load_lm(tmp_path):
    tok = train_tokenizer("char", "abcabc")
    lm = TransformerLM(model(tok.vocab_size), tok)
    save_model(tmp_path, lm)
    back = load_model(tmp_path).lm()
    assert back.fingerprint() == lm.fingerprint()
    assert back.tokenizer.encode("abc") == tok.encode("abc")


def test_no_pickle_in_the_weights(tmp_path):
    save_model(tmp_path, model(10))
    raw = (tmp_path / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])
    assert header["h.0.attn.c_attn.weight"]["dtype"] == "F32"  # plain tensors, no objects
    assert not (tmp_path / "tokenizer.json").exists()
    assert load_model(tmp_path).tokenizer is None


def test_missing_and_corrupt_folders(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint folder"):
        load_model(tmp_path / "nope")
    d = tmp_path / "ck"
    save_model(d, model(10))
    (d / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(d)
    save_model(d, model(10))
    (d / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(d)
    save_model(d, model(10))
    cfg = json.loads((d / "config.json").read_text())
    cfg["config"]["n_embd"] = 32
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not fit|corrupt"):
        load_model(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_model(d)


@pytest.mark.parametrize("field,value,words", [
    ("n_layer", "2", "n_layer must be a whole number"),
    ("n_layer", 1.5, "n_layer must be a whole number"),
    ("n_head", True, "n_head must be a whole number"),
    ("dropout", "0.1", "dropout must be a finite number"),
    ("residual", "yes", "residual must be true or false"),
    ("activation", 3, "activation must be one of"),
    ("context", 0, "context must be at least 1"),
])
def test_invalid_config_values_become_checkpoint_errors_naming_the_field(tmp_path, field, value,
                                                                         words):
    d = tmp_path / "ck"
    save_model(d, model(10))
    cfg = json.loads((d / "config.json").read_text())
    cfg["config"][field] = value
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=words) as info:
        load_model(d)
    assert "config.json holds an invalid config" in str(info.value)


def test_malformed_config_files_become_checkpoint_errors(tmp_path):
    d = tmp_path / "ck"
    save_model(d, model(10))
    good = json.loads((d / "config.json").read_text())
    for meta, words in [
        ({**good, "config": [1, 2]}, "must be a mapping"),
        ({**good, "config": {k: v for k, v in good["config"].items() if k != "vocab_size"}},
         "vocab_size is missing"),
        ({**good, "config": {**good["config"], "layers": 3}}, "unknown Transformer config keys"),
        ({**good, "version": "1"}, "version that is not a whole number"),
        ({**good, "version": 99}, "newer than this lmcore"),
        ([good], "not an lmcore Transformer config"),
    ]:
        (d / "config.json").write_text(json.dumps(meta))
        with pytest.raises(CheckpointError, match=words):
            load_model(d)


def test_a_model_too_large_to_build_becomes_a_checkpoint_error(tmp_path):
    """A valid config whose sizes cannot be allocated: the failure is a CheckpointError."""
    d = tmp_path / "ck"
    save_model(d, model(10))
    cfg = json.loads((d / "config.json").read_text())
    cfg["config"].update(vocab_size=2**40, n_embd=2**12, n_head=2)  # 16 PiB of embeddings
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="cannot build the model"):
        load_model(d)
