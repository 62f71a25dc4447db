"""Arm Vela: compile a quantized .tflite for an Ethos-U NPU and read what Vela estimates.

Vela writes cycles and time only to `<out>/<network>_summary_<system_config>.csv`; the per-layer
CSV (`--verbose-performance`) says, per lowered operator, whether it runs on the NPU or the CPU.
unpu compiles twice when the board's NPU clock differs from the clock of Vela's system config:
once with a system config that is Vela's own with `core_clock` set to the board's clock (the
estimate unpu reports, memory bandwidths scale with it as Vela models them), once as Vela ships
it (recorded beside it, so the gap is visible). Each compile has its own output directory, as the
summary file name omits the accelerator (docs/tool-facts.md).
"""

from __future__ import annotations

import configparser
import csv
import importlib.util
import logging
import re
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from unpu.cache import source_digest

log = logging.getLogger(__name__)

VELA_TIMEOUT_S = 600
KIB = 1024
ACCELERATORS = ("ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256",
                "ethos-u65-512", "ethos-u85-128", "ethos-u85-256", "ethos-u85-512", "ethos-u85-1024",
                "ethos-u85-2048")
# Vela's own defaults when no system config / memory mode is named (docs/tool-facts.md).
DEFAULT_SYSTEM = {"ethos-u55": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
                  "ethos-u65": ("Ethos_U65_Client_Server", "Dedicated_Sram_384KB"),
                  "ethos-u85": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB")}


class VelaError(RuntimeError):
    """Vela refused the model or its options; the message is Vela's own last error line."""


@dataclass(frozen=True)
class VelaOptions:
    accelerator: str
    system_config: str | None = None      # None: Vela's default for the accelerator family
    memory_mode: str | None = None
    optimise: str = "Performance"
    config_files: tuple[str, ...] = ()    # extra vela.ini files defining the two above
    npu_clock_hz: float | None = None     # the board's real NPU clock; None keeps the system config's

    def __post_init__(self) -> None:
        if self.accelerator not in ACCELERATORS:
            raise VelaError(f"unknown Ethos-U accelerator config {self.accelerator!r}; Vela 5.2 knows "
                            f"{', '.join(ACCELERATORS)}")
        if self.optimise not in ("Performance", "Size"):
            raise VelaError(f"vela optimise must be Performance or Size, got {self.optimise!r}")

    @property
    def family(self) -> str:
        return self.accelerator.rsplit("-", 1)[0]

    @property
    def system(self) -> str:
        return self.system_config or DEFAULT_SYSTEM[self.family][0]

    @property
    def memory(self) -> str:
        return self.memory_mode or DEFAULT_SYSTEM[self.family][1]

    def key(self) -> dict[str, Any]:
        files = {p: Path(p).read_text() for p in self.config_files}
        return {"accelerator": self.accelerator, "system": self.system, "memory": self.memory,
                "optimise": self.optimise, "config_files": files, "npu_clock_hz": self.npu_clock_hz}


@dataclass
class VelaResult:
    """One Vela compile: its files and the numbers unpu records."""

    out_dir: Path
    optimised: Path
    summary_csv: Path
    per_layer_csv: Path
    summary: dict[str, str]
    layers: list[dict[str, str]]
    accelerator: str
    system_config: str
    npu_operators: int
    cpu_operators: int
    cpu_ops: list[str] = field(default_factory=list)   # original TFLite operators left to the CPU
    default: dict[str, float] | None = None             # the same model under Vela's own clock
    cache_hit: bool = False

    @property
    def cycles(self) -> int:
        return int(float(self.summary["cycles_total"]))

    @property
    def clock_hz(self) -> float:
        return float(self.summary["core_clock"])

    @property
    def latency_us(self) -> float:
        return self.cycles / self.clock_hz * 1e6

    @property
    def sram_bytes(self) -> int:
        return round(float(self.summary["sram_memory_used"]) * KIB)

    @property
    def flash_bytes(self) -> int:
        """Weights and command stream in on- or off-chip flash."""
        keys = ("off_chip_flash_memory_used", "on_chip_flash_memory_used")
        return round(sum(float(self.summary.get(k) or 0) for k in keys) * KIB)

    @property
    def dram_bytes(self) -> int:
        return round(float(self.summary.get("dram_memory_used") or 0) * KIB)

    def metrics(self) -> dict[str, float]:
        out = {"estimate/cycles": float(self.cycles), "estimate/latency_us": self.latency_us,
               "estimate/npu_cycles": float(self.summary["cycles_npu"]),
               "estimate/clock_hz": self.clock_hz,
               "vela/sram_bytes": float(self.sram_bytes), "vela/flash_bytes": float(self.flash_bytes),
               "vela/dram_bytes": float(self.dram_bytes),
               "memory/npu_weights": float(self.summary["total_npu_encoded_weights"]),
               "vela/npu_operators": float(self.npu_operators), "vela/cpu_operators": float(self.cpu_operators),
               "vela/passes": float(self.summary["passes_after_fusing"]),
               "vela/nn_macs": float(self.summary["nn_macs"])}
        if self.default:
            out.update({f"estimate/vela_default_{k}": v for k, v in self.default.items()})
        return out

    def tags(self) -> dict[str, str]:
        return {"vela.accelerator": self.accelerator, "vela.system_config": self.system_config,
                "vela.memory_mode": self.summary["memory_mode"],
                "vela.cpu_fallback": ",".join(self.cpu_ops) or "none"}


def vela_version() -> str:
    return version("ethos-u-vela")


def vela_command(model: Path, options: VelaOptions, out_dir: Path, extra_config: Path | None,
                 system: str) -> list[str]:
    """The Vela command line (run with this interpreter, so the pinned Vela is the one used)."""
    cmd = [sys.executable, "-m", "ethosu.vela", str(model), "--accelerator-config", options.accelerator,
           "--output-dir", str(out_dir), "--optimise", options.optimise, "--verbose-performance",
           "--show-cpu-operations", "--system-config", system, "--memory-mode", options.memory,
           "--config", "Arm/vela.ini"]
    for path in options.config_files:
        cmd += ["--config", str(path)]
    if extra_config is not None:
        cmd += ["--config", str(extra_config)]
    return cmd


def _system_section(options: VelaOptions, name: str) -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.optionxform = str  # Vela's keys are case sensitive
    parser.read([_vela_ini(), *options.config_files])
    section = f"System_Config.{name}"
    if not parser.has_section(section):
        raise VelaError(f"Vela system config {name!r} is in neither Vela's Arm/vela.ini nor "
                        f"{', '.join(options.config_files) or 'any vela.config file'}")
    return dict(parser[section])


def _vela_ini() -> str:
    spec = importlib.util.find_spec("ethosu.vela")  # `ethosu` itself is a namespace package
    return str(Path(spec.origin).parent.parent / "config_files" / "Arm" / "vela.ini")


def board_clock_config(options: VelaOptions, out: Path) -> tuple[Path, str] | None:
    """A vela.ini whose system config is the chosen one at the board's NPU clock (None if equal)."""
    if options.npu_clock_hz is None:
        return None
    section = _system_section(options, options.system)
    if float(section["core_clock"]) == float(options.npu_clock_hz):
        return None
    # Keep Vela's name as the prefix: Vela 5.2's C++ core (regor) reads the accelerator family from
    # it, and the same parameters under a name not starting with "Ethos_U55" give other cycle
    # counts (e.g. MobileNet on U55-64: 387,143 instead of 467,199; flash-bound nets half).
    name = f"{options.system}_at_{int(options.npu_clock_hz)}Hz_unpu"
    section["core_clock"] = f"{float(options.npu_clock_hz):g}"
    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser[f"System_Config.{name}"] = section
    path = out / "unpu_vela.ini"
    with open(path, "w") as f:
        f.write("; written by unpu: Vela's system config with the board's NPU clock\n")
        parser.write(f)
    return path, name


def run_vela(model: Path, options: VelaOptions, out_dir: Path, extra_config: Path | None = None,
             system: str | None = None) -> tuple[VelaResult, str]:
    """Run Vela once into out_dir; return the parsed result and Vela's console output."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = vela_command(model, options, out_dir, extra_config, system or options.system)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=VELA_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise VelaError(f"Vela did not finish within {VELA_TIMEOUT_S} s on {model.name}") from None
    console = proc.stdout + proc.stderr
    (out_dir / "vela.log").write_text(" ".join(cmd) + "\n" + console)
    if proc.returncode != 0:
        raise VelaError(f"Vela failed on {model.name}: {_last_error(console)}")
    return parse_output(out_dir, options.accelerator, console), console


def _last_error(console: str) -> str:
    lines = [ln.strip() for ln in console.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:400]
    return lines[-1][:400] if lines else "no output"


def parse_output(out_dir: Path, accelerator: str, console: str) -> VelaResult:
    summaries = sorted(out_dir.glob("*_summary_*.csv"))
    layers_csv = sorted(out_dir.glob("*_per-layer.csv"))
    optimised = sorted(out_dir.glob("*_vela.tflite"))
    if len(summaries) != 1 or len(layers_csv) != 1 or len(optimised) != 1:
        raise VelaError(f"Vela wrote no single summary CSV, per-layer CSV and *_vela.tflite in {out_dir}")
    with open(summaries[0], newline="") as f:
        summary = next(csv.DictReader(f))
    with open(layers_csv[0], newline="") as f:
        layers = list(csv.DictReader(f))
    npu, cpu = _operator_split(console, layers)
    cpu_ops = sorted({row["Original Operator"] for row in layers if row["Target"] == "CPU"})
    return VelaResult(out_dir, optimised[0], summaries[0], layers_csv[0], summary, layers, accelerator,
                      summary["system_config"], npu, cpu, cpu_ops)


_SPLIT = re.compile(r"^(CPU|NPU) operators = (\d+)", re.MULTILINE)


def _operator_split(console: str, layers: list[dict[str, str]]) -> tuple[int, int]:
    """Vela's own count of original operators per target (its summary lines), else the CSV's."""
    found = dict(_SPLIT.findall(console))
    if "NPU" in found and "CPU" in found:
        return int(found["NPU"]), int(found["CPU"])
    return (sum(r["Target"] == "NPU" for r in layers), sum(r["Target"] == "CPU" for r in layers))


def compile_model(model: Path, model_digest: str, options: VelaOptions, cache) -> VelaResult:
    """Vela for (model, options), cached; the second, Vela-default-clock run only when it differs."""
    parts = {"model": model_digest, "options": options.key(), "vela": vela_version(),
             "code": source_digest("unpu.compilers.vela")}

    def make(out: Path) -> dict[str, Any]:
        board_config = board_clock_config(options, out)
        if board_config is None:
            run_vela(model, options, out / "board")
            return {"default_run": False}
        run_vela(model, options, out / "board", *board_config)
        default, _ = run_vela(model, options, out / "vela_default")
        return {"default_run": True, "default": {"cycles": float(default.cycles),
                                                 "latency_us": default.latency_us,
                                                 "clock_hz": default.clock_hz}}

    entry = cache.get_or_make("vela", parts, make)
    meta = entry.meta()
    console = (entry.path / "board" / "vela.log").read_text()
    result = parse_output(entry.path / "board", options.accelerator, console)
    result.default = meta.get("default")
    result.cache_hit = entry.hit
    return result
