"""The board contract: what a board YAML (conf/board/<name>.yaml) may say, with types.

`BoardSpec` holds what every board has; an adapter class extends it with its own keys (its `Spec`),
so adding a board never touches this file. `load_spec` checks a composed board config against its
adapter's Spec: an unknown key, a wrong type or a missing value is one line (BoardConfigError), and
what the adapter receives is a typed object, not a dict. Defaults live in the YAMLs (conf/board/
and its family bases in conf/board/family/), not in code.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, dataclass_transform

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from unpu.errors import BoardConfigError

STAGES = ("init", "input", "inference", "output", "post")


@dataclass_transform()
class Spec:
    """A part of the board contract. Every subclass is a dataclass in which a key without a default
    is mandatory (the YAML must give it) unless its type is itself a Spec, whose own defaults apply."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls)
        for name in cls.__dict__.get("__annotations__", {}):
            if name not in cls.__dict__:
                kind = hints[name]
                nested = isinstance(kind, type) and issubclass(kind, Spec)
                setattr(cls, name, field(default_factory=kind) if nested else MISSING)
        dataclass(cls)


class Support(str, Enum):
    ci = "ci"                # runs end to end on every CI run
    estimate = "estimate"    # the compiler runs here; with no board attached the result is its estimate
    hardware = "hardware"    # the adapter runs where the vendor SDK and the board are
    planned = "planned"      # the YAML (public specs, with sources) exists, the adapter does not yet


class AdapterSpec(Spec):
    _target_: str


class CpuSpec(Spec):
    core: str
    clock_hz: Optional[float] = None      # null: the device reports its own timer clock (info%)
    clock_basis: Optional[str] = None     # where clock_hz comes from, in words (required where it makes latency)
    cores: int = 1
    fpu: bool
    simd: Optional[str] = None            # null (none) | dsp | helium | pulp | rvv | xtensa-pie
    kernels: Optional[str] = None         # firmware/kernels/<this>; null: the folder named by simd, else ref
    peak_ops_s: Optional[float] = None


class EmulatedCpuSpec(CpuSpec):
    """The CPU of a board with no cycle model (an emulator): latency is its instruction count at
    `clock_hz`, so the YAML must give that clock and say why it is that number (docs/emulated.md)."""

    clock_hz: float                       # the clock instructions are turned into µs at
    clock_basis: str                      # e.g. "the Cortex-M55 of board=hxwe2 (400 MHz, its YAML)"


class NpuSpec(Spec):
    name: str
    clock_hz: Optional[float] = None
    macs_per_cycle: Optional[int] = None
    peak_ops_s: Optional[float] = None    # null: 2 x macs_per_cycle x clock_hz when both are known


class MemorySpec(Spec):
    sram_bytes: Optional[int] = None
    flash_bytes: Optional[int] = None
    npu_weight_bytes: Optional[int] = None
    npu_data_bytes: Optional[int] = None


class ToolSpec(Spec):
    """A vendor tool or SDK a board needs: how unpu finds it, what it is, where to get it."""

    var: Optional[str] = None     # the environment variable that points at it (null: found on PATH)
    what: str                     # e.g. "the Analog Devices MSDK"
    url: str                      # where to get it


class ToolchainSpec(Spec):
    compiler: str                                         # recorded as the `compiler` tag
    tools: Dict[str, ToolSpec] = field(default_factory=dict)


class SerialSpec(Spec):
    baudrate: int = 115200
    timeout_s: float = 10.0   # how long a real board may take to answer after its port opens


class StagePowerSpec(Spec):
    init: Optional[float] = None
    input: Optional[float] = None
    inference: Optional[float] = None
    output: Optional[float] = None
    post: Optional[float] = None


class PowerSpec(Spec):
    """The board's power model, each figure with its source in a YAML comment (docs/energy.md)."""

    supply_v: Optional[float] = None
    idle_mw: Optional[float] = None
    active_mw: StagePowerSpec
    noise_mw: Optional[float] = None
    basis: str                # where the figures come from, in words (shown by `unpu boards`)


class PinPair(Spec):
    """GPIOs of the power-meter contract (docs/protocol.md, "Pins"), each as its port names it (a GPIO
    number, a PORT_PIN name, a [port, pin] pair, a pad description)."""

    timestamp: Optional[Any] = None
    stage: Optional[Any] = None


class BoardSpec(Spec):
    name: str
    title: str
    vendor: Optional[str] = None
    support: Support
    adapter: Optional[AdapterSpec] = None
    missing: Optional[str] = None         # planned boards: what is missing before one can run
    cpu: CpuSpec
    npu: Optional[NpuSpec] = None
    memory: MemorySpec
    toolchain: ToolchainSpec
    runtime: str                          # recorded as the `runtime` tag
    firmware_port: Optional[str] = None   # firmware/ports/<this>; null: no C firmware (the host board)
    flash_tool: Optional[str] = None      # recorded as the `flash.tool` tag
    port: Optional[str] = None            # a physical board's serial port, e.g. /dev/ttyACM0
    serial: SerialSpec
    pins: PinPair
    power: PowerSpec
    sources: List[str] = field(default_factory=list)

    def peak_ops(self) -> tuple[float | None, str]:
        return peak_ops(_plain(self.npu), _plain(self.cpu))


def _plain(node: Any) -> Mapping[str, Any] | None:
    if node is None:
        return None
    return {k: getattr(node, k) for k in node.__dataclass_fields__}


def peak_ops(npu: Mapping[str, Any] | None, cpu: Mapping[str, Any] | None) -> tuple[float | None, str]:
    """A board's peak ops/s and where it comes from: the NPU's from its YAML (or 2 x MAC/cycle x clock),
    else the CPU's if the YAML gives one. Plain mappings, so a run's recorded config works too."""
    if npu and npu.get("peak_ops_s"):
        return float(npu["peak_ops_s"]), f"{npu['name']} peak_ops_s from the board YAML"
    if npu and npu.get("macs_per_cycle") and npu.get("clock_hz"):
        return (2.0 * float(npu["macs_per_cycle"]) * float(npu["clock_hz"]),
                f"{npu['name']}: 2 x macs_per_cycle x clock_hz")
    if cpu and cpu.get("peak_ops_s"):
        return float(cpu["peak_ops_s"]), f"{cpu['core']} peak_ops_s from the board YAML"
    return None, ""


def load_spec(board: DictConfig | Mapping[str, Any], schema: type[BoardSpec] = BoardSpec) -> BoardSpec:
    """The board config as a typed `schema` object; BoardConfigError (one line) if it breaks the contract."""
    data = OmegaConf.to_container(board, resolve=True) if OmegaConf.is_config(board) else dict(board)
    name = data.get("name", "?")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), data))
    except OmegaConfBaseException as exc:
        raise BoardConfigError(f"board={name}: {describe(exc, schema)}") from None


def describe(exc: OmegaConfBaseException, schema: type) -> str:
    """OmegaConf's several-line error as one line that names the key."""
    lines = str(exc).splitlines()
    key = next((ln.split(":", 1)[1].strip() for ln in lines if ln.strip().startswith("full_key:")), "")
    first = lines[0] if lines else type(exc).__name__
    unknown = re.match(r"Key '([^']+)' not in '(\w+)'", first)
    if unknown:
        return f"unknown key board.{key or unknown.group(1)} (not in the {schema.__name__} contract)"
    if "missing mandatory value" in first:
        return f"board.{key} is missing (the {schema.__name__} contract requires it)"
    return f"board.{key}: {first}" if key else first
