"""Analog Devices MAX78000 / MAX78002 (Cortex-M4F + CNN accelerator): one adapter, the chip from the
board YAML (`board.ai8x.device`).

Pre-flight: the TFLite graph lowered to ai8x layers (unpu.compilers.ai8x.lower) against the
device's limits from the YAML: CNN weight and bias memory, layer count, channels, dimensions,
supported operators (each refused operator is named).

Build (docs/vendors/maxim.md has the sources):
1. `$AI8X_PYTHON unpu/compilers/ai8x_checkpoint.py weights.npz unpu.pth.tar --arch unpu`: the
   requantized weights as the PyTorch checkpoint ai8xize reads (torch lives in the synthesis venv);
2. `$AI8X_PYTHON ai8xize.py --test-dir ... --prefix ... --checkpoint-file ... --config-file
   net.yaml --sample-input sample.npy --device MAX78000 ...` in $AI8X_SYNTHESIS: an MSDK project;
3. unpu's harness, port and runner join that project (the port's unpu.mk, included
   from its project.mk; its main.c known-answer test is moved aside) and
   `make -C <project> MAXIM_PATH=... TARGET=... BOARD=... UNPU_BUILD_H=...` builds build/<target>.elf.
Flash: the MSDK's OpenOCD, `-f interface/cmsis-dap.cfg -f target/<chip>.cfg -c "program <elf>
verify reset exit"`, retried once. Then the DUT protocol on the console UART (board.port).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import yaml

from unpu.artifacts import Firmware, QuantizedModel
from unpu.boards.base import Board, FlashStep
from unpu.boards.firmware import (
    build_defines,
    memory_metrics,
    plain_paths,
    write_build_header,
    write_size_report,
)
from unpu.boards.spec import BoardSpec, MemorySpec, Spec
from unpu.cache import file_digest, key_of
from unpu.compilers.ai8x import (
    AI8XIZE_TIMEOUT_S,
    Ai8xError,
    Device,
    Lowered,
    ai8xize_command,
    checkpoint_arrays,
    checkpoint_command,
    fit_problems,
    lower,
    network_yaml,
    parse_cnn_h,
    parse_load_input,
    sample_input,
)
from unpu.errors import BoardError, ToolError
from unpu.graph import GraphError
from unpu.tools import jobs, require_tool, run_logged, tool_version

log = logging.getLogger(__name__)

FLASH_TIMEOUT_S = 300
PROJECT_PREFIX = "unpu"
GCC_HOW = "install the Arm GNU toolchain (the MSDK installer ships it; or Debian's gcc-arm-none-eabi) and put it on PATH"


class Ai8xSpec(Spec):
    device: str                       # ai8xize --device and the MSDK TARGET
    board_name: str                   # MSDK BOARD (BSP) and ai8xize --board-name
    max_layers: int
    max_channels: int
    max_dim: int
    depthwise: bool                   # groups = channels supported
    openocd_interface: str
    openocd_target: str


class MaximMemory(MemorySpec):
    npu_bias_bytes: int


class MaximSpec(BoardSpec):
    memory: MaximMemory
    ai8x: Ai8xSpec                    # pins: [GPIO port, pin] each


class MaximBoard(Board):
    Spec = MaximSpec
    bit_exact = False        # weights are requantized to ai8x's power-of-two scales: not LiteRT's numerics

    # -- where things are ------------------------------------------------------------------------
    @property
    def device(self) -> Device:
        ai8x, mem = self.spec.ai8x, self.spec.memory
        return Device(name=ai8x.device, weight_bytes=int(mem.npu_weight_bytes), bias_bytes=mem.npu_bias_bytes,
                      data_instance_bytes=int(mem.npu_data_bytes) // 16, max_layers=ai8x.max_layers,
                      max_channels=ai8x.max_channels, max_dim=ai8x.max_dim, depthwise=ai8x.depthwise)

    @property
    def target(self) -> str:
        return self.spec.ai8x.device

    def msdk(self) -> Path:
        dev = self.target
        return self.tool_dir("sdk", f"Libraries/CMSIS/Device/Maxim/{dev}/Source/GCC/{dev.lower()}.mk")

    def synthesis(self) -> Path:
        env = self.tool("synthesis")
        path = self.tool_dir("synthesis", "ai8xize.py")
        if not (path / "izer" / "checkpoint.py").is_file():
            raise ToolError(f"{env.var}={path} has no izer/checkpoint.py: not ai8x-synthesis ({env.url})")
        return path

    def python(self, synthesis: Path) -> str:
        """$AI8X_PYTHON, else the synthesis checkout's own venv."""
        named = self.tool_file("python", executable=True)
        path = named or synthesis / ".venv" / "bin" / "python"
        if not os.access(path, os.X_OK):
            tool = self.tool("python")
            raise ToolError(f"no ai8x-synthesis Python at {path}: create its venv as its README says "
                            f"(python3.11 -m venv .venv; pip install -r requirements.txt) or set {tool.var} ({tool.url})")
        return str(path)

    def openocd(self, msdk: Path) -> str:
        """$OPENOCD, else the MSDK's own, else on PATH."""
        bundled = msdk / "Tools" / "OpenOCD" / "openocd"
        named = self.tool_file("openocd", executable=True) or (bundled if os.access(bundled, os.X_OK) else None)
        return str(named) if named else require_tool("openocd", f"the MSDK ships it in $MAXIM_PATH/Tools/OpenOCD "
                                                                f"({self.tool('sdk').url}); or set {self.tool('openocd').var}")

    # -- pipeline ----------------------------------------------------------------------------------
    def check_environment(self) -> None:
        msdk = self.msdk()
        synthesis = self.synthesis()
        python = self.python(synthesis)
        version = tool_version([python, "--version"], r"Python (\d+\.\d+\.\d+)", "ai8x-synthesis Python")
        if not version.startswith("3.11."):
            raise ToolError(f"{python} is Python {version}; ai8x-synthesis needs Python 3.11 (its pyproject.toml)")
        require_tool("arm-none-eabi-gcc", GCC_HOW)
        require_tool("make", "install GNU make (the MSDK installer ships it; Debian: make)")
        openocd = self.openocd(msdk)
        tool_version([openocd, "--version"], r"Open On-Chip Debugger (\S+)", "OpenOCD")
        scripts = msdk / "Tools" / "OpenOCD" / "scripts"
        if not (scripts / self.spec.ai8x.openocd_target).is_file():
            raise ToolError(f"no {self.spec.ai8x.openocd_target} in {scripts}: the MSDK's OpenOCD scripts are missing")
        self.require_port()

    def lowered(self, model: QuantizedModel) -> Lowered:
        return self.memo("ai8x", model.digest, lambda: self._lower(model))

    def _lower(self, model: QuantizedModel) -> Lowered:
        try:
            return lower(model.path.read_bytes(), self.device)
        except (Ai8xError, GraphError) as exc:
            raise BoardError(str(exc)) from None

    def preflight(self, model: QuantizedModel) -> None:
        low, dev = self.lowered(model), self.device
        problems = fit_problems(low, dev)
        if problems:
            raise BoardError(f"{model.name} cannot run on {self.spec.name}: " + "; ".join(problems))
        log.info("%s on %s: %d ai8x layers, %s B of %s B weight memory, %s B of %s B bias memory", model.name,
                 self.spec.name, len(low.layers), f"{low.weight_bytes:,}", f"{dev.weight_bytes:,}",
                 f"{low.bias_bytes:,}", f"{dev.bias_bytes:,}")

    # -- commands (pure) ---------------------------------------------------------------------------
    def make_command(self, project: Path, msdk: Path, build_h: Path) -> list[str]:
        return plain_paths(["make", "-C", str(project), jobs(), f"MAXIM_PATH={msdk}", f"TARGET={self.target}",
                            f"BOARD={self.spec.ai8x.board_name}", f"UNPU_BUILD_H={build_h}"])

    def flash_command(self, openocd: str, msdk: Path, elf: Path) -> list[str]:
        """MSDK user guide, "Flashing on the Command-Line" (flash and exit), plus reset to run it."""
        return [openocd, "-s", str(msdk / "Tools" / "OpenOCD" / "scripts"), "-f", self.spec.ai8x.openocd_interface,
                "-f", self.spec.ai8x.openocd_target, "-c", f"program {elf} verify reset exit"]

    # -- build ---------------------------------------------------------------------------------------
    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        msdk, synthesis = self.msdk(), self.synthesis()
        python = self.python(synthesis)
        out = workdir / "ai8x"
        out.mkdir(parents=True, exist_ok=True)
        build_log = out / "build.log"
        npz, config, sample = self._inputs(model, out)
        checkpoint = out / f"{PROJECT_PREFIX}.pth.tar"
        run_logged(checkpoint_command(python, npz, checkpoint), build_log, "ai8x checkpoint (torch.save)")
        run_logged(ai8xize_command(python, synthesis, out / "generated", PROJECT_PREFIX, checkpoint, config, sample,
                                   self.target, self.spec.ai8x.board_name),
                   build_log, "ai8xize.py", AI8XIZE_TIMEOUT_S, cwd=synthesis)
        project = out / "generated" / PROJECT_PREFIX
        metrics, defines = self._adopt_project(model, project)
        build_h = write_build_header(out / "unpu_build.h", defines)
        run_logged(self.make_command(project, msdk, build_h), build_log, f"{self.target} firmware build (MSDK make)")
        elf = project / "build" / f"{self.target.lower()}.elf"
        return self._record(elf, project, build_log, metrics, defines, config)

    def _inputs(self, model: QuantizedModel, out: Path) -> tuple[Path, Path, Path]:
        low = self.lowered(model)
        npz, config, sample = out / "weights.npz", out / "network.yaml", out / "sample.npy"
        np.savez(npz, **checkpoint_arrays(low))
        config.write_text(yaml.safe_dump(network_yaml(low, self.device), sort_keys=False))
        np.save(sample, sample_input(low), allow_pickle=False)
        return npz, config, sample

    def _adopt_project(self, model: QuantizedModel, project: Path) -> tuple[dict[str, float], dict[str, str]]:
        """Read what ai8xize generated, move its main.c aside and hook the port's unpu.mk into project.mk."""
        main_c = (project / "main.c").read_text()
        try:
            metrics = parse_cnn_h((project / "cnn.h").read_text())
            loads = parse_load_input(main_c)
        except Ai8xError as exc:
            raise BoardError(str(exc)) from None
        (project / "main.c").rename(project / "ai8x_kat_main.c.txt")
        with open(project / "project.mk", "a") as f:
            f.write(f"\n# added by unpu\ninclude {self.port_dir / 'unpu.mk'}\n")
        return metrics, self._defines(model, loads, main_c)

    def _defines(self, model: QuantizedModel, loads: list[tuple[int, str, int]], main_c: str) -> dict[str, str]:
        h, w, c = self.lowered(model).input_shape
        bad = [(name, n) for _, name, n in loads if n != h * w or not re.fullmatch(r"input_\d+", name)]
        if bad or len(loads) != -(-c // 4):
            raise BoardError(f"ai8xize's load_input() does not load {h}x{w}x{c} HWC input as unpu packs it: {loads}")
        enable = re.search(r"cnn_enable\(([^;]*)\);", main_c)
        if enable is None:
            raise BoardError("the generated main.c has no cnn_enable(...) call")
        ts, st = self.spec.pins.timestamp, self.spec.pins.stage
        build_id = key_of({"model": model.digest, "board": self.spec.name, "loads": loads})[:12]
        return {**build_defines(self.context, build_id),
                "UNPU_AI8X_INPUT_H": str(h), "UNPU_AI8X_INPUT_W": str(w), "UNPU_AI8X_INPUT_C": str(c),
                "UNPU_AI8X_INPUT_CHUNKS": str(len(loads)),
                "UNPU_AI8X_INPUT_ADDRS": "{" + ", ".join(f"0x{a:08x}u" for a, _, _ in loads) + "}",
                "UNPU_AI8X_INPUT_FIRST_CH": "{" + ", ".join(name.split("_")[1] + "u" for _, name, _ in loads) + "}",
                "UNPU_AI8X_CNN_ENABLE()": f"cnn_enable({enable.group(1).strip()})",
                "UNPU_PIN_TS_PORT": str(int(ts[0])), "UNPU_PIN_TS_PIN": str(int(ts[1])),
                "UNPU_PIN_STAGE_PORT": str(int(st[0])), "UNPU_PIN_STAGE_PIN": str(int(st[1]))}

    def _record(self, elf: Path, project: Path, build_log: Path, metrics: dict[str, float],
                defines: dict[str, str], config: Path) -> Firmware:
        size = write_size_report(elf, build_log.parent / "size.txt")
        build_id = defines["UNPU_BUILD_ID"].strip('"')
        artifacts = {"firmware/app.elf": elf, "firmware/size.txt": size, "firmware/build.log": build_log,
                     "compiler/network.yaml": config, "compiler/cnn.h": project / "cnn.h"}
        if (project / "log.txt").exists():
            artifacts["compiler/ai8xize_log.txt"] = project / "log.txt"
        return Firmware(image=elf, digest=file_digest(elf), build_id=build_id, arena_bytes=0,
                        metrics={**memory_metrics(elf), **metrics},
                        tags={"firmware.port": self.spec.firmware_port, "firmware.build_id": build_id,
                              "ai8x.device": self.target, "ai8x.board": self.spec.ai8x.board_name,
                              "ai8x.numerics": "weights requantized to ai8x power-of-two scales: output differs from LiteRT"},
                        artifacts=artifacts)

    # -- flash and run -------------------------------------------------------------------------------
    def flash_steps(self, firmware: Firmware, workdir: Path) -> list[FlashStep]:
        msdk = self.msdk()
        return [FlashStep(self.flash_command(self.openocd(msdk), msdk, firmware.image),
                          f"OpenOCD flash of the {self.target}", timeout_s=FLASH_TIMEOUT_S)]
