"""The on-device kernel property check (firmware/kernels/check/kernel_check.c): built for a QEMU
board's port with a kernel variant linked over the reference kernels, run under qemu-system-arm, its
`op <name> cases <n> mismatches <m>` lines parsed. Real gcc, real QEMU, real kernels."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from helpers import REPO

FIRMWARE = REPO / "firmware"
CHECK_SOURCE = FIRMWARE / "kernels" / "check" / "kernel_check.c"
OP_LINE = re.compile(r"^op (\w+) cases (\d+) mismatches (\d+)\s*$", re.M)
_SYMBOL = re.compile(r"^[0-9a-f]+ ([TW]) (\w+)$", re.M)


@dataclass
class CheckRun:
    returncode: int
    output: str
    ops: dict[str, tuple[int, int]]     # op -> (cases, mismatches)


def build_kernel_check(port: str, variant: str, out: Path, cases: int, seed: int | None = None,
                       extra_sources: list[Path] | None = None) -> Path:
    """The checker's ELF for firmware/ports/<port>, with KERNELS=<variant>, in `out`."""
    flags = [f"-DCHECK_CASES={cases}"] + ([f"-DCHECK_SEED={seed}u"] if seed is not None else [])
    sources = " ".join(str(s) for s in [CHECK_SOURCE, *(extra_sources or [])])
    command = ["make", "-s", "-f", str(FIRMWARE / "ports" / port / "Makefile"), f"FW_ROOT={FIRMWARE}",
               f"BUILD_DIR={out}", f"KERNELS={variant}", f"APP_SRCS={sources}", f"EXTRA_CFLAGS={' '.join(flags)}"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "app.elf"


def overridden_kernels(elf: Path) -> set[str]:
    """The operators whose unpu_<op> the variant defines (a strong symbol; the reference's are weak)."""
    proc = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, timeout=60, check=True)
    symbols = dict((name, kind) for kind, name in _SYMBOL.findall(proc.stdout))
    kernels = [name.removeprefix("unpu_ref_") for name in symbols if name.startswith("unpu_ref_")]
    return {re.sub(r"_s8$", "", k) for k in kernels if symbols.get(f"unpu_{k}") == "T"}


def run_kernel_check(elf: Path, machine: str, timeout: float = 300) -> CheckRun:
    """The checker under qemu-system-arm (UART on stdout, exit code by semihosting)."""
    command = ["qemu-system-arm", "-M", machine, "-kernel", str(elf), "-nographic", "-monitor", "none",
               "-semihosting-config", "enable=on,target=native"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    ops = {name: (int(cases), int(bad)) for name, cases, bad in OP_LINE.findall(proc.stdout)}
    return CheckRun(proc.returncode, proc.stdout, ops)
