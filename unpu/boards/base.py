"""What every board adapter provides. A board = one YAML in conf/board/ + (at most) one module here.

The pipeline calls, in order: `preflight` (before any build: does the model fit, are its operators
supported), `build` (compile the model for the board's toolchain and make the firmware image,
cached), then `open` (flash/launch and hand back a `DutClient` speaking the DUT protocol).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from unpu.protocol import DutClient, Transcript


class BoardError(RuntimeError):
    """A board-level failure with a one-line explanation (missing tool, model does not fit...)."""


class DeviceCrashed(BoardError):
    """The device (process, emulator or board) died while we were talking to it."""


@dataclass
class QuantizedModel:
    """The pipeline's artifact handed to boards: a quantized .tflite and what is known about it."""

    name: str
    path: Path
    digest: str
    meta: dict[str, Any]


@dataclass
class Firmware:
    """What runs on the device, with everything known about it before it runs."""

    image: Path                    # ELF / binary / (host) the .tflite
    digest: str
    build_id: str
    arena_bytes: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)   # memory/*, estimate/*
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)  # artifact sub-path -> file
    extra: dict[str, Any] = field(default_factory=dict)


class Board:
    """Base adapter. `cfg` is the whole job config; `cfg.board` is this board's YAML."""

    source_latency = "measured"
    # Firmware built from unpu's generated C must equal LiteRT's reference bit for bit; a runtime
    # such as TFLM may legitimately differ (FULLY_CONNECTED rounding), so it only reports the gap.
    bit_exact = False

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.board = cfg.board

    def check_environment(self) -> None:
        """Raise BoardError (one line: what is missing, where to get it) when the tools, SDK or
        device this board needs are absent. Called before any work: nothing is half-written."""

    def preflight(self, model: QuantizedModel) -> None:
        """Raise BoardError before any build when the model cannot run on this board."""
        limits = self.board.memory
        size = model.path.stat().st_size
        if limits.flash_bytes and size > limits.flash_bytes:
            raise BoardError(
                f"{model.name} needs {size} B of flash for its weights; {self.board.name} has {limits.flash_bytes} B"
            )

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        raise NotImplementedError

    def measurement_metrics(self, measurement: Any, metrics: dict[str, float]) -> dict[str, float]:
        """Board-specific metrics derived from a measurement (e.g. instruction counts on an
        emulator); returned entries are added to, or replace, the generic latency metrics."""
        return {}

    def device_metrics(self, client: DutClient, firmware: Firmware) -> dict[str, float]:
        """Extra counters read from the device after the timed windows (e.g. an NPU's PMU)."""
        return {}

    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> AbstractContextManager[DutClient]:
        raise NotImplementedError
