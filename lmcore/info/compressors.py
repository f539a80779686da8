"""General-purpose compressors measured on the same text: gzip -9, bz2 -9, xz -9, zstd -19, and
the strongest classical anchors, zpaq -m5 (context mixing) and PPMd order 10 (7-Zip).

Sizes are measured here, not quoted: each compressor runs on the UTF-8 bytes, its output is
decompressed and both are hashed (SHA-256), so a table can show that the round trip holds
rather than assume it; the size includes each format's own header.

Equal terms. A language model trained on a training split has read that text before it codes
the held-out part; a compressor has not. `measure(text, prime=train)` gives each compressor the
same advantage: it compresses train + text and counts only the extra bytes,
size(train + text) - size(train) (the round trip is checked on train + text). zpaq and 7-Zip
are external programs (Debian `zpaq`, `p7zip-full`); where one is missing its rows are left out
and `missing()` says why.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import lzma
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COMPRESSORS = ("gzip -9", "bz2 -9", "xz -9", "zstd -19", "zpaq -m5", "PPMd o10 (7z)")
Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]
EXTERNAL = {"zpaq -m5": ("zpaq", "Debian package zpaq"),
            "PPMd o10 (7z)": ("7z", "Debian package p7zip-full")}


def _zstd() -> Codec:
    import zstandard

    return (lambda b: zstandard.ZstdCompressor(level=19).compress(b),
            lambda b: zstandard.ZstdDecompressor().decompress(b))


def _run(args: list[str], cwd: str) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()[-300:]
        raise RuntimeError(f"{args[0]} failed (exit {proc.returncode}): {tail}")


def _archiver(pack: Callable[[str], list[str]], unpack: Callable[[str], list[str]],
              archive: str) -> Codec:
    """(compress, decompress) through an archiver that reads and writes files: the input is
    the file `t` in a private temp folder; the size is the whole archive's."""

    def comp(data: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="lmcore-") as d:
            Path(d, "t").write_bytes(data)
            _run(pack(archive), d)
            return Path(d, archive).read_bytes()

    def decomp(blob: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="lmcore-") as d:
            Path(d, archive).write_bytes(blob)
            _run(unpack(archive), d)
            return Path(d, "out", "t").read_bytes()

    return comp, decomp


def _zpaq() -> Codec:
    return _archiver(lambda a: ["zpaq", "a", a, "t", "-m5"],
                     lambda a: ["zpaq", "x", a, "t", "-to", "out/t"], "a.zpaq")


def _ppmd() -> Codec:
    # order 10, 256 MB model memory: the best PPMd order on the built-in corpus (6, 8, 16 and
    # 32 were measured worse)
    return _archiver(lambda a: ["7z", "a", "-t7z", "-m0=PPMd:o=10:mem=256m", a, "t"],
                     lambda a: ["7z", "x", a, "-oout", "-y"], "a.7z")


def missing() -> dict[str, str]:
    """name -> why it is not measured here (an external program that is not installed)."""
    return {name: f"`{exe}` is not installed ({pkg})" for name, (exe, pkg) in EXTERNAL.items()
            if shutil.which(exe) is None}


def codecs() -> dict[str, Codec]:
    """name -> (compress, decompress) for every compressor available here."""
    out = {
        "gzip -9": (lambda b: gzip.compress(b, compresslevel=9, mtime=0), gzip.decompress),
        "bz2 -9": (lambda b: bz2.compress(b, compresslevel=9), bz2.decompress),
        "xz -9": (lambda b: lzma.compress(b, preset=9), lzma.decompress),
    }
    try:
        out["zstd -19"] = _zstd()
    except ImportError:  # zstandard is optional
        pass
    gone = missing()
    if "zpaq -m5" not in gone:
        out["zpaq -m5"] = _zpaq()
    if "PPMd o10 (7z)" not in gone:
        out["PPMd o10 (7z)"] = _ppmd()
    return out


@dataclass(frozen=True)
class Measured:
    """One compressor on one text: size, rates and speed (primed: given the training text
    first, counting only the extra bytes)."""

    name: str
    size: int  # compressed bytes, header included (primed: the extra bytes)
    chars: int
    bytes: int
    seconds: float  # compression time
    decode_seconds: float
    sha_in: str  # SHA-256 (hex) of the input bytes
    sha_out: str  # SHA-256 (hex) of the bytes the decompressor gave back
    primed: bool = False

    @property
    def round_trip(self) -> bool:
        return self.sha_in == self.sha_out

    @property
    def bits_per_char(self) -> float:
        return 8 * self.size / self.chars if self.chars else float("nan")

    @property
    def bits_per_byte(self) -> float:
        return 8 * self.size / self.bytes if self.bytes else float("nan")

    @property
    def ratio(self) -> float:
        return self.bytes / self.size if self.size else float("nan")

    @property
    def label(self) -> str:
        return f"{self.name} primed" if self.primed else self.name


def measure_one(name: str, codec: Codec, text: str, prime: str | None = None) -> Measured:
    """One compressor on `text`, alone or after `prime` (see the module docstring)."""
    comp, decomp = codec
    data = text.encode("utf-8")
    sha_in = hashlib.sha256(data).hexdigest()
    head = prime.encode("utf-8") if prime else b""
    t0 = time.perf_counter()
    blob = comp(head + data)
    base = len(comp(head)) if head else 0
    t1 = time.perf_counter()
    back = decomp(blob)
    t2 = time.perf_counter()
    tail = back[len(head):] if back[:len(head)] == head else b""
    return Measured(name=name, size=len(blob) - base, chars=len(text), bytes=len(data),
                    seconds=t1 - t0, decode_seconds=t2 - t1, sha_in=sha_in,
                    sha_out=hashlib.sha256(tail).hexdigest(), primed=bool(head))


@functools.cache
def fixed_bytes(name: str) -> int:
    """Bytes `name` writes for a one-character file: its header and framing, paid once per
    file (zpaq -m5 also stores its model description), which on a short text weighs on every
    character."""
    return len(codecs()[name][0](b"a"))


def measure(text: str, names: tuple[str, ...] | None = None,
            prime: str | None = None) -> list[Measured]:
    """Compress `text` (UTF-8) with each compressor, decompress it back, report sizes and hashes
    of input and output (a failed round trip shows as `round_trip` False, not an exception).
    With `prime`, each compressor is measured alone and then primed with it."""
    available = codecs()
    names = tuple(available) if names is None else names
    for name in names:
        if name not in available:
            raise ValueError(f"unknown compressor {name!r}; available: {', '.join(available)}")
    out = [measure_one(name, available[name], text) for name in names]
    if prime:
        out += [measure_one(name, available[name], text, prime) for name in names]
    return out
