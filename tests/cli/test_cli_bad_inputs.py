"""Keep it found: every CLI command against a table of bad inputs.

Each case must end with exit status 2 and one line on stderr starting `lmcore: error:` (no
traceback, no "internal error"), nothing on stdout, and nothing written: no file created or
changed under the test folder, no run recorded, no model folder made. The inputs are the ones
that found defects by hand (issue 13): a missing file, a folder, an empty file, binary bytes,
an endless file (/dev/zero), negative and NaN numbers, and SQL/glob wildcards as names.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmcore.cli import main
from lmcore.runs.store import RunStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
GOOD_TEXT = "the quick brown fox jumps over the lazy dog.\n" * 40

# The places a command reads a file from, with `{}` where the bad input goes.
FILE_SLOTS = {
    "corpus info": ["corpus", "info", "{}"],
    "tokenize": ["tokenize", "{}"],
    "tokenize -o": ["tokenize", "{}", "-o", "{out}/tok.json"],
    "ngram train": ["ngram", "train", "{}", "-o", "{out}/m.arpa"],
    "ngram train --eval": ["ngram", "train", "{good}", "-o", "{out}/m.arpa", "--eval", "{}"],
    "ngram train --tokenizer-file": ["ngram", "train", "{good}", "--tokenizer", "char",
                                     "--tokenizer-file", "{}", "-o", "{out}/m.arpa"],
    "ngram eval model": ["ngram", "eval", "{}", "{good}"],
    "train": ["train", "--corpus", "{}", "--steps", "1", "--quiet"],
    "objectives": ["objectives", "--corpus", "{}", "--steps", "1", "--quiet"],
    "longtext chunk": ["longtext", "chunk", "{}"],
    "longtext chunk --tokenizer": ["longtext", "chunk", "{good}", "--unit", "tokens",
                                   "--tokenizer", "{}"],
    "longtext score": ["longtext", "score", "{}", "--ngram", "2"],
    "longtext score --model": ["longtext", "score", "{good}", "--model", "{}"],
    "longtext summarize --reference": ["longtext", "summarize", "{good}", "--reference", "{}"],
    "longtext continue": ["longtext", "continue", "{}", "--ngram", "2", "-n", "2"],
    "compress": ["compress", "{}", "--model", "{out}/none", "-o", "{out}/x.lmz"],
    "compress --model": ["compress", "{good}", "--model", "{}", "-o", "{out}/x.lmz"],
    "decompress": ["decompress", "{}", "--model", "{out}/none", "-o", "{out}/x.txt"],
    "generate --model": ["generate", "--model", "{}", "-n", "2"],
    "embed": ["embed", "--corpus", "{}", "--epochs", "1"],
    "channel codes": ["channel", "codes", "--corpus", "{}"],
    "channel decode": ["channel", "decode", "--corpus", "{}"],
    "scaling sizes": ["scaling", "sizes", "--corpus", "{}", "--steps", "1"],
    "sft": ["sft", "--corpus", "{}", "--steps", "1", "--pretrain-steps", "1", "--quiet"],
    "sft --from": ["sft", "--from", "{}", "--steps", "1", "--quiet"],
    "dpo --from": ["dpo", "--from", "{}", "--steps", "1", "--quiet"],
    "attention shapes --model": ["attention", "shapes", "a small sentence", "--model", "{}"],
}

BAD_FILES = ("missing", "folder", "empty", "binary", "endless", "wildcard")

# Numeric flags, with the command they belong to (all refused before any input is read).
NUMBERS = [
    (["train", "--corpus", "{good}"], ["--steps", "--batch-size", "--layers", "--heads",
                                       "--width", "--context", "--warmup", "--eval-every",
                                       "--checkpoint-every", "--vocab-size", "--seed"],
     ["--lr", "--grad-clip", "--dropout"]),
    (["objectives", "--corpus", "{good}"], ["--steps", "--batch-size", "--layers", "--heads",
                                            "--width", "--context", "--eval-tokens",
                                            "--vocab-size", "--seed"], ["--lr", "--rate"]),
    (["tokenize", "{good}"], ["--vocab-size", "--min-frequency"], []),
    (["ngram", "train", "{good}", "-o", "{out}/m.arpa"], ["--order", "--vocab-size"],
     ["--k", "--alpha"]),
    (["generate", "--model", "{out}/none"], ["-n", "--top-k", "--seed"],
     ["--temperature", "--top-p"]),
    (["longtext", "chunk", "{good}"], ["--chars", "--size", "--overlap"], []),
    (["longtext", "score", "{good}", "--ngram", "2"], ["--chars", "--window", "--stride",
                                                        "--ngram"], []),
    (["longtext", "summarize", "{good}"], ["--budget", "--chunk-size", "--fan-in"], []),
    (["longtext", "continue", "{good}", "--ngram", "2"], ["-n", "--window", "--seed"],
     ["--temperature"]),
    (["runs", "list"], ["--limit"], []),
    (["embed", "--corpus", "{good}"], ["--k", "--dim", "--window", "--epochs", "--chars",
                                       "--seed"], []),
    (["channel", "capacity"], ["--bits", "--seed"], []),
    (["channel", "codes", "--corpus", "{good}"], ["--chars", "--seed"], ["--p"]),
    (["channel", "decode", "--corpus", "{good}"], ["--chars", "--beam", "--seed"],
     ["--error-rate"]),
    (["scaling", "sizes", "--corpus", "{good}"], ["--steps", "--context", "--batch-size",
                                                  "--eval-tokens", "--bootstrap", "--seed"],
     ["--lr"]),
    (["sft", "--corpus", "{good}"], ["--steps", "--batch-size", "--seed", "--eval-every",
                                     "--pretrain-steps"], ["--lr"]),
    (["dpo", "--from", "{out}/none"], ["--steps", "--batch-size", "--seed"],
     ["--lr", "--beta", "--nll-weight"]),
    (["emergence", "addition"], ["--digits", "--steps", "--eval-every", "--seed"], ["--lr"]),
    (["emergence", "induction"], ["--steps", "--layers", "--width", "--heads"], ["--lr"]),
    (["emergence", "fewshot"], ["--steps", "--layers", "--width"], ["--lr"]),
    (["emergence", "cot"], ["--steps", "--layers", "--width"], ["--lr"]),
    (["attention", "io"], ["--d"], []),
]
# Commands that check their numbers in the library, with messages of their own words.
OWN_WORDS = {"sft", "dpo", "emergence"}
NUMBER_CASES = [(cmd, flag, value) for cmd, ints, floats in NUMBERS
                for flag, values in [(f, ("-1", "nan", "1e999")) for f in ints]
                + [(f, ("-1", "nan", "inf")) for f in floats]
                for value in values]
# Zero is nonsense too where a count or a size is meant (the issue's --window 0, --chars 0).
ZERO_CASES = [(["longtext", "score", "{good}", "--ngram", "2"], "--window"),
              (["longtext", "score", "{good}", "--ngram", "2"], "--stride"),
              (["longtext", "chunk", "{good}"], "--chars"),
              (["longtext", "chunk", "{good}"], "--size"),
              (["train", "--corpus", "{good}"], "--vocab-size"),
              (["train", "--corpus", "{good}"], "--steps"),
              (["generate", "--model", "{out}/none"], "-n")]

# Names that are patterns somewhere (SQL LIKE, glob): they must name nothing.
WILDCARD_IDS = ["_", "%", "*", "?", "[0-9]*", ""]
RUN_ID_COMMANDS = [["runs", "show", "{}"], ["runs", "delete", "{}", "--yes"],
                   ["runs", "export", "{}"], ["runs", "compare", "{}"],
                   ["generate", "--run", "{}", "-n", "2"]]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A folder holding one good text file and an output folder, with a small upload limit
    (so /dev/zero is refused after 1 MB) and a run store holding one finished run."""
    monkeypatch.setenv("LMCORE_UPLOAD_MB", "1")
    monkeypatch.delenv("LMCORE_DEBUG", raising=False)
    root = tmp_path / "work"
    (root / "out").mkdir(parents=True)
    (root / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "scan.png").write_bytes(PNG)
    (root / "folder").mkdir()
    store = RunStore()
    rid = store.create("kept", {})
    store.finish(rid, "done", {})
    return root


def _bad(root: Path, kind: str) -> str:
    return {"missing": str(root / "missing.txt"), "folder": str(root / "folder"),
            "empty": str(root / "empty.txt"), "binary": str(root / "scan.png"),
            "endless": "/dev/zero", "wildcard": str(root / "*.txt")}[kind]


def _argv(template: list[str], root: Path, value: str) -> list[str]:
    return [a.replace("{good}", str(root / "good.txt")).replace("{out}", str(root / "out"))
            .replace("{}", value) for a in template]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def _runs() -> list[str] | None:
    try:
        return [r.id for r in RunStore().list()]
    except ValueError:  # LMCORE_HOME is not a usable folder: no run can have been recorded
        return None


def _refused(argv: list[str], root: Path, capsys) -> str:
    """Run `lmcore argv`; check exit 2, one line, nothing written; return the line."""
    before = _tree(root)
    runs_before = _runs()
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code} for {argv}: {err}"
    assert err.startswith("lmcore: error: ") and err.count("\n") == 1, repr(err)
    assert "Traceback" not in err and "internal error" not in err
    assert out == "", out
    assert _tree(root) == before, f"files changed by {argv}"
    assert _runs() == runs_before, f"a run was recorded by {argv}"
    home_models = Path(os.environ["LMCORE_HOME"]) / "models"
    assert not home_models.exists() or not any(home_models.iterdir())
    return err


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize("slot", sorted(FILE_SLOTS))
def test_bad_files(slot, kind, place, capsys):
    _refused(_argv(FILE_SLOTS[slot], place, _bad(place, kind)), place, capsys)


@pytest.mark.parametrize(("command", "flag", "value"), NUMBER_CASES,
                         ids=[f"{' '.join(c[:2])} {f} {v}" for c, f, v in NUMBER_CASES])
def test_bad_numbers(command, flag, value, place, capsys):
    err = _refused(_argv(command, place, "") + [flag, value], place, capsys)
    assert "unrecognized" not in err
    assert flag in err or command[0] in OWN_WORDS  # the message names the flag


@pytest.mark.parametrize(("command", "flag"), ZERO_CASES,
                         ids=[f"{' '.join(c[:2])} {f}" for c, f in ZERO_CASES])
def test_zero_where_a_count_is_meant(command, flag, place, capsys):
    err = _refused(_argv(command, place, "") + [flag, "0"], place, capsys)
    assert flag in err and "at least 1" in err


@pytest.mark.parametrize("run_id", WILDCARD_IDS)
@pytest.mark.parametrize("command", RUN_ID_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_wildcard_run_ids_name_nothing(command, run_id, place, capsys):
    err = _refused(_argv(command, place, run_id), place, capsys)
    assert "no run" in err or "give a run id" in err


@pytest.mark.parametrize("argv", [
    ["tokenize", "{good}", "-o", "{out}"],  # -o at an existing folder
    ["tokenize", "{good}", "--compare", "char,byte", "-o", "{good}"],  # a folder that's a file
    ["ngram", "train", "{good}", "-o", "{out}"],
    ["compress", "{good}", "--model", "{out}/none", "-o", "{out}"],
    ["decompress", "{good}", "--model", "{out}/none", "-o", "{out}", "--force"],
    ["runs", "export", "--all", "-o", "{out}"],
    ["objectives", "--corpus", "{good}", "--csv", "{out}"],
    ["scaling", "sizes", "--corpus", "{good}", "--csv", "{out}"],
    ["emergence", "addition", "--csv", "{out}"],
    ["emergence", "induction", "--csv", "{out}/no/such/x.csv"],
    ["train", "--corpus", "{good}", "--out", "{good}", "--steps", "1"],
    ["train", "--corpus", "{good}", "--log-json", "{out}", "--steps", "1"],
    ["ngram", "train", "{good}", "-o", "{out}/no/such/m.arpa"],
    ["tokenize", "{good}", "-o", ""],
], ids=lambda a: " ".join(a[:1] + [x for x in a if x.startswith("-")][:2]))
def test_outputs_that_cannot_be_written(argv, place, capsys):
    _refused(_argv(argv, place, ""), place, capsys)


def test_lmcore_home_at_a_file(place, capsys, monkeypatch):
    home = place / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("LMCORE_HOME", str(home))
    for argv in (["runs", "list"], ["train", "--corpus", "{good}", "--steps", "1", "--quiet",
                                    "--layers", "1", "--width", "8", "--heads", "1",
                                    "--context", "8"]):
        assert "LMCORE_HOME" in _refused(_argv(argv, place, ""), place, capsys)


def test_a_damaged_training_state_is_refused_on_resume(place, capsys):
    out = place / "out" / "model"
    out.mkdir()
    (out / "train_state.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    err = _refused(_argv(["train", "--corpus", "{good}", "--steps", "2", "--out", str(out),
                          "--resume", "--layers", "1", "--width", "8", "--heads", "1",
                          "--context", "8", "--quiet"], place, ""), place, capsys)
    assert "damaged" in err
