"""General-purpose compressors measured on the same text: gzip -9, bz2 -9, xz -9, zstd -19.

Sizes are measured here, not quoted: each compressor runs on the UTF-8 bytes, its output is
decompressed and both are hashed (SHA-256), so a table can show that the round trip holds
rather than assume it; the size includes each format's own header.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import time
from collections.abc import Callable
from dataclasses import dataclass

COMPRESSORS = ("gzip -9", "bz2 -9", "xz -9", "zstd -19")


def _zstd() -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    import zstandard

    return (lambda b: zstandard.ZstdCompressor(level=19).compress(b),
            lambda b: zstandard.ZstdDecompressor().decompress(b))


def codecs() -> dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]]:
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
    return out


@dataclass(frozen=True)
class Measured:
    """One compressor on one text: size, rates and speed."""

    name: str
    size: int  # compressed bytes, header included
    chars: int
    bytes: int
    seconds: float  # compression time
    decode_seconds: float
    sha_in: str  # SHA-256 (hex) of the input bytes
    sha_out: str  # SHA-256 (hex) of the bytes the decompressor gave back

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


def measure(text: str, names: tuple[str, ...] | None = None) -> list[Measured]:
    """Compress `text` (UTF-8) with each compressor, decompress it back, report sizes and hashes
    of input and output (a failed round trip shows as `round_trip` False, not an exception)."""
    data = text.encode("utf-8")
    sha_in = hashlib.sha256(data).hexdigest()
    available = codecs()
    names = tuple(available) if names is None else names
    out = []
    for name in names:
        if name not in available:
            raise ValueError(f"unknown compressor {name!r}; available: {', '.join(available)}")
        comp, decomp = available[name]
        t0 = time.perf_counter()
        blob = comp(data)
        t1 = time.perf_counter()
        back = decomp(blob)
        t2 = time.perf_counter()
        out.append(Measured(name=name, size=len(blob), chars=len(text), bytes=len(data),
                            seconds=t1 - t0, decode_seconds=t2 - t1, sha_in=sha_in,
                            sha_out=hashlib.sha256(back).hexdigest()))
    return out
