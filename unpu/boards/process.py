"""Device processes shared by the boards that spawn one (host, native, QEMU): liveness with the
reason a process died, a bounded stop that never leaves an orphan, and waiting for the line a
device announces its link with (`pty /dev/pts/N`)."""

from __future__ import annotations

import select
import signal
import subprocess
import time
from pathlib import Path

from unpu.boards.base import BoardError, DeviceCrashed


def check_alive(proc: subprocess.Popen, stderr_path: Path, what: str = "host device process") -> None:
    """Raise DeviceCrashed (with the exit code or signal and the stderr tail) if `proc` has exited."""
    code = proc.poll()
    if code is None:
        return
    reason = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    tail = stderr_path.read_text(errors="replace").strip().splitlines()[-3:] if stderr_path.exists() else []
    raise DeviceCrashed(f"{what} died ({reason})" + (f": {' | '.join(tail)}" if tail else ""))


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 5 s; waits, so no zombie or orphan remains."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout:
        proc.stdout.close()


def wait_for_line(proc: subprocess.Popen, stderr_path: Path, prefix: str, timeout_s: float,
                  what: str = "host device") -> str:
    """The rest of the first stdout line of `proc` that starts with `prefix` (e.g. "pty ")."""
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline().decode(errors="replace").strip()
            if line.startswith(prefix):
                return line[len(prefix):]
            if not line:  # stdout closed: the process is exiting
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                check_alive(proc, stderr_path, what)
                raise BoardError(f"{what} closed its stdout without announcing '{prefix.strip()}'")
        check_alive(proc, stderr_path, what)
    raise BoardError(f"{what} did not announce '{prefix.strip()}' within {timeout_s:g} s")
