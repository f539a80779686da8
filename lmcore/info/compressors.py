"""General-purpose compressors measured on the same text: gzip -9, bz2 -9, xz -9, zstd -19.

Sizes are measured here, not quoted: each compressor runs on the UTF-8 bytes, its output is
decompressed and compared with the input, and the size includes each format's own header.
"""

from __future__ import annotations

import bz2
import gzip
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
    """Compress `text` (UTF-8) with each compressor, check the round trip, report sizes."""
    data = text.encode("utf-8")
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
        if back != data:
            raise RuntimeError(f"{name} did not round-trip this text")
        out.append(Measured(name=name, size=len(blob), chars=len(text), bytes=len(data),
                            seconds=t1 - t0, decode_seconds=t2 - t1))
    return out
