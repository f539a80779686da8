"""`lmcore compress|decompress --model DIR FILE`: arithmetic coding with a lab language model.

DIR is a Transformer folder from `lmcore train` (config.json + model.safetensors +
tokenizer.json), or an n-gram model from `lmcore ngram train --tokenizer char -o MODEL.arpa`
(or `bpe`; a `word` model codes only text made of words it has seen, a `whitespace` one has no
tokenizer to code with): the ARPA file itself or a folder holding one, with its tokenizer
beside it (`MODEL.tokenizer.json`, or `tokenizer.json` in the folder). `--adaptive` also lets
the model learn from the file as it is coded (lmcore.info.adaptive); decompress needs the same
flag. `--mix [--primer TRAIN.txt] [--mix-with TRANSFORMER_DIR]` codes with the mixing coder
(lmcore.info.mixing) over the model, its match and word models primed with the training
text, a Transformer on the same tokenizer mixed in; decompress needs the same flags again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lmcore.cli import CLIError, output_path, read_input, read_tokenizer, whole
from lmcore.data.atomic import write_bytes_atomic

if TYPE_CHECKING:
    from lmcore.models.lm import LanguageModel

SUFFIX = ".lmz"


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, helptext in (("compress", "code a UTF-8 text file with a language model"),
                           ("decompress", "restore a file made by `lmcore compress`")):
        p = subparsers.add_parser(name, help=helptext, description=__doc__.splitlines()[0])
        p.add_argument("file", metavar="FILE")
        p.add_argument("--model", metavar="DIR", required=True,
                       help="Transformer checkpoint folder, or n-gram ARPA file/folder")
        p.add_argument("-o", "--output", metavar="OUT",
                       help=f"default: FILE{SUFFIX} (compress) or FILE without {SUFFIX}")
        p.add_argument("--adaptive", action="store_true",
                       help="let the model also learn from the text being coded (PPM-style)")
        p.add_argument("--mix", action="store_true",
                       help="the mixing coder: the model, the adaptive model over it, an online "
                            "PPM, a word model and match models mixed per token by an online "
                            "logistic mixer (lmcore.info.mixing)")
        p.add_argument("--primer", metavar="TEXT",
                       help="with --mix: a UTF-8 text (the model's training text) that the "
                            "match and word models read first; decompress needs the same file")
        p.add_argument("--mix-with", metavar="DIR",
                       help="with --mix: a Transformer folder from `lmcore train` on the same "
                            "tokenizer, mixed in as one more predictor; decompress needs it "
                            "again")
        if name == "compress":
            p.add_argument("--streams", type=whole(1), metavar="N",
                           help="a Transformer coded alone: code N stretches of the text side "
                                "by side (default: one per 512 tokens, at most 64). More "
                                "streams code faster; each starts without context and costs "
                                "a few bits more (at most 1024). decompress reads N from the file")
        p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=run_compress if name == "compress" else run_decompress)


def _ngram(arpa: Path, folder: Path | None) -> LanguageModel:
    from lmcore.cli.ngram import tokenizer_path
    from lmcore.models.arpa import read_arpa

    candidates = [tokenizer_path(arpa)] + ([folder / "tokenizer.json"] if folder else [])
    tok_file = next((c for c in candidates if c.is_file()), None)
    if tok_file is None:
        raise CLIError(f"{arpa} has no tokenizer beside it ({candidates[0].name}); compression "
                       "needs a model trained with `lmcore ngram train --tokenizer char` (or "
                       "`--tokenizer bpe`), which saves its tokenizer beside the model")
    return read_arpa(arpa, tokenizer=read_tokenizer(str(tok_file)))


def load_language_model(path: str) -> LanguageModel:
    """The LanguageModel saved at `path` (Transformer folder, ARPA file, or folder with one)."""
    p = Path(path)
    if p.is_file() and p.suffix == ".arpa":
        return _ngram(p, None)
    if not p.is_dir():
        raise CLIError(f"{path}: no such model folder or .arpa file")
    if (p / "config.json").is_file():
        from lmcore.models.checkpoint import load_model

        loaded = load_model(p)
        if loaded.tokenizer is None:
            raise CLIError(f"{path} holds no tokenizer.json: cannot turn text into tokens")
        return loaded.lm()
    arpas = sorted(p.glob("*.arpa"))
    if len(arpas) == 1:
        return _ngram(arpas[0], p)
    if len(arpas) > 1:
        raise CLIError(f"{path} holds {len(arpas)} .arpa files; name the one to use")
    raise CLIError(f"{path} holds neither a Transformer checkpoint (config.json) nor an "
                   "n-gram model (.arpa)")


def _adaptive(base: LanguageModel, adaptive: bool) -> LanguageModel:
    """`base`, or `base` learning online from the text it codes (`--adaptive`)."""
    if not adaptive:
        return base
    from lmcore.info.adaptive import AdaptiveLM

    return AdaptiveLM(base)


def _mixed(base: LanguageModel, args: argparse.Namespace) -> LanguageModel:
    """`base` inside the mixing coder (`--mix`), primed with `--primer`."""
    from lmcore.info.mixing import mixing_coder

    if args.adaptive:
        raise CLIError("--mix already includes the adaptive model: drop --adaptive")
    primer: list[int] = []
    if args.primer:
        data, name = read_input(args.primer, "--primer")
        try:
            primer = [int(i) for i in base.tokenizer.encode(data.decode("utf-8"))]
        except UnicodeDecodeError as exc:
            raise CLIError(f"--primer {name} is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None
    transformer = None
    if args.mix_with:
        transformer = load_language_model(args.mix_with)
        if not (hasattr(transformer, "model") and hasattr(transformer.model, "config")):
            raise CLIError(f"--mix-with {args.mix_with} is not a Transformer folder (an n-gram "
                           "goes in --model)")
        probe = "The quick brown fox 跳过 the lazy dog. 0123456789\n"
        if (transformer.vocab_size != base.vocab_size
                or transformer.tokenizer.encode(probe) != base.tokenizer.encode(probe)):
            raise CLIError(f"--mix-with {args.mix_with} uses another tokenizer than --model "
                           f"({transformer.vocab_size:,} vs {base.vocab_size:,} tokens): train "
                           "both on the same text with the same tokenizer")
    return mixing_coder([base], primer, transformer=transformer)


def _only_with_mix(args: argparse.Namespace) -> None:
    for flag, value in (("--primer", args.primer), ("--mix-with", args.mix_with)):
        if value:
            raise CLIError(f"{flag} is read by the mixing coder only: add --mix")


def _model(args: argparse.Namespace) -> LanguageModel:
    base = load_language_model(args.model)
    if args.mix:
        return _mixed(base, args)
    _only_with_mix(args)
    return _adaptive(base, args.adaptive)


def _flag_hint(base: LanguageModel, digest: bytes, adaptive: bool) -> str:
    """A hint when the file's digest is that of the same model with the other --adaptive
    setting ('' when it names another model altogether)."""
    from lmcore.info.coding import model_digest

    other = _adaptive(base, not adaptive)
    if model_digest(other, other.tokenizer) != digest:
        return ""
    return (" (it was compressed with --adaptive: add --adaptive to decompress it)"
            if not adaptive else
            " (it was compressed without --adaptive: decompress it without the flag)")


def _output(args: argparse.Namespace, default: Path) -> Path:
    out = output_path(args.output) if args.output is not None else default
    if out.is_dir():
        raise CLIError(f"{out} is a folder; give a file name with -o")
    if out.resolve() == Path(args.file).resolve():
        raise CLIError(f"the output {out} would overwrite the input")
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists; use --force to overwrite it")
    return out


def _progress(args: argparse.Namespace, total: int, unit: str):
    if args.quiet or total == 0:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, file=sys.stderr, leave=False)

    def step(frac: float, _msg: str) -> None:
        bar.update(round(frac * total) - bar.n)

    return step, bar


def run_compress(args: argparse.Namespace) -> int:
    from lmcore.info.coding import encode, is_transformer

    src = Path(args.file)
    data, _ = read_input(args.file)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CLIError(f"{args.file} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                       "convert it first, e.g. with `lmcore corpus`") from None
    out = _output(args, src.with_name(src.name + SUFFIX))
    model = _model(args)
    if args.streams is not None and not is_transformer(model):
        raise CLIError("--streams applies to a Transformer coded alone (not an n-gram, "
                       "--adaptive or --mix, which code one token at a time)")
    step, bar = _progress(args, len(text), "char")
    try:
        enc = encode(model, text, progress=step, streams=args.streams)
    finally:
        if bar is not None:
            bar.close()
    write_bytes_atomic(out, enc.data)
    ideal = enc.ideal_bits / enc.chars if enc.chars else 0.0
    print(f"{args.file}: {enc.chars:,} chars, {enc.bytes_in:,} bytes -> {out}: {enc.size:,} "
          f"bytes ({enc.bits_per_char:.4f} bits/char, {enc.bits_per_byte:.4f} bits/byte; "
          f"model cross-entropy {ideal:.4f} bits/char; {enc.tokens:,} tokens in "
          f"{enc.seconds:.1f} s)")
    return 0


def run_decompress(args: argparse.Namespace) -> int:
    from lmcore.info.coding import CodingError, decompress, read_header

    src = Path(args.file)
    data, _ = read_input(args.file)
    header = read_header(data)
    default = src.with_suffix("") if src.suffix == SUFFIX else src.with_name(src.name + ".out")
    out = _output(args, default)
    base = load_language_model(args.model)
    if args.mix:
        model = _mixed(base, args)
    else:
        _only_with_mix(args)
        model = _adaptive(base, args.adaptive)
    step, bar = _progress(args, header.tokens, "tok")
    start = time.perf_counter()
    try:
        text = decompress(model, data, progress=step)
    except CodingError as exc:
        hint = "" if "another model" not in str(exc) or args.mix else _flag_hint(
            base, header.digest, args.adaptive)
        if "another model" in str(exc) and args.mix:
            hint = (" (a --mix file decodes only with the same model, the same --primer "
                    "file and the same --mix-with Transformer)")
        raise CLIError(f"{exc}{hint}") from None
    finally:
        if bar is not None:
            bar.close()
    write_bytes_atomic(out, text.encode("utf-8"))
    print(f"{args.file} -> {out}: {len(text):,} chars in {time.perf_counter() - start:.1f} s "
          "(checksum verified)")
    return 0
