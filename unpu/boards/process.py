"""Every process a board runs a device in (the host device process, native firmware, QEMU, an FVP,
a program over ssh, a debugger that stays attached): one helper.

The process runs in its own process group and is killed when unpu dies (PR_SET_PDEATHSIG), so no
emulator outlives a run; `stop` ends the whole group on every exit path. Its output goes to a log
that starts with its command line; when it dies, the reason (signal, exit code, the firmware fault
an exit code stands for) and the log's last lines say why.
"""

from __future__ import annotations

import ctypes
import os
import re
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

from unpu.errors import BoardError, DeviceCrashed
from unpu.protocol import require_timeout

STOP_TIMEOUT_S = 5
TAIL_LINES = 3


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class DeviceProcess:
    """A device process. `stdout="pipe"` keeps its stdout for announcements (a pty path, a port) or
    as the link itself; `stdin="pipe"` makes its stdin writable (a link over the process's stdio)."""

    def __init__(self, argv: list[str], log_path: Path, what: str, *, stdout: str = "log", stdin: str = "null",
                 cwd: Path | None = None, faults: dict[int, str] | None = None) -> None:
        self.what, self.log_path, self.faults = what, log_path, faults or {}
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    argv, cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent,
                    stdin=subprocess.PIPE if stdin == "pipe" else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if stdout == "pipe" else log, stderr=log)
            except OSError as exc:
                raise BoardError(f"{what} could not start: {exc}") from None
        self._drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- liveness ------------------------------------------------------------------------------
    def check_alive(self) -> None:
        """DeviceCrashed (why, and the log's tail) if the process has exited."""
        code = self.proc.poll()
        if code is None:
            return
        tail = self.tail()
        raise DeviceCrashed(f"{self.what} died ({self._reason(code)})" + (f": {' | '.join(tail)}" if tail else ""))

    def _reason(self, code: int) -> str:
        if code < 0:
            return f"signal {signal.Signals(-code).name}"
        if code in self.faults:
            return f"firmware {self.faults[code]}, exit code {code}"
        return f"exit code {code}"

    def tail(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").strip().splitlines()[1:][-TAIL_LINES:]

    def log_contains(self, text: str) -> bool:
        return self.log_path.exists() and text in self.log_path.read_text(errors="replace")

    # -- what the process announces on its stdout ------------------------------------------------
    def read_line(self, prefix: str, within_s: float) -> str:
        """The rest of the first stdout line that starts with `prefix` (e.g. "pty ")."""
        deadline = time.monotonic() + require_timeout(within_s, f"the wait for {self.what}'s '{prefix.strip()}'")
        stdout = self.proc.stdout
        assert stdout is not None, "read_line needs stdout='pipe'"
        while time.monotonic() < deadline:
            if select.select([stdout], [], [], 0.5)[0]:
                line = stdout.readline().decode(errors="replace").strip()
                if line.startswith(prefix):
                    return line[len(prefix):]
                if not line:  # stdout closed: the process is exiting
                    self._wait_exit()
                    self.check_alive()
                    raise BoardError(f"{self.what} closed its stdout without announcing '{prefix.strip()}'")
            self.check_alive()
        raise BoardError(f"{self.what} did not announce '{prefix.strip()}' within {within_s:g} s")

    def watch_output(self, pattern: re.Pattern[str], within_s: float) -> re.Match[str]:
        """Copy stdout into the log until `pattern` matches, then keep copying in the background so a
        full pipe never stalls the process. Reads the descriptor itself: a buffered reader would hide
        lines from select."""
        assert self.proc.stdout is not None, "watch_output needs stdout='pipe'"
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + require_timeout(within_s, f"the wait for {self.what}'s output")
        pending = b""
        with open(self.log_path, "ab") as log:
            while time.monotonic() < deadline:
                if select.select([fd], [], [], 0.5)[0]:
                    chunk = os.read(fd, 4096)
                    log.write(chunk)
                    log.flush()
                    pending += chunk
                    match = pattern.search(pending.decode(errors="replace"))
                    if match:
                        self._drain = threading.Thread(target=self._copy_stdout, daemon=True)
                        self._drain.start()
                        return match
                    pending = pending[pending.rfind(b"\n") + 1:]
                    if not chunk:
                        self._wait_exit()
                self.check_alive()
        raise BoardError(f"{self.what} did not print {pattern.pattern!r} within {within_s:g} s (see its log)")

    def _copy_stdout(self) -> None:
        fd = self.proc.stdout.fileno()
        with open(self.log_path, "ab") as log:
            while True:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                log.write(chunk)
                log.flush()

    def _wait_exit(self) -> None:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    # -- the end -----------------------------------------------------------------------------------
    def wait(self, timeout_s: float) -> int | None:
        """The exit code if the process ends within `timeout_s`, else None (it still runs)."""
        try:
            return self.proc.wait(timeout=require_timeout(timeout_s, f"the wait for {self.what} to exit"))
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it does not go; no zombie, no orphan."""
        if self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                if self.wait(STOP_TIMEOUT_S) is not None:
                    break
        self.wait(STOP_TIMEOUT_S)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> "DeviceProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
