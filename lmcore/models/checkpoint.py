"""Save and load a Transformer as a folder: safetensors weights, JSON config, tokenizer JSON.

Layout of a checkpoint folder:
  model.safetensors   the weights (a tied matrix stored once), never pickle
  config.json         {"format": "lmcore-transformer", "version": 1, "config": {...}}
  tokenizer.json      the Hugging Face tokenizer JSON, when one was given
  extra.json          any JSON the caller attached (metrics, corpus fingerprint, ...)
Every file is written to a temporary file in the same folder and renamed over the old one,
so a kill mid-save never leaves a half-written file. Loading never uses pickle/torch.load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model as st_load_model
from safetensors.torch import save_model as st_save_model

from lmcore.data.atomic import remove_stale_temps, write_atomic, write_text_atomic
from lmcore.models.lm import TextTokenizer
from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

FORMAT = "lmcore-transformer"
VERSION = 1
WEIGHTS, CONFIG, TOKENIZER, EXTRA = ("model.safetensors", "config.json", "tokenizer.json",
                                     "extra.json")


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or corrupt; the message says which file."""


class Loaded(NamedTuple):
    """What `load_model` returns: unpack as `model, tokenizer, extra = load_model(d)`."""

    model: Transformer
    tokenizer: Any  # lmcore.data.tokenizers.Tokenizer, or None
    extra: dict

    def lm(self, **kwargs) -> TransformerLM:
        """The model in the LanguageModel contract (with its tokenizer)."""
        return TransformerLM(self.model, self.tokenizer, **kwargs)


def _write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def save_model(path: str | Path, model: Transformer | TransformerLM,
               tokenizer: TextTokenizer | None = None, extra: dict | None = None) -> Path:
    """Write `model` (and `tokenizer`, `extra`) to folder `path`; return the folder."""
    if isinstance(model, TransformerLM):
        tokenizer = tokenizer if tokenizer is not None else model.tokenizer
        model = model.model
    if not isinstance(model, Transformer):
        raise TypeError(f"save_model expects a Transformer, got {type(model).__name__}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict()}
    extra_text = json.dumps(extra, indent=1, ensure_ascii=False) if extra is not None else None
    remove_stale_temps(path)  # what a save killed half-way left behind
    write_atomic(path / WEIGHTS, lambda tmp: st_save_model(model, tmp,
                                                           metadata={"format": FORMAT}))
    if tokenizer is not None:
        _write_text(path / TOKENIZER, tokenizer.to_json())
    if extra_text is not None:
        _write_text(path / EXTRA, extra_text)
    _write_text(path / CONFIG, json.dumps(meta, indent=1))  # last: marks the folder complete
    return path


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{file} is corrupt (not valid JSON: {exc})") from None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Loaded:
    """Rebuild the model (and tokenizer, extra JSON) saved by `save_model` in folder `path`."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint folder at {path}")
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise CheckpointError(f"{path} is not a complete checkpoint: {name} is missing")
    meta = _read_json(path / CONFIG)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{path / CONFIG} is not an lmcore Transformer config")
    version = meta.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path / CONFIG} has a version that is not a whole number: "
                              f"{version!r}")
    if version > VERSION:
        raise CheckpointError(f"checkpoint version {version} is newer than this "
                              f"lmcore reads ({VERSION}): upgrade lmcore")
    try:
        config = TransformerConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path / CONFIG} holds an invalid config: {exc}") from None
    try:
        model = Transformer(config)
    except Exception as exc:  # noqa: BLE001 (e.g. not enough memory for the sizes it names)
        raise CheckpointError(f"cannot build the model {path / CONFIG} describes "
                              f"({type(exc).__name__}: {str(exc)[:300]})") from None
    try:
        missing, unexpected = st_load_model(model, str(path / WEIGHTS), strict=False,
                                            device=str(device))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path / WEIGHTS} is corrupt or does not fit the config: "
                              f"{exc}") from None
    if missing or unexpected:
        raise CheckpointError(f"{path / WEIGHTS} does not fit config.json (missing "
                              f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    model.to(device).eval()
    tokenizer = None
    if (path / TOKENIZER).is_file():
        from lmcore.data.tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.load(path / TOKENIZER)
        except Exception as exc:  # noqa: BLE001 (the tokenizers library raises plain Exception)
            raise CheckpointError(f"{path / TOKENIZER} is corrupt: {exc}") from None
        if tokenizer.vocab_size != config.vocab_size:
            raise CheckpointError(f"tokenizer has {tokenizer.vocab_size} tokens but the model "
                                  f"expects {config.vocab_size}")
    extra = _read_json(path / EXTRA) if (path / EXTRA).is_file() else {}
    return Loaded(model, tokenizer, extra)
