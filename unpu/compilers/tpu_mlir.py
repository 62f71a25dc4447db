"""Sophgo TPU-MLIR: compile a quantized .tflite for a CV18xx TPU (`.cvimodel`) and read its report.

TPU-MLIR's CV18xx guide says the CV18xx processors take ONNX and Caffe models, not TFLite, and only
BF16 or *symmetric* INT8 (docs/quick_start/source_en/Appx.02_cv18xx_guide.rst in
https://github.com/sophgo/tpu-mlir). A TFLite int8 model (asymmetric activations) therefore goes:

  1. tf2onnx `python -m tf2onnx.convert --tflite M.tflite --dequantize --opset 13 --output M.onnx`
     (float ONNX with the TFLite model's own weights, dequantized; NHWC input kept),
  2. `model_transform.py --model_name M --model_def M.onnx --input_shapes [[1,..]] --mlir M.mlir`,
  3. `run_calibration.py M.mlir --dataset cali --input_num N -o M_cali_table` on the job's own
     calibration samples (one .npy per sample),
  4. `model_deploy.py --mlir M.mlir --quantize INT8 --calibration_table M_cali_table
     --processor cv180x --model M.cvimodel` (symmetric INT8: TPU-MLIR re-quantizes),
  5. `model_tool --info M.cvimodel`: ION memory, weight and command-buffer sections, gmem sizes.

So the TPU runs TPU-MLIR's own INT8 quantization of the model, not the TFLite int8 arithmetic:
validation against LiteRT reports the gap, it is not bit-exact. TPU-MLIR publishes no latency
estimate for CV18xx, so there is no estimate/* metric.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unpu.cache import bytes_digest
from unpu.compilers import Compiled
from unpu.errors import ToolError
from unpu.tools import run_logged

log = logging.getLogger(__name__)

URL = "https://github.com/sophgo/tpu-mlir"
HOW = f"install TPU-MLIR (pip install tpu_mlir, or source a release's envsetup.sh) or set TPU_MLIR_PATH ({URL})"
TOOLS = ("model_transform", "run_calibration", "model_deploy", "model_tool")
STEP_TIMEOUT_S = 1800
HELP_TIMEOUT_S = 120
MIB = 1024 * 1024
VERSION_RE = r"TPU-MLIR (v?\d+\.\d+[\w.\-]*)"

# TFLite operators the cv18xx path takes: each becomes an ONNX op (tf2onnx's TFLite handlers) that
# TPU-MLIR's ONNX front end (python/transform/OnnxConverter.py) converts and CV18xx lowers. A
# conservative list; board.tpu_mlir.supported_ops overrides it.
SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "AVERAGE_POOL_2D",
                 "MAX_POOL_2D", "MEAN", "RESHAPE", "SQUEEZE", "SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6",
                 "LEAKY_RELU", "HARD_SWISH", "CONCATENATION", "PAD", "PADV2", "TRANSPOSE",
                 "RESIZE_NEAREST_NEIGHBOR", "QUANTIZE", "DEQUANTIZE")


class TpuMlirError(RuntimeError):
    """TPU-MLIR (or tf2onnx) is missing or refused the model; one line."""


# -- finding the tools ---------------------------------------------------------------------------
def find_tools(env_var: str = "TPU_MLIR_PATH") -> dict[str, str]:
    """The four TPU-MLIR commands: under $env_var (python/tools/<x>.py, bin/<x>) else on PATH
    (`<x>.py` from a release's envsetup.sh, or `<x>` from the pip package)."""
    return {name: _find_tool(name, env_var) for name in TOOLS}


def _find_tool(name: str, env_var: str) -> str:
    root = os.environ.get(env_var)
    if root:
        base = Path(root).expanduser()
        for cand in (base / "python" / "tools" / f"{name}.py", base / "bin" / name, base / f"{name}.py", base / name):
            if cand.is_file() and os.access(cand, os.X_OK):
                return str(cand)
        raise TpuMlirError(f"{env_var}={root} has no executable {name}(.py): {HOW}")
    found = shutil.which(f"{name}.py") or shutil.which(name)
    if found is None:
        raise TpuMlirError(f"{name}.py not found ({env_var} unset, not on PATH): {HOW}")
    return found


def check_version(tools: dict[str, str], processor: str) -> str:
    """TPU-MLIR's version (model_deploy logs it before parsing its arguments); the processor must be
    one of model_deploy's --processor choices."""
    cmd = [tools["model_deploy"], "--help"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=HELP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TpuMlirError(f"`{' '.join(cmd)}` failed: {exc}") from None
    text = proc.stdout + proc.stderr
    match = re.search(VERSION_RE, text)
    if not match:
        raise TpuMlirError(f"`{' '.join(cmd)}` printed no TPU-MLIR version: {HOW}")
    if processor not in text:
        raise TpuMlirError(f"TPU-MLIR {match.group(1)} does not list --processor {processor}: use a release with CV18xx support ({URL})")
    return match.group(1)


def check_tf2onnx(python: str | None) -> None:
    how = "install it next to TensorFlow: pip install tf2onnx==1.17.0 (https://github.com/onnx/tensorflow-onnx)"
    if python is None:
        if importlib.util.find_spec("tf2onnx") is None:
            raise TpuMlirError(f"the Python package tf2onnx is missing: {how}")
        return
    try:
        proc = subprocess.run([python, "-c", "import tf2onnx"], capture_output=True, text=True,
                              timeout=HELP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TpuMlirError(f"{python} cannot run: {exc}") from None
    if proc.returncode != 0:
        raise TpuMlirError(f"{python} cannot import tf2onnx: {how}")


# -- command lines (pure) --------------------------------------------------------------------------
def onnx_command(python: str, tflite: Path, onnx: Path, opset: int) -> list[str]:
    return [python, "-m", "tf2onnx.convert", "--tflite", str(tflite), "--dequantize", "--opset", str(opset),
            "--output", str(onnx)]


def shape_arg(shape: tuple[int, ...]) -> str:
    return "[[" + ",".join(str(int(d)) for d in shape) + "]]"


def transform_command(tools: dict[str, str], name: str, onnx: Path, shape: tuple[int, ...], mlir: Path) -> list[str]:
    return [tools["model_transform"], "--model_name", name, "--model_def", str(onnx), "--input_shapes",
            shape_arg(shape), "--mlir", str(mlir)]


def calibration_command(tools: dict[str, str], mlir: Path, dataset: Path, count: int, table: Path) -> list[str]:
    return [tools["run_calibration"], str(mlir), "--dataset", str(dataset), "--input_num", str(int(count)),
            "-o", str(table)]


def deploy_command(tools: dict[str, str], mlir: Path, table: Path, processor: str, cvimodel: Path) -> list[str]:
    return [tools["model_deploy"], "--mlir", str(mlir), "--quantize", "INT8", "--calibration_table", str(table),
            "--processor", processor, "--model", str(cvimodel)]


def info_command(tools: dict[str, str], cvimodel: Path) -> list[str]:
    return [tools["model_tool"], "--info", str(cvimodel)]


# -- the report ----------------------------------------------------------------------------------
@dataclass
class CviModelInfo:
    """What `model_tool --info` (older: `cvimodel_tool -a dump -i`) prints about a .cvimodel."""

    ion_bytes: int | None = None
    sections: dict[str, int] = field(default_factory=dict)     # section type -> bytes (weight, cmdbuf, ...)
    private_gmem_bytes: int | None = None
    shared_gmem_bytes: int | None = None
    mlir_version: str | None = None
    chip: str | None = None


_ION_RE = re.compile(r"CviModel Need ION Memory Size:\s*\(\s*([0-9.]+)\s*MB\s*\)")
_SECTION_RE = re.compile(r"^\s*(\d{3})\s+(\w+)\s+(\S+)\s+(\d+)\s+(\d+)\b")
_GMEM_RE = re.compile(r"^\s*(private|shared)_gmem_size\s*:\s*(\d+)")


def parse_model_info(text: str) -> CviModelInfo:
    """Parse the documented dump format: the ION line, the Sections table (ID TYPE NAME SIZE OFFSET
    ...) and each program's private/shared gmem sizes (summed when there are several programs)."""
    info = CviModelInfo()
    in_sections = False
    for line in text.splitlines():
        if m := _ION_RE.search(line):
            info.ion_bytes = int(round(float(m.group(1)) * MIB))
        elif m := re.match(r"\s*Mlir Version:\s*(\S+)", line):
            info.mlir_version = m.group(1)
        elif m := re.match(r"\s*For (\w+) chip ONLY", line):
            info.chip = m.group(1)
        elif re.match(r"\s*Sections:", line):
            in_sections = True
        elif in_sections and (m := _SECTION_RE.match(line)):
            info.sections[m.group(2)] = info.sections.get(m.group(2), 0) + int(m.group(4))
        elif m := _GMEM_RE.match(line):
            key = f"{m.group(1)}_gmem_bytes"
            setattr(info, key, (getattr(info, key) or 0) + int(m.group(2)))
        elif in_sections and re.match(r"\s*\w+:", line) and not line.strip().startswith("ID"):
            in_sections = False
    if info.ion_bytes is None:
        raise TpuMlirError("model_tool --info printed no 'CviModel Need ION Memory Size' line")
    return info


# -- the compile -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TpuMlirOptions:
    processor: str = "cv180x"
    opset: int = 13
    python: str | None = None          # the Python that runs tf2onnx; None = unpu's own

    def key(self) -> dict[str, Any]:
        return {"processor": self.processor, "opset": self.opset, "python": self.python}


@dataclass
class TpuMlirResult(Compiled):
    cvimodel: Path
    info: CviModelInfo

    @property
    def log(self) -> Path:
        return self.out_dir / "tpu_mlir.log"

    def metrics(self) -> dict[str, float]:
        out = {"memory/model_compiled": float(self.cvimodel.stat().st_size)}
        if self.info.ion_bytes is not None:   # model_tool printed it; no line means unknown, not 0
            out["memory/ion"] = float(self.info.ion_bytes)
        if "weight" in self.info.sections:
            out["memory/npu_weights"] = float(self.info.sections["weight"])
        if "cmdbuf" in self.info.sections:
            out["memory/npu_cmdbuf"] = float(self.info.sections["cmdbuf"])
        for kind in ("private", "shared"):
            value = getattr(self.info, f"{kind}_gmem_bytes")
            if value is not None:
                out[f"memory/{kind}_gmem"] = float(value)
        return out

    def tags(self, processor: str) -> dict[str, str]:
        return {"tpu_mlir.version": self.version, "tpu_mlir.processor": processor,
                "tpu_mlir.quantization": "INT8 symmetric, TPU-MLIR calibration of the dequantized TFLite model",
                "cache.tpu_mlir": "hit" if self.cache_hit else "miss"}


def run_flow(tflite: Path, calibration, out: Path, tools: dict[str, str], opts: TpuMlirOptions) -> CviModelInfo:
    """Steps 1-5 in `out` (TPU-MLIR writes its intermediate files to its working directory)."""

    name = re.sub(r"[^A-Za-z0-9_]", "_", tflite.stem) or "model"
    onnx, mlir, table = out / f"{name}.onnx", out / f"{name}.mlir", out / f"{name}_cali_table"
    cali = out / "cali"
    cali.mkdir(parents=True, exist_ok=True)
    for i, sample in enumerate(calibration):
        np.save(cali / f"sample_{i:04d}.npy", np.asarray(sample, dtype=np.float32)[None, ...])
    steps = [(onnx_command(opts.python or sys.executable, tflite, onnx, opts.opset), "tf2onnx (TFLite -> ONNX)"),
             (transform_command(tools, name, onnx, (1, *np.asarray(calibration[0]).shape), mlir), "TPU-MLIR model_transform"),
             (calibration_command(tools, mlir, cali, len(calibration), table), "TPU-MLIR run_calibration"),
             (deploy_command(tools, mlir, table, opts.processor, out / "model.cvimodel"), "TPU-MLIR model_deploy")]
    logfile = out / "tpu_mlir.log"
    try:
        for cmd, what in steps:
            run_logged(cmd, logfile, what, STEP_TIMEOUT_S, cwd=out)
        text = run_logged(info_command(tools, out / "model.cvimodel"), logfile, "TPU-MLIR model_tool --info",
                          HELP_TIMEOUT_S, cwd=out)
    except ToolError as exc:
        raise TpuMlirError(_with_unsupported(str(exc), logfile)) from None
    return parse_model_info(text)


def _with_unsupported(message: str, logfile: Path) -> str:
    """Name the operator when a front end stopped at one it does not know."""
    text = logfile.read_text(errors="replace") if logfile.exists() else ""
    match = re.search(r"(?:not support|unsupport\w*)\D{0,40}?op(?:erator)?\s*[:=]?\s*'?(\w+)'?", text, re.I)
    return f"{message} (unsupported operator: {match.group(1)})" if match else message


def compile_model(tflite: Path, digest: str, calibration, opts: TpuMlirOptions, tools: dict[str, str],
                  version: str, cache) -> TpuMlirResult:
    """The .cvimodel for this model and calibration set, cached by content."""

    parts = {"model": digest, "options": opts.key(), "tpu_mlir": version,
             "calibration": bytes_digest(np.ascontiguousarray(calibration, dtype=np.float32).tobytes()),
             "tools": {k: Path(v).name for k, v in tools.items()}}

    def make(out: Path) -> dict[str, Any]:
        out = out.resolve()
        shutil.copy2(tflite, out / "model.tflite")
        info = run_flow(out / "model.tflite", calibration, out, tools, opts)
        shutil.rmtree(out / "cali", ignore_errors=True)
        return {"info": info.__dict__}

    entry = cache.get_or_make("tpu_mlir", parts, make)
    info = CviModelInfo(**entry.meta()["info"])
    return TpuMlirResult(entry.path, version, entry.file("model.cvimodel"), info, cache_hit=entry.hit)
