"""The artifacts the pipeline hands from stage to stage, below every stage that makes or uses them.

config -> QuantizedModel (model steps) -> Firmware (a board's build) -> measurement (the job) -> record.
A board adapter sees the job only through a BuildContext, and tells the measurement how its timer
becomes latency through a Timebase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable

from unpu.cache import Cache
from unpu.protocol import require_timeout


@dataclass(frozen=True)
class QuantizedModel:
    """A quantized .tflite and what is known about it before any board sees it."""

    name: str                       # the model's id in tags, run names and firmware (zoo name or file stem)
    path: Path
    digest: str                     # SHA-256 of the file
    params: int
    params_source: str              # "keras" (zoo and Keras models) or "tflite graph" (a user's .tflite)
    fidelity: dict[str, float] = field(default_factory=dict)   # quant/* (float vs quantized model)
    cache_hit: bool = False


class FirmwareKind(str, Enum):
    IMAGE = "image"          # something runs: a firmware image, an emulated image, a device process
    ESTIMATE = "estimate"    # nothing runs: the compiler's estimate is all there is


@dataclass
class Firmware:
    """What a board's build produced, with everything known about it before it runs."""

    image: Path                     # ELF / binary / the .tflite a device process loads / the compiled model
    digest: str                     # SHA-256 of what runs (recorded as digest.firmware)
    build_id: str                   # the id the firmware reports in info% (checked against the device)
    kind: FirmwareKind = FirmwareKind.IMAGE
    arena_bytes: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)   # memory/*, estimate/*, compiler figures
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)  # artifact sub-path -> file
    files: dict[str, Path] = field(default_factory=dict)      # the adapter's own files from build to flash


@dataclass(frozen=True)
class BuildContext:
    """What a board adapter may know of the job besides its own YAML."""

    model_id: str                   # C-safe enough for tags; adapters sanitise it for C strings
    post: str                       # on-device post-processing: "softmax" | "none"
    cache: Cache
    timeout_s: float                # per device command
    # float calibration inputs of the job's dataset for the quantized model at a path, for compilers
    # that quantize again themselves
    calibration: Callable[[Path], list] | None = None
    lock_wait_s: float = 900.0      # how long to wait for a physical board another job holds (bench.lock_wait_s)

    def __post_init__(self) -> None:
        timeout_s = require_timeout(self.timeout_s, "the device command timeout (bench.timeout_s)")
        lock_wait_s = require_timeout(self.lock_wait_s, "the board lock wait (bench.lock_wait_s)", zero_ok=True)
        object.__setattr__(self, "timeout_s", timeout_s)   # frozen: the validated floats replace the raw values
        object.__setattr__(self, "lock_wait_s", lock_wait_s)


class Timebase:
    """How the stage timer a device reports becomes latency: by default, ticks at the clock the
    firmware reports (`info%`), never a host constant."""

    counts: str | None = None       # a per-stage count metric this timebase adds, e.g. "instructions"
    method: str = "device timer ticks / the clock the firmware reports"

    def stage_us(self, cycles: int, timer_hz: float, us_at_device_clock: float) -> float:
        return us_at_device_clock

    def window_us(self, lap_us: float) -> float:
        """The span between a window's two m-lap-us marks, as the device reported it."""
        return lap_us

    def count(self, cycles: int, timer_hz: float) -> float:
        raise NotImplementedError


class InstructionTimebase(Timebase):
    """An emulator under `-icount shift=0` runs one instruction per nanosecond of virtual time: its
    timer counts instructions, and latency is that count at `clock_hz`, assuming one instruction per
    cycle (labelled `emulated`, never `measured`). `clock_hz` is not the emulated machine's timer
    clock (the firmware reports that one, and it only turns ticks into instructions): it is the clock
    of the real part the emulated core stands in for, and `clock_basis` says which."""

    counts = "instructions"

    def __init__(self, clock_hz: float, clock_basis: str) -> None:
        self.clock_hz = float(clock_hz)
        self.clock_basis = clock_basis
        self.method = (f"instructions (QEMU -icount shift=0, SysTick ticks x 1e9 / timer Hz) at cpu.clock_hz "
                       f"{int(clock_hz)} Hz, assuming 1 instruction per cycle")

    def tags(self) -> dict[str, str]:
        return {"latency.method": self.method, "latency.clock_hz": str(int(self.clock_hz)),
                "latency.clock_basis": self.clock_basis}

    def count(self, cycles: int, timer_hz: float) -> float:
        return cycles * 1e9 / timer_hz

    def stage_us(self, cycles: int, timer_hz: float, us_at_device_clock: float) -> float:
        return self.count(cycles, timer_hz) / self.clock_hz * 1e6

    def window_us(self, lap_us: float) -> float:
        return lap_us * 1e3 / self.clock_hz * 1e6   # virtual µs: 1,000 instructions each
