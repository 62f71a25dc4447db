"""The board contract's code side: every hook the pipeline calls, and the lifecycle they share.

A board = one YAML in conf/board/ + (at most) one adapter module here + one firmware port. The
pipeline calls, in this order:
  check_environment()      before any work: tools, SDK, device present (BoardError, one line)
  preflight(model)         before any build: does the model fit, are its operators supported
  build(model, workdir)    compile for the board's toolchain, make the firmware (cached) -> Firmware
then, for an IMAGE firmware, `open(...)` (flash, start, link -> a DutClient) and `timebase(...)`
(how the device's timer becomes latency), `device_metrics(...)` after the timed windows; for an
ESTIMATE firmware, `estimate_metrics(...)` instead (nothing runs).

`open` is a template: board lock -> flash() -> device() -> link() -> DutClient.connect(). An
adapter supplies only what differs: its flash steps, the process the device runs in, the link it
speaks over. A board that names a physical device (`device_address()`: board.port) is locked for
the whole of `open`, so two jobs never flash or talk to one board at once.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from filelock import FileLock, Timeout
from hydra.utils import get_class

from unpu.artifacts import BuildContext, Firmware, QuantizedModel, Timebase
from unpu.boards.process import DeviceProcess
from unpu.boards.spec import BoardSpec, ToolSpec, load_spec
from unpu.errors import BoardConfigError, BoardError, ToolError
from unpu.links import serial_port
from unpu.protocol import DutClient, SerialLike, Transcript, require_timeout
from unpu.tools import FLASH_TIMEOUT_S, require_dir, require_tool, run_logged, run_with_retry, tool_from_env

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
PORTS = FIRMWARE / "ports"
PORT_BUILD_FILES = ("Makefile", "CMakeLists.txt")
LOCK_DIR_ENV = "UNPU_LOCK_DIR"

log = logging.getLogger(__name__)


# -- the board lock: one job per physical board ---------------------------------------------------------

def lock_dir() -> Path:
    """Where board locks live: $UNPU_LOCK_DIR, else $XDG_RUNTIME_DIR/unpu/locks, else ~/.cache/unpu/locks."""
    if os.environ.get(LOCK_DIR_ENV):
        return Path(os.environ[LOCK_DIR_ENV])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return (Path(runtime) / "unpu" if runtime else Path.home() / ".cache" / "unpu") / "locks"


def lock_path(address: str) -> Path:
    """The lock file of a device address; a port reached through a symlink (/dev/serial/by-id/...)
    shares the lock of the device node it names."""
    real = os.path.realpath(address) if address.startswith("/") else address
    return lock_dir() / (re.sub(r"[^A-Za-z0-9_.-]+", "_", real).strip("_") + ".lock")


def _holder(sidecar: Path) -> str:
    try:
        return sidecar.read_text().strip() or "unknown"
    except OSError:
        return "unknown (no holder file)"


@contextmanager
def board_lock(address: str, board: str, wait_s: float, run: str = "") -> Iterator[Path]:
    """Hold the lock of the physical device at `address` (a serial port) until the block ends. When
    another job holds it, log one line naming the lock and its holder and wait up to `wait_s`, then
    fail with one line. The holder (pid, board, run, since when) is in the lock's sidecar file."""
    wait_s = require_timeout(wait_s, "the board lock wait (bench.lock_wait_s)", zero_ok=True)
    path = lock_path(address)
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = path.with_suffix(".holder")
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning("waiting up to %g s for board %s on %s: lock %s held by %s", wait_s, board, address, path,
                    _holder(sidecar))
        t0 = time.monotonic()
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise BoardError(f"board {board} on {address} is still in use after {wait_s:g} s (bench.lock_wait_s): "
                             f"lock {path} held by {_holder(sidecar)}") from None
        log.info("board %s on %s is free after %.1f s", board, address, time.monotonic() - t0)
    try:
        sidecar.write_text(f"pid {os.getpid()} board {board} run {run or ' '.join(sys.argv)} "
                           f"since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        log.debug("holding board lock %s", path)
        yield path
    finally:
        sidecar.unlink(missing_ok=True)
        lock.release()


@dataclass(frozen=True)
class FlashStep:
    """One command of a board's flashing sequence."""

    cmd: list[str]
    what: str
    cwd: Path | None = None
    timeout_s: float = FLASH_TIMEOUT_S
    attempts: int = 2              # flashing over USB fails now and then


class Board:
    """Base adapter. `spec` is this board's YAML, typed; `context` is what it may know of the job."""

    Spec: ClassVar[type[BoardSpec]] = BoardSpec
    # Firmware built from unpu's generated C must equal LiteRT's reference bit for bit; a runtime
    # such as TFLM may legitimately differ (FULLY_CONNECTED rounding), so it only reports the gap.
    bit_exact: ClassVar[bool] = False

    def __init__(self, spec: BoardSpec, context: BuildContext) -> None:
        self.spec = spec
        self.context = context
        if spec.firmware_port is not None:
            self.port_dir  # noqa: B018 - fails early, with the path, when the port folder is missing

    # -- facts ---------------------------------------------------------------------------------
    @property
    def source_latency(self) -> str:
        """Where this board's latency comes from: measured | emulated | estimated | simulated."""
        return "measured"

    @property
    def port_dir(self) -> Path:
        """firmware/ports/<firmware_port>, which must hold a build file."""
        if self.spec.firmware_port is None:
            raise BoardError(f"board {self.spec.name} has no firmware port")
        path = PORTS / self.spec.firmware_port
        if not (any((path / name).is_file() for name in PORT_BUILD_FILES) or any(path.glob("*.mk"))):
            raise BoardConfigError(f"board={self.spec.name}: firmware port {path.relative_to(REPO)} does not exist "
                                   f"(board.firmware_port names a folder of firmware/ports/ with a Makefile, a "
                                   f"CMakeLists.txt or a .mk file)")
        return path

    def tool(self, role: str) -> ToolSpec:
        """The toolchain.tools entry `role` of the YAML: its variable, what it is, where to get it."""
        try:
            return self.spec.toolchain.tools[role]
        except KeyError:
            raise BoardConfigError(f"board={self.spec.name}: toolchain.tools has no '{role}' entry") from None

    def tool_dir(self, role: str, marker: str) -> Path:
        """The directory the tool `role`'s variable points at, which must hold `marker` (ToolError
        naming the variable, what it must point at and where to get it)."""
        tool = self.tool(role)
        return require_dir(str(tool.var), f"{tool.what} ({tool.url})", marker)

    def tool_exe(self, role: str, exe: str) -> str:
        """The executable `exe` of the tool `role`: under its variable, else on PATH."""
        tool = self.tool(role)
        how = f"install {tool.what} ({tool.url})"
        return tool_from_env(tool.var, exe, how) if tool.var else require_tool(exe, how)

    def tool_file(self, role: str, executable: bool = False) -> Path | None:
        """The file the tool `role`'s variable names, None when it is unset (ToolError if it is no such file)."""
        tool = self.tool(role)
        value = os.environ.get(tool.var) if tool.var else None
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_file() or (executable and not os.access(path, os.X_OK)):
            kind = "an executable" if executable else "a file"
            raise ToolError(f"{tool.var}={value} is not {kind}: point it at {tool.what} ({tool.url})")
        return path

    def memo(self, kind: str, key: str, make: Callable[[], Any]) -> Any:
        """`make()` once per adapter for (kind, key): a compile that pre-flight and the build both need."""
        done = self.__dict__.setdefault("_memo", {})
        if (kind, key) not in done:
            done[(kind, key)] = make()
        return done[(kind, key)]

    # -- the pipeline's hooks ------------------------------------------------------------------------
    def check_environment(self) -> None:
        """Raise BoardError (one line: what is missing, where to get it) when the tools, SDK or
        device this board needs are absent. Called before any work: nothing is half-written."""

    def preflight(self, model: QuantizedModel) -> None:
        """Raise BoardError before any build when the model cannot run on this board."""
        flash = self.spec.memory.flash_bytes
        size = model.path.stat().st_size
        if flash and size > flash:
            raise BoardError(f"{model.name} needs {size:,} B of flash for its weights; {self.spec.name} has {flash:,} B")

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        raise NotImplementedError

    def timebase(self, firmware: Firmware) -> Timebase:
        return Timebase()

    def device_metrics(self, client: DutClient, firmware: Firmware) -> dict[str, float]:
        """Counters read from the device after the timed windows (e.g. an NPU's PMU)."""
        return {}

    def estimate_metrics(self, firmware: Firmware) -> dict[str, float]:
        """An ESTIMATE firmware's latency metrics (nothing ran)."""
        raise BoardError(f"board {self.spec.name} makes no estimates")

    # -- running: a template --------------------------------------------------------------------------
    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        """Lock the board (a physical one), flash (or deploy), start the device, open its link and
        handshake: a DutClient ready to use. The lock is held until the block ends."""
        with self.lock(workdir):
            self.flash(firmware, workdir)
            with self.device(firmware, workdir) as process:
                link = self.link(firmware, process)
                try:
                    client = DutClient(link, self.context.timeout_s, transcript, check_alive=self.liveness(process))
                    client.connect(attempts=self.connect_attempts)
                    yield client
                finally:
                    link.close()

    def device_address(self) -> str | None:
        """Where the physical device this board flashes and talks to is reached (board.port), or None
        when the device is private to the job: a process unpu starts for it (QEMU, the native
        firmware, the host device process, an FVP) needs no lock."""
        return self.spec.port or None

    def lock(self, workdir: Path) -> AbstractContextManager[Any]:
        """The board lock of a physical device (`board_lock`), nothing for a private one."""
        address = self.device_address()
        if address is None:
            return nullcontext()
        return board_lock(address, self.spec.name, self.context.lock_wait_s, str(workdir))

    @property
    def connect_attempts(self) -> int:
        """name% pings (~0.5 s each) before the device counts as silent: serial.timeout_s's worth
        (a board may still be booting when its port opens)."""
        return max(int(require_timeout(self.spec.serial.timeout_s, "board.serial.timeout_s") * 4), 1)

    def flash(self, firmware: Firmware, workdir: Path) -> None:
        """Put the firmware on the device: the flash steps, logged to device/flash.log."""
        steps = self.flash_steps(firmware, workdir)
        if not steps:
            return
        log = workdir / "flash.log"
        firmware.artifacts["device/flash.log"] = log
        for step in steps:
            if step.attempts > 1:
                run_with_retry(step.cmd, log, step.what, step.timeout_s, cwd=step.cwd, attempts=step.attempts)
            else:
                run_logged(step.cmd, log, step.what, step.timeout_s, cwd=step.cwd)

    def flash_steps(self, firmware: Firmware, workdir: Path) -> list[FlashStep]:
        return []

    def device(self, firmware: Firmware, workdir: Path) -> AbstractContextManager[DeviceProcess | None]:
        """The process the device runs in (emulator, device process, attached debugger), or None for
        a board that runs on its own once flashed."""
        return nullcontext(None)

    def liveness(self, process: DeviceProcess | None) -> Callable[[], None] | None:
        """What tells a dead device from a silent one while the client waits: the device process."""
        return process.check_alive if process else None

    def link(self, firmware: Firmware, process: DeviceProcess | None) -> SerialLike:
        """The byte link to the device: by default the board's serial port (board.port)."""
        return serial_port(self.require_port(), self.spec.serial.baudrate)

    def require_port(self) -> str:
        """board.port, the serial port of a physical board."""
        port = self.spec.port
        if not port:
            raise BoardError(f"board.port is not set: give the serial port of the {self.spec.name} "
                             f"(e.g. board.port=/dev/ttyACM0)")
        return str(port)


def adapter_class(board: Any) -> type[Board] | None:
    """The Board subclass a board config names (imported, not instantiated), None for a planned board."""
    adapter = board.get("adapter") if hasattr(board, "get") else None
    if not adapter:
        return None
    target = adapter.get("_target_")
    try:
        cls = get_class(str(target))
    except Exception as exc:  # noqa: BLE001 - Hydra wraps import errors in several types
        raise BoardConfigError(f"board={board.get('name')}: adapter {target} cannot be imported: "
                               f"{str(exc).splitlines()[0]}") from None
    if not (isinstance(cls, type) and issubclass(cls, Board)):
        raise BoardConfigError(f"board={board.get('name')}: adapter {target} is not a unpu Board")
    return cls


def board_spec(board: Any) -> BoardSpec:
    """The board config checked against its adapter's contract (the base contract for a planned board)."""
    cls = adapter_class(board)
    return load_spec(board, cls.Spec if cls else BoardSpec)


def make_board(board: Any, context: BuildContext) -> Board:
    """The adapter for a board config: its Spec checked, its firmware port found."""
    cls = adapter_class(board)
    if cls is None:
        raise BoardConfigError(f"board={board.get('name')} has no adapter")
    return cls(load_spec(board, cls.Spec), context)
