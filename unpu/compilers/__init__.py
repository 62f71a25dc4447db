"""Model compilers, one module per vendor toolchain: each turns a quantized .tflite into what the
board's runtime loads, and reads back what the compiler reports (memory, estimates, fallbacks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Compiled:
    """One compiler run: the directory it left its files in, the tool's version, whether the cache had it."""

    out_dir: Path
    version: str
    cache_hit: bool = field(default=False, kw_only=True)
