"""The errors every layer may raise: each carries one line the user can act on."""

from __future__ import annotations

import signal


class UnpuError(RuntimeError):
    """Something the user must fix or know, said in one line."""


class BoardError(UnpuError):
    """A board cannot take this job: the model does not fit, an operator is unsupported, the device
    is missing or misbehaves, a tool or SDK it needs is absent."""


class ToolError(BoardError):
    """An external tool or SDK is missing, fails, or prints what unpu cannot use."""


class DeviceCrashed(BoardError):
    """The device (process, emulator or board) died while unpu was talking to it."""


class BoardConfigError(UnpuError):
    """A board YAML breaks the board contract (unknown key, wrong type, missing port folder)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: not an Exception, so no `except Exception` on the way out swallows
    it; every layer closes what it holds and lets it pass."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def reason(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}"
