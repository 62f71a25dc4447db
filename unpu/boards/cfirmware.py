"""Shared by the boards that compile C firmware (native, QEMU): the digest of the firmware sources,
the generated model code with its post-processing defines, and memory figures from the ELF.

Memory (pyelftools, allocated sections only, classified by flags so any toolchain's section names
work): text = executable, rodata = read-only data, data = writable PROGBITS (stored in flash, copied
to RAM), bss = NOBITS. memory/flash = text + rodata + data; memory/ram = data + bss (the arena and,
on MCU ports, the stack and heap regions the linker script reserves are in bss-like sections).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
HARNESS = FIRMWARE / "harness"
KERNELS = FIRMWARE / "kernels"


SOURCE_SUFFIXES = {".c", ".cc", ".cpp", ".h", ".s", ".S", ".ld", ".mk", ""}


def sources_digest(*roots: Path) -> str:
    """SHA-256 over every source file (path and content) under the given directories/files; build
    outputs (anything with another suffix, or under a `build` directory) do not count."""
    h = hashlib.sha256()
    for root in roots:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES
                       and "build" not in p.relative_to(root).parts) if root.is_dir() else [root]
        for path in files:
            h.update(str(path.relative_to(REPO)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def kernel_sources() -> list[Path]:
    return sorted((KERNELS / "ref").glob("*.c"))


def generate_model(model: bytes, out_dir: Path, post: str) -> tuple[dict, list[str]]:
    """unpu.codegen's model.c/model.h in out_dir, plus the -D flags runner_codegen.c needs for `post`."""
    from unpu.codegen import generate
    from unpu.codegen.reader import softmax_gemmlowp_params

    report = generate(model, out_dir)
    defines: list[str] = []
    out = report["output"]
    if post == "softmax" and out.get("dtype") == "int8":
        p = softmax_gemmlowp_params(1.0, float(out["scale"]))
        defines = ["-DUNPU_POST_SOFTMAX", f"-DUNPU_SOFTMAX_MULTIPLIER={p['input_multiplier']}",
                   f"-DUNPU_SOFTMAX_LEFT_SHIFT={p['input_left_shift']}", f"-DUNPU_SOFTMAX_DIFF_MIN={p['diff_min']}"]
    return report, defines


def elf_sections(path: Path) -> dict[str, int]:
    """Bytes of text, rodata, data and bss in an ELF (allocated sections only)."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    with open(path, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            flags, size = sec["sh_flags"], sec["sh_size"]
            if not flags & SH_FLAGS.SHF_ALLOC or sec.name.startswith(".tbss"):
                continue
            if sec["sh_type"] == "SHT_NOBITS":
                sizes["bss"] += size
            elif flags & SH_FLAGS.SHF_EXECINSTR:
                sizes["text"] += size
            elif flags & SH_FLAGS.SHF_WRITE:
                sizes["data"] += size
            else:
                sizes["rodata"] += size
    return sizes


def memory_metrics(path: Path) -> dict[str, float]:
    s = elf_sections(path)
    return {"memory/flash": s["text"] + s["rodata"] + s["data"], "memory/ram": s["data"] + s["bss"],
            "memory/text": s["text"], "memory/rodata": s["rodata"], "memory/data": s["data"], "memory/bss": s["bss"]}


def size_report(path: Path) -> str:
    """Per-section table (allocated sections) and the totals, as a text artifact."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    lines = [f"{'section':<24}{'type':<14}{'address':>12}{'bytes':>12}"]
    with open(path, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            if sec["sh_flags"] & SH_FLAGS.SHF_ALLOC:
                lines.append(f"{sec.name:<24}{sec['sh_type']:<14}{sec['sh_addr']:>#12x}{sec['sh_size']:>12}")
    lines.append("")
    lines += [f"{k:<24}{v:>12}" for k, v in memory_metrics(path).items()]
    return "\n".join(lines) + "\n"
