"""Content-addressed cache for the pipeline's steps (docs/cache.md).

A step's key is the SHA-256 of its inputs: the config slice it reads, the digests of the files it
reads (a dataset by the digest of its bytes, not its path) and the version of the code that makes
it. An entry is a directory that appears atomically (built in a temporary directory, then renamed)
under a file lock, so parallel sweep jobs that need the same artifact build it once.

Every entry records the SHA-256 and size of each of its files in its completion marker; every
cache hit checks them, so a truncated or altered entry is rebuilt (with one warning line), never
used. Temporary directories left by a build whose process died are removed on the next use of the
cache, once their own lock shows that no live build owns them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)
_DONE = ".complete"  # written last into a finished entry: the manifest of its files
_TMP = re.compile(r"^\.(?P<key>[0-9a-f]{64})\.tmp-")
LOCK_TIMEOUT_S = 3600


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


# -- the manifest of an entry: what each of its files was when it was made -------------------------

def manifest(entry: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {"sha256", "bytes"}} of every file under `entry` (a symlink by its target)."""
    files: dict[str, dict[str, Any]] = {}
    for directory, dirs, names in os.walk(entry):
        dirs.sort()
        for name in sorted(names) + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            path = Path(directory, name)
            rel = path.relative_to(entry).as_posix()
            if rel == _DONE:
                continue
            if path.is_symlink():
                files[rel] = {"symlink": os.readlink(path)}
            else:
                files[rel] = {"sha256": file_digest(path), "bytes": path.stat().st_size}
    return files


def entry_problem(entry: Path) -> str | None:
    """What is wrong with a finished entry's files (the first problem found), or None if intact."""
    try:
        recorded = json.loads((entry / _DONE).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no readable manifest of its files (made by an older unpu, or the marker was damaged)"
    for rel, want in sorted(recorded.items()):
        problem = _file_problem(entry / rel, want)
        if problem:
            return f"{rel}: {problem}"
    return None


def _file_problem(path: Path, want: dict[str, Any]) -> str | None:
    if "symlink" in want:
        return None if path.is_symlink() and os.readlink(path) == want["symlink"] else "symlink changed or missing"
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != want["bytes"]:
        return f"{size} bytes, {want['bytes']} when made ({'truncated' if size < want['bytes'] else 'grown'})"
    if file_digest(path) != want["sha256"]:
        return "content differs from its recorded SHA-256"
    return None


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
        """Return the entry for `parts`, calling `make(tmpdir) -> meta` on a miss or a damaged entry."""
        key = key_of({"kind": kind, **parts})
        final = self.root / kind / key[:2] / key
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(_lock_path(final.parent, key), timeout=LOCK_TIMEOUT_S):
            self._remove_stale_temporaries(kind, key)
            if (final / _DONE).exists():
                problem = entry_problem(final)
                if problem is None:
                    log.info("cache hit: %s %s", kind, key[:12])
                    return Entry(final, key, True)
                log.warning("cache entry %s/%s is damaged (%s): rebuilding it", kind, key[:12], problem)
            if final.exists():  # a damaged entry, or a half-written one from an older unpu
                shutil.rmtree(final)
            log.info("cache miss: %s %s", kind, key[:12])
            self._make(final, key, parts, make)
        return Entry(final, key, False)

    @staticmethod
    def _make(final: Path, key: str, parts: dict[str, Any], make: Callable[[Path], dict[str, Any]]) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=final.parent))
        try:
            meta = make(tmp)
            (tmp / "meta.json").write_text(json.dumps({"key_parts": parts, **meta}, indent=2, default=str))
            (tmp / _DONE).write_text(json.dumps({"files": manifest(tmp)}, indent=1, sort_keys=True))
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _remove_stale_temporaries(self, kind: str, key: str) -> None:
        """Temporary directories of builds whose process died: this key's (its lock is held here, so
        no live build owns them) and any other key's whose lock is free right now."""
        for tmp in sorted((self.root / kind).glob("*/.*.tmp-*")):
            match = _TMP.match(tmp.name)
            if match is None or not tmp.is_dir():
                continue
            if match["key"] == key:
                _remove_stale(tmp)
                continue
            try:
                with FileLock(_lock_path(tmp.parent, match["key"]), timeout=0):
                    _remove_stale(tmp)
            except Timeout:  # being built right now
                pass


def _lock_path(parent: Path, key: str) -> str:
    return str(parent / f"{key}.lock")


def _remove_stale(tmp: Path) -> None:
    log.info("removing %s, left by a build that did not finish", tmp)
    shutil.rmtree(tmp, ignore_errors=True)
