"""NXP eIQ Neutron converter: turn an int8 .tflite into one whose NPU-supported subgraphs are
`NeutronGraph` custom operators, and read what the conversion did from the converted model.

The converter (`neutron-converter`, part of NXP's eIQ Toolkit / eIQ Neutron SDK) is run as NXP
documents it: `neutron-converter --input IN.tflite --output OUT.tflite --target mcxn94x`
(https://github.com/nxp-mcuxpresso/mcuxsdk-middleware-tensorflow/blob/main/docs/topics/convert_model.md,
https://eiq.nxp.com/training-materials/tools/neutronSdk/softwareTools/NeutronConverter.html).

Its console report has no public sample, so unpu does not parse it (it is kept as a log). What is
documented is the converted model itself: supported operators become `NeutronGraph` custom
operators, unsupported ones stay as standard TFLite operators for the CPU. The layout of a
NeutronGraph node is the one NXP's TFLM kernel reads
(mcuxsdk-middleware-tensorflow, tensorflow/lite/micro/kernels/neutron/neutron.cpp): its last three
inputs are the microcode, the weights and the kernels buffers (constants), its last output is the
scratch tensor the NPU computes in; the other inputs/outputs are the graph's activations.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unpu.cache import file_digest, source_digest
from unpu.graph import inspect_tflite

log = logging.getLogger(__name__)

NEUTRON_OP = "CUSTOM:NeutronGraph"
CONVERT_TIMEOUT_S = 900
VERSION_TIMEOUT_S = 60
DOC_URL = ("https://www.nxp.com/design/design-center/software/eiq-ai-development-environment/"
           "eiq-toolkit-for-end-to-end-model-development-and-deployment:EIQ-TOOLKIT")


class NeutronError(RuntimeError):
    """The converter is missing, refused the model or wrote no model; one line."""


@dataclass(frozen=True)
class NeutronOptions:
    target: str = "mcxn94x"                 # the converter's --target for MCX N94x/N54x
    extra_args: tuple[str, ...] = ()        # further converter flags from board.neutron.extra_args

    def key(self) -> dict[str, Any]:
        return {"target": self.target, "extra_args": list(self.extra_args)}


@dataclass
class NeutronReport:
    """What a converted model holds: the NPU/CPU split and the Neutron buffers' sizes."""

    neutron_graphs: int
    cpu_ops: list[str]                      # standard operators left to the CPU, in graph order
    microcode_bytes: int
    weights_bytes: int
    kernels_bytes: int
    scratch_bytes: int                      # largest NeutronGraph scratch tensor (lives in the arena)
    model_bytes: int

    @property
    def cpu_fallback(self) -> list[str]:
        return sorted(set(self.cpu_ops))

    def metrics(self) -> dict[str, float]:
        return {"neutron/graphs": float(self.neutron_graphs), "neutron/cpu_operators": float(len(self.cpu_ops)),
                "neutron/microcode_bytes": float(self.microcode_bytes),
                "neutron/kernels_bytes": float(self.kernels_bytes),
                "neutron/scratch_bytes": float(self.scratch_bytes),
                "memory/npu_weights": float(self.weights_bytes),
                "memory/model_compiled": float(self.model_bytes)}

    def tags(self) -> dict[str, str]:
        return {"neutron.cpu_fallback": ",".join(self.cpu_fallback) or "none",
                "estimate.scope": "none (the Neutron converter publishes no latency estimate)"}


@dataclass
class NeutronResult:
    out_dir: Path
    converted: Path
    log: Path
    report: NeutronReport
    version: str
    cache_hit: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# -- the tool ------------------------------------------------------------------------------------

def convert_command(exe: str, model: Path, out: Path, options: NeutronOptions) -> list[str]:
    """The documented command line (no shell)."""
    return [exe, "--input", str(model), "--output", str(out), "--target", options.target, *options.extra_args]


def version_command(exe: str) -> list[str]:
    return [exe, "--version"]


def converter_version(exe: str) -> str:
    """The version the converter prints, or "unknown" (its --version output is not documented)."""
    try:
        proc = subprocess.run(version_command(exe), capture_output=True, text=True, timeout=VERSION_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NeutronError(f"{exe} --version failed: {exc}") from None
    match = re.search(r"(\d+\.\d+(?:\.\d+)*)", proc.stdout + proc.stderr)
    return match.group(1) if match else "unknown"


def run_converter(exe: str, model: Path, out_dir: Path, options: NeutronOptions) -> Path:
    """Convert into out_dir/<model>_npu.tflite; the console goes to out_dir/neutron.log."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{model.stem}_npu.tflite"
    cmd = convert_command(exe, model, out, options)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise NeutronError(f"neutron-converter did not finish within {CONVERT_TIMEOUT_S} s on {model.name}") from None
    except OSError as exc:
        raise NeutronError(f"neutron-converter could not start: {exc}") from None
    console = proc.stdout + proc.stderr
    (out_dir / "neutron.log").write_text(" ".join(cmd) + "\n" + console)
    if proc.returncode != 0:
        raise NeutronError(f"neutron-converter failed on {model.name} (exit {proc.returncode}): {_last_line(console)}")
    if not out.is_file() or out.read_bytes()[4:8] != b"TFL3":
        raise NeutronError(f"neutron-converter wrote no .tflite at {out}: {_last_line(console)}")
    return out


def _last_line(console: str) -> str:
    lines = [ln.strip() for ln in console.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "rror" in line:
            return line[:400]
    return lines[-1][:400] if lines else "no output"


# -- the converted model -----------------------------------------------------------------------

def parse_converted(tflite: bytes) -> NeutronReport:
    """The NPU/CPU split and Neutron buffer sizes of a converted model (subgraph 0)."""
    info = inspect_tflite(tflite)
    sizes = {"microcode": 0, "weights": 0, "kernels": 0}
    scratch = 0
    for op in info.ops:
        if op.op != NEUTRON_OP:
            continue
        if len(op.inputs) < 3 or not op.outputs:
            raise NeutronError(f"NeutronGraph operator {op.index} has {len(op.inputs)} inputs; NXP's kernel needs "
                               "microcode, weights and kernels as its last three")
        for name, index in zip(("microcode", "weights", "kernels"), op.inputs[-3:]):
            sizes[name] += info.tensors[index].data_bytes if index >= 0 else 0
        scratch = max(scratch, info.tensors[op.outputs[-1]].nbytes)
    return NeutronReport(neutron_graphs=sum(op.op == NEUTRON_OP for op in info.ops),
                         cpu_ops=[op.op for op in info.ops if op.op != NEUTRON_OP],
                         microcode_bytes=sizes["microcode"], weights_bytes=sizes["weights"],
                         kernels_bytes=sizes["kernels"], scratch_bytes=scratch, model_bytes=len(tflite))


# -- cached compile --------------------------------------------------------------------------------

def compile_model(exe: str, model: Path, model_digest: str, options: NeutronOptions, cache) -> NeutronResult:
    """The converter on (model, options), cached by model digest, options, converter version and this code."""
    version = converter_version(exe)
    parts = {"model": model_digest, "options": options.key(), "converter": version,
             "converter_digest": file_digest(exe) if version == "unknown" else None,
             "code": source_digest("unpu.compilers.neutron")}

    def make(out: Path) -> dict[str, Any]:
        run_converter(exe, model, out, options)
        return {"version": version}

    entry = cache.get_or_make("neutron", parts, make)
    converted = entry.path / f"{model.stem}_npu.tflite"
    report = parse_converted(converted.read_bytes())
    if report.neutron_graphs == 0:
        log.warning("%s: the Neutron converter mapped nothing to the NPU; the whole model runs on the Cortex-M33",
                    model.name)
    return NeutronResult(entry.path, converted, entry.path / "neutron.log", report, version, cache_hit=entry.hit)
