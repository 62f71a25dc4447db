"""The byte links a DutClient talks over, all behind protocol.SerialLike: a serial port (a board's
UART or a device process's pty), a TCP socket (an emulator's UART), a process's stdin/stdout (a
program on a Linux board, over ssh). Every read waits at most `timeout` seconds.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from typing import Callable

import serial

from unpu.errors import BoardError
from unpu.protocol import SerialLike, require_timeout

READ_TIMEOUT_S = 0.2


def serial_port(path: str, baudrate: int) -> SerialLike:
    """A UART or a pty, opened with pyserial, exclusively: no other program (a second unpu job, a
    terminal left open) can read the device's answers at the same time."""
    try:
        return serial.Serial(path, baudrate=baudrate, timeout=READ_TIMEOUT_S, exclusive=True)
    except serial.SerialException as exc:
        raise BoardError(f"cannot open serial port {path}: {exc}") from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (an emulator may still lose it to a race)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp(port: int, within_s: float, alive: Callable[[], None], what: str) -> SerialLike:
    """A socket to 127.0.0.1:port, retried until `within_s` has passed; `alive` raises if the
    process that should listen there has died."""
    deadline = time.monotonic() + require_timeout(within_s, f"the wait for {what}'s serial port")
    while True:
        alive()
        try:
            return serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=READ_TIMEOUT_S)
        except serial.SerialException as exc:
            if time.monotonic() > deadline:
                raise BoardError(f"{what} did not open its serial port 127.0.0.1:{port} within {within_s:g} s: "
                                 f"{exc}") from None
            time.sleep(0.02)


class PipeLink:
    """A subprocess's stdin/stdout as a SerialLike: reads wait at most `timeout` seconds and return
    what arrived, like pyserial; a closed pipe raises OSError."""

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.timeout: float | None = READ_TIMEOUT_S
        self._fd = proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._buf = bytearray()
        self._eof = False

    def write(self, data: bytes) -> int:
        self.proc.stdin.write(data)
        return len(data)

    def flush(self) -> None:
        self.proc.stdin.flush()

    def reset_input_buffer(self) -> None:
        self._fill(0)
        self._buf.clear()

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        deadline = time.monotonic() + (self.timeout or 0)
        while True:
            at = self._buf.find(expected)
            if at >= 0:
                return self._take(at + len(expected) if size is None else min(at + len(expected), size))
            if size is not None and len(self._buf) >= size:
                return self._take(size)
            remaining = deadline - time.monotonic()
            if self._eof and not self._buf:
                raise OSError("the link closed (the process at the other end ended)")
            if remaining <= 0 or self._eof:
                return self._take(len(self._buf))
            self._fill(remaining)

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def _fill(self, wait_s: float) -> None:
        if self._eof or not select.select([self._fd], [], [], max(wait_s, 0))[0]:
            return
        try:
            chunk = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        if chunk:
            self._buf += chunk
        else:
            self._eof = True

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out
