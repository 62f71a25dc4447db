"""ST Edge AI Core (`stedgeai`): find it, build its command lines, run `generate`, read its report.

Where the tool is: `$STEDGEAI_CORE_DIR/Utilities/<host>/stedgeai` (ST's "Setting environment"
article, https://stedgeai-dc.st.com/assets/embedded-docs/setting_env.html), else `stedgeai` on PATH.
`stedgeai --version` prints `ST Edge AI Core v<x.y.z>` first (same article).

What is parsed, and from where (only fields with a public sample are read):
- the summary block every `generate`/`analyze` report starts with (`macc`, `weights (ro)`,
  `activations (rw)`, `ram (total)`): ST's own network_generate_report.txt in
  github.com/STMicroelectronics/stm32ai-modelzoo (stm32ai_application_code/sensing_thread_x/...);
- for the Neural-ART (stm32n6) back end, the "Memory usage information", "Used memory ranges" and
  "Epochs details" tables and the "Summary" TOTAL row: the sample output in ST's "Getting started -
  How to evaluate a model on STM32N6 development board" article
  (https://stedgeai-dc.st.com/assets/embedded-docs/stneuralart_getting_started.html).
The `<name>_c_info.json` file is kept as an artifact but not parsed: no public sample of it exists.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from unpu.cache import source_digest
from unpu.compilers import Compiled
from unpu.errors import ToolError
from unpu.tools import run_logged, tool_version

STEDGEAI_URL = "https://www.st.com/en/development-tools/stedgeai-core.html"
MIN_VERSION = (2, 0, 0)            # STM32N6 (Neural-ART) support and the st-ai C API
GENERATE_TIMEOUT_S = 1800
_HOST = {"linux": "linux", "darwin": "mac", "win32": "windows"}


@dataclass(frozen=True)
class StEdgeAiOptions:
    target: str                          # --target: stm32h7, stm32n6, ...
    name: str = "network"                # --name: c-name of the generated files
    neural_art: str | None = None        # --st-neural-art [profile[@file.json]] (Neural-ART targets only)
    extra: tuple[str, ...] = ()          # further options, passed as they are


def find_stedgeai(env_var: str = "STEDGEAI_CORE_DIR") -> str:
    """The stedgeai executable under $env_var (ST's install layout), else on PATH."""
    root = os.environ.get(env_var)
    host = _HOST.get(sys.platform, "linux")
    if root:
        exe = Path(root).expanduser() / "Utilities" / host / "stedgeai"
        if exe.is_file() and os.access(exe, os.X_OK):
            return str(exe)
        raise ToolError(f"{env_var}={root} has no executable Utilities/{host}/stedgeai: point it at the "
                         f"ST Edge AI Core installation ({STEDGEAI_URL})")
    found = shutil.which("stedgeai")
    if found is None:
        raise ToolError(f"stedgeai not found ({env_var} unset, not on PATH): install ST Edge AI Core "
                         f"({STEDGEAI_URL}) and set {env_var}")
    return found


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"ST Edge AI Core v(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


def check_version(exe: str) -> str:
    """`stedgeai --version`, which must be at least MIN_VERSION; the version as x.y.z."""

    version = tool_version([exe, "--version"], r"ST Edge AI Core v(\d+\.\d+\.\d+)", "stedgeai")
    if tuple(int(p) for p in version.split(".")) < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION))
        raise ToolError(f"stedgeai {version} is too old: unpu needs ST Edge AI Core >= {need} ({STEDGEAI_URL})")
    return version


def command(exe: str, verb: str, model: Path, options: StEdgeAiOptions, workspace: Path, output: Path) -> list[str]:
    """`stedgeai analyze|generate` for one model (options as in ST's CLI article,
    https://stedgeai-dc.st.com/assets/embedded-docs/command_line_interface.html)."""
    cmd = [exe, verb, "--model", str(model), "--target", options.target, "--name", options.name,
           "--c-api", "st-ai", "--workspace", str(workspace), "--output", str(output)]
    cmd += list(options.extra)
    if options.neural_art is not None:   # last: its argument is optional
        cmd += ["--st-neural-art"] + ([options.neural_art] if options.neural_art else [])
    return cmd


# -- the report -------------------------------------------------------------------------------------

@dataclass
class MemoryPool:
    name: str
    start: int
    end: int
    used: int
    weights: int
    activations: int


@dataclass
class StEdgeAiReport:
    macc: int | None = None
    weights: int | None = None           # weights (ro), bytes
    activations: int | None = None       # activations (rw), bytes
    ram_total: int | None = None
    io: int | None = None                # the I/O buffers outside the activations (ram total = act + io parts)
    pools: list[MemoryPool] = field(default_factory=list)
    used_ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)     # total, sw, hybrid, hw
    sw_epoch_ops: list[str] = field(default_factory=list)    # "Details" of SW/hybrid epochs
    flash_total: int | None = None       # "Summary" TOTAL row: runtime + network, FLASH and RAM
    ram_total_with_runtime: int | None = None

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in (("stedgeai/weights_bytes", self.weights), ("stedgeai/activations_bytes", self.activations),
                           ("stedgeai/ram_total_bytes", self.ram_total), ("stedgeai/flash_total_bytes", self.flash_total),
                           ("stedgeai/ram_total_with_runtime_bytes", self.ram_total_with_runtime)):
            if value is not None:
                out[key] = float(value)
        if self.macc:   # the Neural-ART back end reports 0
            out["stedgeai/macc"] = float(self.macc)
        for kind, count in self.epochs.items():
            out[f"stedgeai/epochs_{kind}"] = float(count)
        npu_weights = sum(p.weights for p in self.pools)
        if self.pools:
            out["memory/npu_weights"] = float(npu_weights)
            out["memory/npu_activations"] = float(sum(p.activations for p in self.pools))
        return out

    def tags(self) -> dict[str, str]:
        tags = {}
        if self.epochs:
            tags["stedgeai.sw_epochs"] = ",".join(self.sw_epoch_ops) or "none"
        return tags


_NUM = r"([\d,]+)"
_SUMMARY = {"macc": re.compile(r"^\s*macc\s*:\s*" + _NUM, re.M),
            "weights": re.compile(r"^\s*weights \(ro\)\s*:\s*" + _NUM + r" B", re.M),
            "activations": re.compile(r"^\s*activations \(rw\)\s*:\s*" + _NUM + r" B", re.M),
            "ram_total": re.compile(r"^\s*ram \(total\)\s*:\s*" + _NUM + r" B", re.M)}
_RAM_PARTS = re.compile(r"^\s*ram \(total\)\s*:.*=\s*" + _NUM + r"\s*\+\s*" + _NUM + r"\s*\+\s*" + _NUM, re.M)
_SIZE = r"([\d.]+)\s*(B|kB|MB)"
_POOL = re.compile(r"^\s*(\w+)\s+\[0x([0-9A-Fa-f]+)\s*-\s*0x([0-9A-Fa-f]+)\]:\s*" + _SIZE + r"\s*/\s*" + _SIZE +
                   r".*?weights:\s*" + _SIZE + r".*?activations:\s*" + _SIZE, re.M)
_RANGE_LINE = re.compile(r"^\s*(\w+)\s+\[0x[0-9A-Fa-f]+\s*-\s*0x[0-9A-Fa-f]+\]:\s*((?:0x[0-9A-Fa-f]+-0x[0-9A-Fa-f]+\s*)+)$", re.M)
_EPOCHS = {"total": r"Total number of epochs\s+(\d+)", "sw": r"pure software \(SW\) epochs\s+(\d+)",
           "hybrid": r"hybrid epochs[^\n]*?\s(\d+)\s*$", "hw": r"pure hardware \(HW or EC\) epochs\s+(\d+)"}
_EPOCH_ROW = re.compile(r"^\|\s*epoch_\w+\s*\|\s*(SW|HYBRID|Hybrid|HW|EC)\s*\|\s*([^|]*?)\s*\|", re.M)
_TOTAL_ROW = re.compile(r"^\s*TOTAL\s+" + _NUM + r"\s+" + _NUM + r"\s*$", re.M)
_UNIT = {"B": 1, "kB": 1024, "MB": 1024 * 1024}   # the report's kB/MB are binary (448 KiB pools read "448.000 kB")


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _bytes(value: str, unit: str) -> int:
    return int(round(float(value) * _UNIT[unit]))


def parse_report(text: str) -> StEdgeAiReport:
    """The figures of a `generate`/`analyze` report (network_generate_report.txt or the console)."""
    report = StEdgeAiReport()
    for key, pattern in _SUMMARY.items():
        match = pattern.search(text)
        if match:
            setattr(report, key, _int(match.group(1)))
    parts = _RAM_PARTS.search(text)
    if parts:
        report.io = _int(parts.group(2)) + _int(parts.group(3))
    for m in _POOL.finditer(text):
        report.pools.append(MemoryPool(m.group(1), int(m.group(2), 16), int(m.group(3), 16), _bytes(m.group(4), m.group(5)),
                                       _bytes(m.group(8), m.group(9)), _bytes(m.group(10), m.group(11))))
    ranges = text.split("Used memory ranges", 1)
    if len(ranges) == 2:
        for m in _RANGE_LINE.finditer(ranges[1].split("====", 1)[0]):
            spans = re.findall(r"0x([0-9A-Fa-f]+)-0x([0-9A-Fa-f]+)", m.group(2))
            report.used_ranges[m.group(1)] = [(int(a, 16), int(b, 16)) for a, b in spans]
    for kind, pattern in _EPOCHS.items():
        match = re.search(pattern, text, re.M)
        if match:
            report.epochs[kind] = int(match.group(1))
    report.sw_epoch_ops = [m.group(2) or m.group(1) for m in _EPOCH_ROW.finditer(text) if m.group(1) not in ("HW", "EC")]
    totals = _TOTAL_ROW.findall(text)
    if totals:
        report.flash_total, report.ram_total_with_runtime = _int(totals[-1][0]), _int(totals[-1][1])
    return report


# -- generate ---------------------------------------------------------------------------------------

@dataclass
class StEdgeAiResult(Compiled):
    """out_dir: stedgeai's --output (generated C files, report, memory initializers)."""

    report: StEdgeAiReport
    options: StEdgeAiOptions

    @property
    def report_path(self) -> Path:
        return self.out_dir / f"{self.options.name}_generate_report.txt"

    def memory_initializers(self) -> list[Path]:
        """The raw memory images the Neural-ART back end writes (`<name>_atonbuf.<pool>.raw`)."""
        return sorted(self.out_dir.glob(f"{self.options.name}_atonbuf.*.raw"))

    def metrics(self) -> dict[str, float]:
        return self.report.metrics()

    def tags(self) -> dict[str, str]:
        return {"stedgeai.version": self.version, "stedgeai.target": self.options.target,
                "stedgeai.neural_art": str(self.options.neural_art), **self.report.tags()}


def run_generate(exe: str, model: Path, options: StEdgeAiOptions, root: Path, version: str) -> StEdgeAiResult:
    """`stedgeai generate` into root/output (workspace root/workspace); the report must be there."""

    out, ws = root / "output", root / "workspace"
    out.mkdir(parents=True, exist_ok=True)
    run_logged(command(exe, "generate", model, options, ws, out), root / "stedgeai.log",
               f"stedgeai generate --target {options.target}", GENERATE_TIMEOUT_S)
    report_path = out / f"{options.name}_generate_report.txt"
    if not report_path.is_file():
        raise ToolError(f"stedgeai generate wrote no {report_path.name} in {out}")
    return StEdgeAiResult(out, version, parse_report(report_path.read_text(errors="replace")), options)


def generate_cached(exe: str, model: Path, model_digest: str, options: StEdgeAiOptions, version: str,
                    cache) -> StEdgeAiResult:
    """run_generate, cached by model, options and tool version."""

    parts = {"model": model_digest, "options": repr(options), "version": version,
             "code": source_digest("unpu.compilers.stedgeai")}

    def make(tmp: Path) -> dict:
        run_generate(exe, model, options, tmp, version)
        return {"version": version}

    entry = cache.get_or_make("stedgeai", parts, make)
    report = entry.path / "output" / f"{options.name}_generate_report.txt"
    return StEdgeAiResult(entry.path / "output", version, parse_report(report.read_text(errors="replace")), options,
                          cache_hit=entry.hit)
