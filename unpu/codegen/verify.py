"""Native verification: generate, build with the host gcc, compare with LiteRT BUILTIN_REF.

The generated model.c, a small stdin/stdout harness and firmware/kernels/ref/*.c are compiled into
one test executable (-O2 -std=c99 -Wall); N seeded random inputs are fed over stdin and the
outputs compared element by element with LiteRT's reference kernels
(`OpResolverType.BUILTIN_REF`). A crashing kernel cannot take the caller down, and every
subprocess has a timeout.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from elftools.elf.elffile import ELFFile

from unpu.codegen import generate
from unpu.codegen.emit import KERNELS_DIR
from unpu.graph import reference_interpreter

BUILD_TIMEOUT_S = 600
RUN_TIMEOUT_S = 300
CFLAGS = ["-O2", "-std=c99", "-Wall"]

HARNESS = r"""/* unpu.codegen verification harness: reads N inputs from stdin, writes N outputs. */
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

static model_input_t in_buf[MODEL_INPUT_ELEMENTS];
static model_output_t out_buf[MODEL_OUTPUT_ELEMENTS];

int main(int argc, char **argv) {
    long i, n = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    for (i = 0; i < n; ++i) {
        if (fread(in_buf, 1, MODEL_INPUT_SIZE, stdin) != MODEL_INPUT_SIZE) return 3;
        if (model_run(in_buf, out_buf) != 0) return 4;
        if (fwrite(out_buf, 1, MODEL_OUTPUT_SIZE, stdout) != MODEL_OUTPUT_SIZE) return 5;
    }
    fflush(stdout);
    return 0;
}
"""


class BuildError(Exception):
    """The generated C (or the kernel library) did not compile."""


@dataclass
class VerifyResult:
    n_inputs: int
    max_abs_diff: float  # in output LSB for int8 outputs, in value units for float outputs
    mismatched_inputs: int
    arena_bytes: int
    weights_bytes: int
    report: dict = field(default_factory=dict)
    warnings: str = ""
    code_bytes: int = 0  # .text of the generated model.c, host gcc -O2 (kernels not included)
    kernels_code_bytes: int = 0  # .text of the kernel library objects it links

    @property
    def ok(self) -> bool:
        return self.mismatched_inputs == 0

    def summary(self) -> str:
        diff = int(self.max_abs_diff) if float(self.max_abs_diff).is_integer() else f"{self.max_abs_diff:g}"
        return (f"{self.n_inputs} inputs, max abs diff {diff}, arena {self.arena_bytes} B, "
                f"weights {self.weights_bytes} B, code {self.code_bytes} B + kernels {self.kernels_code_bytes} B "
                f"(host .text)" + ("" if self.ok else f", {self.mismatched_inputs} inputs differ"))


def build(out_dir: Path, kernels_dir: Path | None = None, cc: str = "gcc") -> tuple[Path, str]:
    """Compile out_dir/model.c + harness + kernels/ref/*.c into out_dir/harness; (path, warnings)."""
    kernels_dir = Path(kernels_dir or KERNELS_DIR)
    ref = sorted((kernels_dir / "ref").glob("*.c"))
    if not ref:
        raise BuildError(f"no kernel sources in {kernels_dir / 'ref'}")
    if shutil.which(cc) is None:
        raise BuildError(f"{cc} not found")
    (out_dir / "harness.c").write_text(HARNESS)
    exe = out_dir / "harness"
    cmd = [cc, *CFLAGS, "-I", str(out_dir), "-I", str(kernels_dir), "-I", str(kernels_dir / "ref"),
           str(out_dir / "model.c"), str(out_dir / "harness.c"), *map(str, ref), "-lm", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        raise BuildError(proc.stderr.strip()[-3000:])
    return exe, proc.stderr.strip()


def text_bytes(sources: list[Path], include: list[Path], cc: str = "gcc") -> int:
    """Size of the .text sections of `sources` compiled with CFLAGS (read with pyelftools)."""
    total = 0
    with tempfile.TemporaryDirectory(prefix="unpu_size_") as tmp:
        for src in sources:
            obj = Path(tmp) / (src.stem + ".o")
            cmd = [cc, *CFLAGS, *(f"-I{d}" for d in include), "-c", str(src), "-o", str(obj)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            if proc.returncode != 0:
                raise BuildError(proc.stderr.strip()[-3000:])
            with open(obj, "rb") as f:
                total += sum(sec.data_size for sec in ELFFile(f).iter_sections() if sec.name.startswith(".text"))
    return total


def run_native(exe: Path, inputs: np.ndarray, out_dtype, out_count: int) -> np.ndarray:
    n = inputs.shape[0]
    proc = subprocess.run([str(exe), str(n)], input=np.ascontiguousarray(inputs).tobytes(), capture_output=True,
                          timeout=RUN_TIMEOUT_S)
    if proc.returncode != 0:
        raise BuildError(f"generated model exited with status {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return np.frombuffer(proc.stdout, dtype=out_dtype).reshape(n, out_count)


def random_inputs(detail: dict, n: int, seed: int) -> np.ndarray:
    """Seeded random inputs covering the whole int8 range (float inputs: the quantizable range)."""
    rng = np.random.default_rng(seed)
    shape = (n, *detail["shape"])
    if detail["dtype"] == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    lo, hi = -1.0, 1.0
    q = detail.get("quantization") or (0.0, 0)
    if q[0]:
        lo, hi = (-128 - q[1]) * q[0], (127 - q[1]) * q[0]
    return rng.uniform(lo, hi, size=shape).astype(detail["dtype"])


def reference_outputs(data: bytes, inputs: np.ndarray) -> np.ndarray:
    interp, _ = reference_interpreter(data)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for x in inputs:
        interp.set_tensor(inp["index"], x.reshape(inp["shape"]))
        interp.invoke()
        outs.append(interp.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(outs)


def input_detail(data: bytes) -> tuple[dict, dict]:
    interp, _ = reference_interpreter(data)
    return interp.get_input_details()[0], interp.get_output_details()[0]


def verify(data: bytes, n_inputs: int = 20, seed: int = 0, kernels_dir: Path | None = None,
           workdir: Path | None = None, name: str = "model") -> VerifyResult:
    """Generate, build natively and compare with LiteRT BUILTIN_REF on n_inputs random inputs.
    CodegenError if the model cannot be generated, BuildError if it does not build or run."""
    with tempfile.TemporaryDirectory(prefix="unpu_codegen_") as tmp:
        out_dir = Path(workdir) if workdir is not None else Path(tmp)
        report = generate(data, out_dir, name=name)
        exe, warnings = build(out_dir, kernels_dir)
        kdir = Path(kernels_dir or KERNELS_DIR)
        include = [out_dir, kdir, kdir / "ref"]
        code = text_bytes([out_dir / "model.c"], include)
        kernels_code = text_bytes(sorted((kdir / "ref").glob("*.c")), include)
        in_d, out_d = input_detail(data)
        inputs = random_inputs(in_d, n_inputs, seed)
        expected = reference_outputs(data, inputs)
        got = run_native(exe, inputs, expected.dtype, expected.shape[1])
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    per_input = diff.reshape(n_inputs, -1).max(axis=1) if diff.size else np.zeros(n_inputs)
    return VerifyResult(n_inputs, float(diff.max()) if diff.size else 0.0, int((per_input > 0).sum()),
                        report["arena_bytes"], report["weights_bytes"], report, warnings, code, kernels_code)
