"""Every QEMU board's kernel variant against the reference kernels, on the emulated core itself: the
property checker (firmware/kernels/check/kernel_check.c) draws CASES random cases per operator (odd
channel counts, tails no vector width divides, strides, dilation, padding, zero points -128/127,
shifts -31..+30, biases) and compares the variant's output with the reference's byte for byte.

Budget: 2000 cases per operator take about 12 s of QEMU per board (9 operators; measured on the
qemu_m55 checker built with the reference kernels), plus a 2 s build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers.kernel_check import build_kernel_check, overridden_kernels, run_kernel_check
from unpu.boards.catalog import specs
from unpu.boards.firmware import kernel_variant

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="qemu-system-arm / arm-none-eabi-gcc not installed (`make debian-packages`)")

CASES = 2000
QEMU_BOARDS = {name: spec for name, spec in specs().items()
               if spec.adapter and spec.adapter._target_.endswith(".QemuBoard")}
VARIANT_BOARDS = sorted(name for name, spec in QEMU_BOARDS.items() if kernel_variant(spec.cpu) != "ref")

# a faulty kernel (test double): ADD with a tail bug, its last output byte wrong when the channel
# count is odd and above 16
FAULTY_ADD = """
#include "unpu_kernels.h"
void unpu_add_s8(const unpu_elementwise_params_t *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    unpu_ref_add_s8(p, a, b, out);
    if (p->output.c > 16 && p->output.c % 2)
        out[p->output.n * p->output.h * p->output.w * p->output.c - 1] ^= 1;
}
"""


def _check(board: str, variant: str, out: Path, cases: int, extra: list[Path] | None = None):
    spec = QEMU_BOARDS[board]
    elf = build_kernel_check(spec.firmware_port, variant, out, cases, extra_sources=extra)
    return elf, run_kernel_check(elf, spec.toolchain.qemu_machine)


@pytest.mark.slow
@pytest.mark.parametrize("board", VARIANT_BOARDS or [pytest.param("none", marks=pytest.mark.skip("no board has a variant"))])
def test_variant_is_bit_exact_with_the_reference(board, tmp_path):
    variant = kernel_variant(QEMU_BOARDS[board].cpu)
    elf, run = _check(board, variant, tmp_path / "build", CASES)
    overridden = overridden_kernels(elf)
    assert overridden, f"{variant} overrides no kernel"
    missing = overridden - set(run.ops)
    assert not missing, f"the checker does not cover {sorted(missing)} that {variant} overrides:\n{run.output}"
    for op in sorted(overridden):
        assert run.ops[op] == (CASES, 0), f"{board} {variant} {op}:\n{run.output}"
    assert run.returncode == 0 and "check done mismatches 0" in run.output, run.output


@pytest.mark.slow
def test_checker_reports_a_faulty_kernel(tmp_path):
    board = "qemu_m55"
    faulty = tmp_path / "faulty_add.c"
    faulty.write_text(FAULTY_ADD)
    elf, run = _check(board, "ref", tmp_path / "build", 400, [faulty])
    assert overridden_kernels(elf) == {"add"}
    assert run.returncode == 1, run.output
    cases, mismatches = run.ops["add"]
    assert cases == 400 and mismatches > 0, run.output
    assert "first mismatch add case" in run.output and "output byte" in run.output
    assert run.ops["conv2d"] == (400, 0) and run.ops["softmax"] == (400, 0)
