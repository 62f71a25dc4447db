"""Emulated Cortex-M boards: QEMU `mps3-an547` (Cortex-M55) and `mps2-an386` (Cortex-M4F).

`build` generates C for the model (`unpu.codegen`), compiles it with the portable harness
(firmware/harness), the codegen runner, the kernels (firmware/kernels/ref) and the board's port
(firmware/ports/<port>, Makefile there) with Debian's arm-none-eabi-gcc, and caches the ELF by the
content of everything that went into it. Memory comes from the ELF (pyelftools).

`open` launches QEMU with `-icount shift=0` (deterministic: 1 instruction = 1 ns of virtual time),
semihosting (the firmware's exit code is QEMU's), and the UART on a TCP chardev on 127.0.0.1 with
`nodelay=on`; QEMU runs in its own process group, dies with this process (PR_SET_PDEATHSIG) and is
killed on every exit path. The link is then driven by the same `DutClient` as every board.

Timing: the firmware reports SysTick ticks (QEMU's DWT cycle counter does not count). They are
turned into instruction counts (ticks x 1e9 / timer Hz) and latencies are those instruction counts
at the board YAML's nominal `cpu.clock_hz`, assuming one instruction per cycle (`latency.method`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from unpu.boards.base import Board, BoardError, DeviceCrashed, Firmware, QuantizedModel
from unpu.cache import Cache, file_digest, key_of, source_digest
from unpu.protocol import STAGES, DutClient, StageTime, Transcript

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
BUILD_TIMEOUT_S = 600
TOOL_TIMEOUT_S = 30
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 5

# tool -> Debian package that provides it
TOOLS = {"arm-none-eabi-gcc": "gcc-arm-none-eabi", "qemu-system-arm": "qemu-system-arm", "make": "make"}
# exit codes of firmware/ports/cmsdk_common/startup.c's fault handlers
FAULTS = {70: "NMI", 71: "HardFault", 72: "MemManage fault", 73: "BusFault", 74: "UsageFault",
          75: "SecureFault", 76: "unexpected interrupt"}


def check_tools() -> None:
    """BoardError naming the Debian package when the toolchain or QEMU is missing."""
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise BoardError(f"{tool} not found: install the Debian package {package} (make debian-packages)")
    nano = _run(["arm-none-eabi-gcc", "-print-file-name=nano.specs"]).strip()
    if not os.path.isabs(nano):
        raise BoardError("newlib-nano not found for arm-none-eabi-gcc: install the Debian package "
                         "libnewlib-arm-none-eabi (make debian-packages)")


def _run(cmd: list[str], timeout: float = TOOL_TIMEOUT_S, **kw) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True, **kw).stdout


def arena_bytes(elf: Path) -> int:
    """Size of the .unpu_arena section the port's linker script places (UNPU_ARENA_ATTR)."""
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".unpu_arena")
        return int(sec["sh_size"]) if sec is not None else 0


def _c_identifier_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64] or "model"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent dies (no orphaned QEMU)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class QemuBoard(Board):
    bit_exact = True
    source_latency = "emulated"

    # -- build ---------------------------------------------------------------------------------
    @property
    def port(self) -> str:
        return str(self.board.firmware_port)

    @property
    def port_dir(self) -> Path:
        return FIRMWARE / "ports" / self.port

    def _cflags(self, model_id: str) -> list[str]:
        flags = [f"-DUNPU_MODEL_ID='\"{_c_identifier_safe(model_id)}\"'"]
        # board.firmware_cflags: extra -D options (e.g. -DUNPU_TEST_HANG for the timeout test)
        for flag in map(str, self.board.get("firmware_cflags") or []):
            if not re.fullmatch(r"-D\w+(=\w+)?", flag):
                raise BoardError(f"board.firmware_cflags accepts only -DNAME or -DNAME=VALUE, got {flag!r}")
            flags.append(flag)
        return flags

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        check_tools()
        if not (self.port_dir / "Makefile").exists():
            raise BoardError(f"no firmware port {self.port_dir.relative_to(REPO)}")
        from unpu import stages
        from unpu.boards.cfirmware import sources_digest

        data = model.path.read_bytes()
        post = str(self.cfg.model.get("post", "none"))
        cflags = self._cflags(stages.model_id(self.cfg))
        gcc = _run(["arm-none-eabi-gcc", "--version"]).splitlines()[0]
        parts = {"model": model.digest, "post": post, "port": self.port, "cflags": cflags, "gcc": gcc,
                 "firmware": sources_digest(FIRMWARE / "harness", FIRMWARE / "kernels",
                                            FIRMWARE / "ports" / "cmsdk_common", self.port_dir),
                 "code": source_digest("unpu.codegen", "unpu.boards.qemu", "unpu.boards.cfirmware")}
        build_id = key_of(parts)[:12]
        cache = Cache(self.cfg.cache.dir)
        entry = cache.get_or_make("qemu_firmware", parts, lambda d: self._build(data, d, post, cflags, build_id, gcc))
        meta = entry.meta()
        elf = entry.file("app.elf")
        nominal = int(self.board.cpu.clock_hz)
        return Firmware(
            image=elf, digest=file_digest(elf), build_id=build_id, arena_bytes=int(meta["memory"]["memory/arena"]),
            metrics=dict(meta["memory"]),
            tags={"runtime": "unpu.codegen", "arena.method": "static plan (unpu.codegen)",
                  "firmware.port": self.port, "firmware.cc": gcc, "firmware.build_id": build_id,
                  "qemu.machine": str(self.board.toolchain.qemu_machine),
                  "cache.firmware": "hit" if entry.hit else "miss",
                  "latency.method": (f"instructions (QEMU -icount shift=0, SysTick ticks x 1e9 / timer Hz) at the "
                                     f"nominal cpu.clock_hz {nominal} Hz, assuming 1 instruction per cycle")},
            artifacts={"firmware/app.elf": elf, "firmware/size.txt": entry.file("size.txt"),
                       "firmware/app.map": entry.file("app.map"), "firmware/model.json": entry.file("model.json"),
                       "firmware/build.log": entry.file("build.log")},
        )

    def _build(self, data: bytes, out: Path, post: str, cflags: list[str], build_id: str, gcc: str) -> dict:
        from unpu.boards.cfirmware import generate_model, memory_metrics, size_report
        from unpu.codegen import CodegenError

        model_dir = out / "model"
        try:
            report, post_flags = generate_model(data, model_dir, post)
            cflags = cflags + post_flags
        except CodegenError as exc:
            raise BoardError(f"unpu.codegen cannot compile this model: {exc}") from None
        build_dir = out / "build"
        cmd = ["make", "-C", str(self.port_dir), f"-j{min(os.cpu_count() or 1, 8)}", f"BUILD_DIR={build_dir}",
               f"MODEL_DIR={model_dir}", f"BUILD_ID={build_id}", "EXTRA_CFLAGS=" + " ".join(cflags)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BoardError(f"firmware build exceeded {BUILD_TIMEOUT_S} s") from None
        (out / "build.log").write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
        if proc.returncode != 0:
            overflow = re.search(r"region `(\w+)' overflowed by (\d+) bytes", proc.stderr)
            if overflow:
                raise BoardError(f"the firmware does not fit {self.board.name}: region {overflow.group(1)} "
                                 f"overflowed by {overflow.group(2)} B")
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise BoardError(f"firmware build failed (make exit {proc.returncode}): {tail[-400:]}")
        for name in ("app.elf", "app.map"):
            shutil.copy2(build_dir / name, out / name)
        shutil.copy2(model_dir / "model.json", out / "model.json")
        mem = memory_metrics(out / "app.elf")
        mem["memory/arena"] = arena_bytes(out / "app.elf")
        (out / "size.txt").write_text(
            f"{self.board.name} ({self.board.toolchain.qemu_machine}) firmware {build_id}, {gcc}\n"
            f"flash = text + rodata + data; ram = data + bss (incl. heap, stack and the arena .unpu_arena)\n\n"
            + size_report(out / "app.elf") + f"{'memory/arena':<24}{mem['memory/arena']:>12}\n")
        shutil.rmtree(build_dir / "obj", ignore_errors=True)
        log.info("built %s firmware %s: flash %d B, ram %d B, arena %d B", self.board.name, build_id,
                 mem["memory/flash"], mem["memory/ram"], mem["memory/arena"])
        return {"memory": mem, "codegen": {k: report[k] for k in ("arena_bytes", "weights_bytes", "macs")}}

    # -- run -----------------------------------------------------------------------------------
    def qemu_command(self, elf: Path, port: int) -> list[str]:
        return ["qemu-system-arm", "-M", str(self.board.toolchain.qemu_machine), "-kernel", str(elf),
                "-nographic", "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
                "-chardev", f"socket,id=s0,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
                "-serial", "chardev:s0", "-monitor", "none"]

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        check_tools()
        log_path = workdir / "qemu.log"
        for attempt in range(3):  # the free port can be taken between probe and QEMU's bind
            port = _free_port()
            cmd = self.qemu_command(firmware.image, port)
            with open(log_path, "wb") as qlog:
                qlog.write((" ".join(cmd) + "\n").encode())
                qlog.flush()
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=_die_with_parent)
            try:
                link = self._connect(proc, port, log_path)
            except BaseException:
                _stop(proc)
                if attempt < 2 and "Address already in use" in log_path.read_text(errors="replace"):
                    continue
                firmware.artifacts["device/qemu.log"] = log_path
                raise
            break
        try:
            client = DutClient(link, float(self.cfg.bench.timeout_s), transcript,
                               check_alive=lambda: _check_alive(proc, log_path))
            client.connect()
            yield client
        finally:
            try:
                link.close()
            finally:
                _stop(proc)
                firmware.artifacts["device/qemu.log"] = log_path

    def _connect(self, proc: subprocess.Popen, port: int, log_path: Path):
        import serial

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            _check_alive(proc, log_path)
            try:
                return serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=0.2)
            except serial.SerialException as exc:
                if time.monotonic() > deadline:
                    raise BoardError(f"QEMU did not open its serial port 127.0.0.1:{port} within "
                                     f"{START_TIMEOUT_S} s: {exc}") from None
                time.sleep(0.02)

    # -- metrics -------------------------------------------------------------------------------
    def measurement_metrics(self, measurement: Any, metrics: dict[str, float]) -> dict[str, float]:
        """instructions/<stage> and instruction-based latencies at the nominal clock.

        With -icount shift=0 one instruction takes 1 ns of virtual time, so the SysTick count of a
        stage is instructions x timer Hz / 1e9. The measurement's windows are rewritten to the
        same instruction-based µs, so the per-window metrics agree with the medians.
        """
        from unpu.measure import latency_metrics, summary

        timer_hz = float(measurement.clock_hz)
        nominal = float(self.board.cpu.clock_hz)
        out: dict[str, float] = {}
        for window in measurement.windows:
            for stage, st in list(window.stages.items()):
                instr = st.cycles * 1e9 / timer_hz
                window.stages[stage] = StageTime(st.cycles, st.us_reported, instr / nominal * 1e6)
            # m-lap-us is virtual time: 1 us = 1000 instructions
            window.window_us = window.window_us * 1e3 / nominal * 1e6
        for stage in (*STAGES, "total"):
            if stage == "total":
                series = [sum(w.stages[s].cycles for s in STAGES) * 1e9 / timer_hz for w in measurement.windows]
            else:
                series = [w.stages[stage].cycles * 1e9 / timer_hz for w in measurement.windows]
            s = summary(series)
            out[f"instructions/{stage}"] = round(s["median"])
            if stage == "inference":
                out["instructions/inference_min"] = round(s["min"])
                out["instructions/inference_max"] = round(s["max"])
        out.update(latency_metrics(measurement))
        return out


def _check_alive(proc: subprocess.Popen, log_path: Path) -> None:
    code = proc.poll()
    if code is None:
        return
    if code < 0:
        reason = f"killed by signal {signal.Signals(-code).name}"
    elif code in FAULTS:
        reason = f"firmware {FAULTS[code]} (exit code {code})"
    else:
        reason = f"exit code {code}"
    tail = log_path.read_text(errors="replace").strip().splitlines()[1:][-3:] if log_path.exists() else []
    raise DeviceCrashed(f"QEMU exited ({reason})" + (f": {' | '.join(tail)}" if tail else ""))


def _stop(proc: subprocess.Popen) -> None:
    """Terminate QEMU's whole process group; SIGKILL if it does not go."""
    if proc.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
                break
            except subprocess.TimeoutExpired:
                continue
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.error("QEMU (pid %d) did not exit after SIGKILL", proc.pid)
