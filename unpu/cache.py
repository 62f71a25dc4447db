"""Content-addressed cache for the pipeline's steps (docs/architecture.md, "Caching").

A step's key is the SHA-256 of its inputs: the config slice it reads, the digests of the files it
reads and the version of the code that makes it. An entry is a directory that appears atomically
(built in a temporary directory, then renamed) under a file lock, so parallel sweep jobs that need
the same artifact build it once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

log = logging.getLogger(__name__)
_DONE = ".complete"


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_digest(*modules: str) -> str:
    """Digest of the source files of the named modules/packages: code changes invalidate entries."""
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"no source for module {name}")
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def key_of(parts: dict[str, Any]) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    path: Path
    key: str
    hit: bool

    def file(self, name: str) -> Path:
        return self.path / name

    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "meta.json").read_text())


class Cache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get_or_make(self, kind: str, parts: dict[str, Any], make: Callable[[Path], dict[str, Any]]) -> Entry:
        """Return the entry for `parts`, calling `make(tmpdir) -> meta` only on a miss."""
        key = key_of({"kind": kind, **parts})
        final = self.root / kind / key[:2] / key
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final) + ".lock", timeout=3600):
            if (final / _DONE).exists():
                log.info("cache hit: %s %s", kind, key[:12])
                return Entry(final, key, True)
            if final.exists():  # a half-written entry from a killed run
                shutil.rmtree(final)
            log.info("cache miss: %s %s", kind, key[:12])
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=final.parent))
            try:
                meta = make(tmp)
                (tmp / "meta.json").write_text(json.dumps({"key_parts": parts, **meta}, indent=2, default=str))
                (tmp / _DONE).touch()
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return Entry(final, key, False)
