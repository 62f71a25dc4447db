"""GreenWaves NNTool + AutoTiler (GAP SDK): an int8 .tflite -> AutoTiler model -> tiled C kernels.

The flow is the one the NNTool documentation gives (gap_sdk tools/nntool/docs/command_line.rst,
"Scripting Mode" and "Generate Autotiler Code"):
1. `nntool -s <script> <model>.tflite -q`: open the model with its own TFLite quantization (`-q`),
   run the script (`adjust`, `fusions --scale8`, graph and memory `set`s, `save_state`), which
   writes the NNTool state `<model>.json` beside the model;
2. `nntool -g -M <dir> -m <prefix>Model.c -T <dir>/tensors -H <prefix>Info.h <model>.json`: the
   AutoTiler model (C that calls the AutoTiler's CNN generators) and the constant tensors;
3. the AutoTiler: the model is compiled with the SDK's generator sources and AutoTiler library
   into `GenTile`, which run with the memory budgets (`--L1 --L2 --L3`) writes `<prefix>Kernels.c/.h`
   and `<prefix>_L3_Flash_Const.dat` (the weights, flashed to the HyperFlash ReadFS). unpu runs
   this step through firmware/ports/gap8/Makefile (`model` target), which takes the generator
   file lists from the SDK's own rules ($RULES_DIR/at_common_decl.mk).

What is parsed: the memory the generated code allocates, from the generated kernels (`AT_L1_ALLOC`,
`AT_L2_ALLOC`, `AT_HYPERRAM_ALLOC` in `<prefix>CNN_Construct`, and the `_L1/_L2_Memory_SIZE`
defines of the header), and the weight file's size. The AutoTiler reports no cycle estimate, so
there is no estimate/* metric for GAP8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from unpu.errors import ToolError

NNTOOL_TIMEOUT_S = 900
NNTOOL_MIN_VERSION = (4, 0)
PREFIX = "unpu"   # the AutoTiler model's name: unpuCNN(), unpuKernels.c, unpu_L3_Flash_Const.dat


@dataclass(frozen=True)
class NNToolOptions:
    fusions: str = "--scale8"
    l3_flash_device: str = "AT_MEM_L3_HFLASH"
    l3_ram_device: str = "AT_MEM_L3_HRAM"
    monitor_cycles: bool = True


# ModelFiles' files: (attribute, name under the model directory; {p} is the model's prefix)
MODEL_FILES = (("tflite", "{p}.tflite"), ("script", "nntool_script"), ("state", "{p}.json"), ("tensors", "tensors"),
               ("kernels_c", "{p}Kernels.c"), ("kernels_h", "{p}Kernels.h"), ("weights", "{p}_L3_Flash_Const.dat"))


@dataclass(frozen=True)
class ModelFiles:
    """Where steps 1-3 put their outputs, all under one model directory: `files.tflite`,
    `.script`, `.state`, `.tensors`, `.kernels_c`, `.kernels_h`, `.weights` (MODEL_FILES), and the
    names the AutoTiler model's sources get inside it (`.at_model`, `.info_header`)."""

    directory: Path
    prefix: str = PREFIX

    def __getattr__(self, name: str) -> Path:
        for attribute, pattern in MODEL_FILES:
            if attribute == name:
                return self.directory / pattern.format(p=self.prefix)
        raise AttributeError(name)

    @property
    def at_model(self) -> str:
        return f"{self.prefix}Model.c"

    @property
    def info_header(self) -> str:
        return f"{self.prefix}Info.h"


def nntool_script(opts: NNToolOptions) -> str:
    """The NNTool commands for an already-quantized int8 model (documented in command_line.rst)."""
    lines = ["adjust", f"fusions {opts.fusions}".rstrip(),
             "set graph_produce_node_names true", "set graph_produce_operinfos true",
             f"set graph_monitor_cycles {'true' if opts.monitor_cycles else 'false'}",
             f"set l3_flash_device {opts.l3_flash_device}", f"set l3_ram_device {opts.l3_ram_device}",
             "save_state"]
    return "\n".join(lines) + "\n"


def state_command(nntool: str, files: ModelFiles) -> list[str]:
    """Step 1: run the script on the model, loading its TFLite quantization (-q)."""
    return [nntool, "-s", str(files.script), str(files.tflite), "-q"]


def generate_command(nntool: str, files: ModelFiles) -> list[str]:
    """Step 2: the AutoTiler model and tensors from the saved state."""
    return [nntool, "-g", "-M", str(files.directory), "-m", files.at_model, "-T", str(files.tensors),
            "-H", files.info_header, str(files.state)]


def version_command(nntool: str) -> list[str]:
    return [nntool, "-v"]


def parse_version(text: str) -> tuple[int, ...]:
    """`nntool -v` prints `NNTOOL Version 4.1` (gap_sdk tools/nntool/scripts/nntool)."""
    match = re.search(r"NNTOOL Version (\d+(?:\.\d+)*)", text)
    if not match:
        raise ToolError(f"nntool -v printed no version: {text.strip()[:200]!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def check_version(text: str) -> str:
    version = parse_version(text)
    if version < NNTOOL_MIN_VERSION:
        need = ".".join(map(str, NNTOOL_MIN_VERSION))
        raise ToolError(f"NNTool {'.'.join(map(str, version))} is too old: unpu's script needs NNTool >= {need} "
                         f"(gap_sdk 4.x, https://github.com/GreenWaves-Technologies/gap_sdk)")
    return ".".join(map(str, version))


# -- what the AutoTiler generated ------------------------------------------------------------------

_ALLOC = re.compile(r"(\w+?)_(L1_Memory|L2_Memory_Dyn|L2_Memory|L3_Memory)\s*=\s*\(\w+\)\s*"
                    r"AT_(?:L1|L2|HYPERRAM|QSPIRAM|OSPIRAM|DEFAULTRAM)_ALLOC\([^,]+,\s*(\d+)\)")
_SIZE_DEFINE = re.compile(r"#define\s+_(\w+?)_(L1|L2)_Memory_SIZE\s+(\d+)")
_CNN_OUT = re.compile(r"int\s+(\w+)CNN\(\s*([^)]*)\)", re.S)


def parse_kernels_c(text: str) -> dict[str, int]:
    """Bytes the generated `<prefix>CNN_Construct` allocates: l1, l2 (static), l2_dyn, l3_ram."""
    keys = {"L1_Memory": "l1", "L2_Memory": "l2", "L2_Memory_Dyn": "l2_dyn", "L3_Memory": "l3_ram"}
    found: dict[str, int] = {}
    for _prefix, which, size in _ALLOC.findall(text):
        found.setdefault(keys[which], int(size))
    return found


def parse_kernels_h(text: str) -> dict[str, int]:
    """The header's `#define _<prefix>_L1_Memory_SIZE N` / `_L2_` lines."""
    return {which.lower(): int(size) for _p, which, size in _SIZE_DEFINE.findall(text)}


def network_arg_types(text: str) -> list[str]:
    """C element types of `<prefix>CNN(...)`'s arguments (e.g. ['signed char', 'signed short'])."""
    match = _CNN_OUT.search(text)
    if not match:
        return []
    types = []
    for arg in match.group(2).split(","):
        arg = re.sub(r"__restrict__|\*|\bconst\b", " ", arg).split()
        types.append(" ".join(arg[:-1]))
    return types


def memory_metrics(files: ModelFiles) -> dict[str, float]:
    """memory/* from the generated kernels and the weight file (what the generated code allocates)."""
    metrics: dict[str, float] = {}
    if files.kernels_c.exists():
        alloc = parse_kernels_c(files.kernels_c.read_text(errors="replace"))
        for key, value in alloc.items():
            metrics[f"memory/at_{key}"] = float(value)
        if "l2" in alloc or "l2_dyn" in alloc:
            metrics["memory/arena"] = float(alloc.get("l2", 0) + alloc.get("l2_dyn", 0))
    if files.weights.exists():
        metrics["memory/npu_weights"] = float(files.weights.stat().st_size)
    return metrics
