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
3. unpu's harness, port and runner join that project (firmware/ports/max78000/unpu.mk, included
   from its project.mk; its main.c known-answer test is moved aside) and
   `make -C <project> MAXIM_PATH=... TARGET=... BOARD=... UNPU_BUILD_H=...` builds build/<target>.elf.
Flash: the MSDK's OpenOCD, `-f interface/cmsis-dap.cfg -f target/<chip>.cfg -c "program <elf>
verify reset exit"`, retried once. Then the DUT protocol on the console UART (board.port).
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.boards.toolchain import (c_string, require_dir, require_port, require_tool, run_logged, run_with_retry,
                                   serial_link, tool_version, write_build_header)
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

PORT_DIR = Path(__file__).resolve().parents[2] / "firmware" / "ports" / "max78000"
FLASH_TIMEOUT_S = 300
PROJECT_PREFIX = "unpu"
GCC_HOW = "install the Arm GNU toolchain (the MSDK installer ships it; or Debian's gcc-arm-none-eabi) and put it on PATH"


class MaximBoard(Board):
    source_latency = "measured"
    bit_exact = False        # weights are requantized to ai8x's power-of-two scales: not LiteRT's numerics

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self._lowered: dict[str, object] = {}

    # -- where things are ------------------------------------------------------------------------
    @property
    def device(self):
        from unpu.compilers.ai8x import device_from_board

        return device_from_board(self.board)

    @property
    def target(self) -> str:
        return str(self.board.ai8x.device)

    def msdk(self) -> Path:
        tc = self.board.toolchain
        dev = self.target
        return require_dir(str(tc.sdk_env), f"the Analog Devices MSDK ({tc.sdk_url})",
                           f"Libraries/CMSIS/Device/Maxim/{dev}/Source/GCC/{dev.lower()}.mk")

    def synthesis(self) -> Path:
        tc = self.board.toolchain
        path = require_dir(str(tc.synthesis_env), f"an ai8x-synthesis checkout ({tc.synthesis_url})", "ai8xize.py")
        if not (path / "izer" / "checkpoint.py").is_file():
            raise BoardError(f"{tc.synthesis_env}={path} has no izer/checkpoint.py: not ai8x-synthesis ({tc.synthesis_url})")
        return path

    def python(self, synthesis: Path) -> str:
        var = str(self.board.toolchain.python_env)
        path = Path(os.environ.get(var) or synthesis / ".venv" / "bin" / "python").expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BoardError(f"no ai8x-synthesis Python at {path}: create its venv as its README says "
                             f"(python3.11 -m venv .venv; pip install -r requirements.txt) or set {var}")
        return str(path)

    def openocd(self, msdk: Path) -> str:
        var = str(self.board.toolchain.openocd_env)
        if os.environ.get(var):
            path = Path(os.environ[var]).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise BoardError(f"{var}={path} is not an executable OpenOCD")
            return str(path)
        bundled = msdk / "Tools" / "OpenOCD" / "openocd"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
        return require_tool("openocd", f"the MSDK ships it in $MAXIM_PATH/Tools/OpenOCD ({self.board.toolchain.sdk_url}); "
                                       f"or set {var}")

    # -- pipeline ----------------------------------------------------------------------------------
    def check_environment(self) -> None:
        msdk = self.msdk()
        synthesis = self.synthesis()
        python = self.python(synthesis)
        version = tool_version([python, "--version"], r"Python (\d+\.\d+\.\d+)", "ai8x-synthesis Python")
        if not version.startswith("3.11."):
            raise BoardError(f"{python} is Python {version}; ai8x-synthesis needs Python 3.11 (its pyproject.toml)")
        require_tool("arm-none-eabi-gcc", GCC_HOW)
        require_tool("make", "install GNU make (the MSDK installer ships it; Debian: make)")
        openocd = self.openocd(msdk)
        tool_version([openocd, "--version"], r"Open On-Chip Debugger (\S+)", "OpenOCD")
        scripts = msdk / "Tools" / "OpenOCD" / "scripts"
        if not (scripts / str(self.board.ai8x.openocd_target)).is_file():
            raise BoardError(f"no {self.board.ai8x.openocd_target} in {scripts}: the MSDK's OpenOCD scripts are missing")
        require_port(self.board)

    def lowered(self, model: QuantizedModel):
        if model.digest not in self._lowered:
            from unpu.compilers.ai8x import Ai8xError, lower
            from unpu.graph import GraphError

            try:
                self._lowered[model.digest] = lower(model.path.read_bytes(), self.device)
            except (Ai8xError, GraphError) as exc:
                raise BoardError(str(exc)) from None
        return self._lowered[model.digest]

    def preflight(self, model: QuantizedModel) -> None:
        from unpu.compilers.ai8x import fit_problems

        low, dev = self.lowered(model), self.device
        problems = fit_problems(low, dev)
        if problems:
            raise BoardError(f"{model.name} cannot run on {self.board.name}: " + "; ".join(problems))
        log.info("%s on %s: %d ai8x layers, %s B of %s B weight memory, %s B of %s B bias memory", model.name,
                 self.board.name, len(low.layers), f"{low.weight_bytes:,}", f"{dev.weight_bytes:,}",
                 f"{low.bias_bytes:,}", f"{dev.bias_bytes:,}")

    # -- commands (pure) ---------------------------------------------------------------------------
    def make_command(self, project: Path, msdk: Path, build_h: Path) -> list[str]:
        return ["make", "-C", str(project), f"-j{min(os.cpu_count() or 1, 8)}", f"MAXIM_PATH={msdk}",
                f"TARGET={self.target}", f"BOARD={self.board.ai8x.board_name}", f"UNPU_BUILD_H={build_h}"]

    def flash_command(self, openocd: str, msdk: Path, elf: Path) -> list[str]:
        """MSDK user guide, "Flashing on the Command-Line" (flash and exit), plus reset to run it."""
        return [openocd, "-s", str(msdk / "Tools" / "OpenOCD" / "scripts"), "-f", str(self.board.ai8x.openocd_interface),
                "-f", str(self.board.ai8x.openocd_target), "-c", f"program {elf} verify reset exit"]

    # -- build ---------------------------------------------------------------------------------------
    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        from unpu.compilers.ai8x import AI8XIZE_TIMEOUT_S, ai8xize_command, checkpoint_command

        msdk, synthesis = self.msdk(), self.synthesis()
        python = self.python(synthesis)
        out = workdir / "ai8x"
        out.mkdir(parents=True, exist_ok=True)
        build_log = out / "build.log"
        npz, config, sample = self._inputs(model, out)
        checkpoint = out / f"{PROJECT_PREFIX}.pth.tar"
        run_logged(checkpoint_command(python, npz, checkpoint), build_log, "ai8x checkpoint (torch.save)")
        run_logged(ai8xize_command(python, synthesis, out / "generated", PROJECT_PREFIX, checkpoint, config, sample,
                                   self.target, str(self.board.ai8x.board_name)),
                   build_log, "ai8xize.py", AI8XIZE_TIMEOUT_S, cwd=synthesis)
        project = out / "generated" / PROJECT_PREFIX
        metrics, defines = self._adopt_project(model, project)
        build_h = write_build_header(out / "unpu_build.h", defines)
        run_logged(self.make_command(project, msdk, build_h), build_log, f"{self.target} firmware build (MSDK make)")
        elf = project / "build" / f"{self.target.lower()}.elf"
        return self._record(elf, project, build_log, metrics, defines, config)

    def _inputs(self, model: QuantizedModel, out: Path) -> tuple[Path, Path, Path]:
        import numpy as np
        import yaml

        from unpu.compilers.ai8x import checkpoint_arrays, network_yaml, sample_input

        low = self.lowered(model)
        npz, config, sample = out / "weights.npz", out / "network.yaml", out / "sample.npy"
        np.savez(npz, **checkpoint_arrays(low))
        config.write_text(yaml.safe_dump(network_yaml(low, self.device), sort_keys=False))
        np.save(sample, sample_input(low), allow_pickle=False)
        return npz, config, sample

    def _adopt_project(self, model: QuantizedModel, project: Path) -> tuple[dict[str, float], dict[str, str]]:
        """Read what ai8xize generated, move its main.c aside and hook unpu.mk into project.mk."""
        from unpu.compilers.ai8x import Ai8xError, parse_cnn_h, parse_load_input

        main_c = (project / "main.c").read_text()
        try:
            metrics = parse_cnn_h((project / "cnn.h").read_text())
            loads = parse_load_input(main_c)
        except Ai8xError as exc:
            raise BoardError(str(exc)) from None
        (project / "main.c").rename(project / "ai8x_kat_main.c.txt")
        with open(project / "project.mk", "a") as f:
            f.write(f"\n# added by unpu\ninclude {PORT_DIR / 'unpu.mk'}\n")
        return metrics, self._defines(model, loads, main_c)

    def _defines(self, model: QuantizedModel, loads: list[tuple[int, str, int]], main_c: str) -> dict[str, str]:
        from unpu import stages
        from unpu.cache import key_of

        h, w, c = self.lowered(model).input_shape
        bad = [(name, n) for _, name, n in loads if n != h * w or not re.fullmatch(r"input_\d+", name)]
        if bad or len(loads) != -(-c // 4):
            raise BoardError(f"ai8xize's load_input() does not load {h}x{w}x{c} HWC input as unpu packs it: {loads}")
        enable = re.search(r"cnn_enable\(([^;]*)\);", main_c)
        if enable is None:
            raise BoardError("the generated main.c has no cnn_enable(...) call")
        pins = self.board.get("pins") or {}
        ts, st = list(pins.get("timestamp") or (1, 6)), list(pins.get("stage") or (1, 7))
        build_id = key_of({"model": model.digest, "board": self.board.name, "loads": loads})[:12]
        return {"UNPU_MODEL_ID": c_string(re.sub(r"[^A-Za-z0-9_.-]", "_", stages.model_id(self.cfg))[:64] or "model"),
                "UNPU_BUILD_ID": c_string(build_id),
                "UNPU_AI8X_INPUT_H": str(h), "UNPU_AI8X_INPUT_W": str(w), "UNPU_AI8X_INPUT_C": str(c),
                "UNPU_AI8X_INPUT_CHUNKS": str(len(loads)),
                "UNPU_AI8X_INPUT_ADDRS": "{" + ", ".join(f"0x{a:08x}u" for a, _, _ in loads) + "}",
                "UNPU_AI8X_INPUT_FIRST_CH": "{" + ", ".join(name.split("_")[1] + "u" for _, name, _ in loads) + "}",
                "UNPU_AI8X_CNN_ENABLE()": f"cnn_enable({enable.group(1).strip()})",
                "UNPU_PIN_TS_PORT": str(int(ts[0])), "UNPU_PIN_TS_PIN": str(int(ts[1])),
                "UNPU_PIN_STAGE_PORT": str(int(st[0])), "UNPU_PIN_STAGE_PIN": str(int(st[1]))}

    def _record(self, elf: Path, project: Path, build_log: Path, metrics: dict[str, float],
                defines: dict[str, str], config: Path) -> Firmware:
        from unpu.boards.cfirmware import memory_metrics, size_report
        from unpu.cache import file_digest

        size = build_log.parent / "size.txt"
        size.write_text(size_report(elf))
        build_id = defines["UNPU_BUILD_ID"].strip('"')
        artifacts = {"firmware/app.elf": elf, "firmware/size.txt": size, "firmware/build.log": build_log,
                     "compiler/network.yaml": config, "compiler/cnn.h": project / "cnn.h"}
        if (project / "log.txt").exists():
            artifacts["compiler/ai8xize_log.txt"] = project / "log.txt"
        return Firmware(image=elf, digest=file_digest(elf), build_id=build_id, arena_bytes=0,
                        metrics={**memory_metrics(elf), **metrics},
                        tags={"runtime": "ai8x", "firmware.port": "max78000", "firmware.build_id": build_id,
                              "ai8x.device": self.target, "ai8x.board": str(self.board.ai8x.board_name),
                              "flash.tool": "openocd", "ai8x.numerics": "weights requantized to ai8x power-of-two "
                                                                        "scales: output differs from LiteRT"},
                        artifacts=artifacts)

    # -- flash and run -------------------------------------------------------------------------------
    def flash(self, firmware: Firmware, workdir: Path) -> None:
        msdk = self.msdk()
        flash_log = workdir / "flash.log"
        run_with_retry(self.flash_command(self.openocd(msdk), msdk, firmware.image), flash_log,
                       f"OpenOCD flash of the {self.target}", FLASH_TIMEOUT_S)
        firmware.artifacts["device/flash.log"] = flash_log

    @contextmanager
    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> Iterator[DutClient]:
        require_port(self.board)
        self.flash(firmware, workdir)
        with serial_link(self.board, self.cfg, transcript) as client:
            yield client
