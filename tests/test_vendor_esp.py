"""ESP32-S3 (board=esp32s3): ESP-IDF + esp-tflite-micro, as far as it runs without ESP-IDF and a board.

What runs for real here: the one-line environment errors through `python -m unpu`, the adapter's
check_environment + build + flash against stand-in tools that record their argv (fake_tools), the
host TFLM arena bisection the build uses, pre-flight on real quantized models, the port's
timekeeping arithmetic compiled with gcc and run, and the parsers on vendor-printed formats.
Never run here: ESP-IDF, the Xtensa compiler, esptool, a board.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, board_of, compose, run_unpu
from unpu.artifacts import QuantizedModel
from unpu.errors import BoardError
from unpu.boards.base import FIRMWARE
from unpu.boards.esp32 import PROJECT_NAME, Esp32S3Board
from unpu.boards.tflm_firmware import runner_ops
from unpu.errors import ToolError
from unpu.compilers import esp_tflm

ENV_VARS = ("IDF_PATH", "ESPTOOL", "IDF_PYTHON_ENV_PATH")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)

PORT_DIR = FIRMWARE / "ports" / "esp32s3"


def _board(tmp_path: Path, *overrides: str) -> Esp32S3Board:
    return board_of(compose(["board=esp32s3", *overrides], tmp_path))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


def _fake_idf(tmp_path: Path) -> Path:
    """A directory with the marker check_environment looks for (an ESP-IDF checkout's tools/idf.py)."""
    idf = tmp_path / "esp-idf"
    (idf / "tools").mkdir(parents=True)
    (idf / "tools" / "idf.py").write_text("")
    return idf


# ---- `python -m unpu board=esp32s3` on this machine: exit 2, one line -------------------------------

def test_cli_without_esp_idf_exits_2_naming_idf_path(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    out = subprocess.run([sys.executable, "-m", "unpu", "board=esp32s3", "model=mobilenet"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env={**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("unpu: board=esp32s3: IDF_PATH is not set")
    assert "docs.espressif.com/projects/esp-idf" in lines[0]
    assert not (tmp_path / "mlflow.db").exists()


def test_cfg_job_still_composes(tmp_path):
    out = run_unpu(["board=esp32s3", "--cfg", "job"], tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "unpu.boards.esp32.Esp32S3Board" in out.stdout and "support: hardware" in out.stdout


# ---- check_environment: one line naming each missing piece, in order ------------------------------

def test_idf_path_without_idf_py_marker(tmp_path, monkeypatch):
    monkeypatch.setenv("IDF_PATH", str(tmp_path))
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "is not an ESP-IDF" in _one_line(exc) and "tools/idf.py" in str(exc.value)


def test_idf_py_not_on_path(tmp_path, monkeypatch, fake_tools):
    monkeypatch.setenv("IDF_PATH", str(_fake_idf(tmp_path)))
    monkeypatch.setenv("PATH", f"{fake_tools.bin}:/usr/bin:/bin")
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "idf.py not found on PATH" in _one_line(exc) and "export.sh" in str(exc.value)


def test_old_esp_idf_is_refused(tmp_path, monkeypatch, fake_tools):
    monkeypatch.setenv("IDF_PATH", str(_fake_idf(tmp_path)))
    fake_tools.make("idf.py", stdout="ESP-IDF v4.4.7\n")
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "ESP-IDF v4.4 is too old" in _one_line(exc) and ">= 5.1" in str(exc.value)


def test_missing_xtensa_compiler_then_esptool_then_port(tmp_path, monkeypatch, fake_tools):
    monkeypatch.setenv("IDF_PATH", str(_fake_idf(tmp_path)))
    monkeypatch.setenv("PATH", f"{fake_tools.bin}:/usr/bin:/bin")
    fake_tools.make("idf.py", stdout="ESP-IDF v5.3.1\n")
    board = _board(tmp_path)
    with pytest.raises(BoardError) as exc:
        board.check_environment()
    assert "xtensa-esp32s3-elf-gcc not found on PATH" in _one_line(exc)
    fake_tools.make("xtensa-esp32s3-elf-gcc")
    with pytest.raises(BoardError) as exc:
        board.check_environment()
    assert "esptool not found (ESPTOOL unset" in _one_line(exc) and "github.com/espressif/esptool" in str(exc.value)
    fake_tools.make("esptool.py", stdout="esptool.py v4.8.1\n4.8.1\n")
    with pytest.raises(BoardError) as exc:
        board.check_environment()
    assert "board.port is not set" in _one_line(exc)
    _board(tmp_path, "board.port=/dev/ttyUSB0").check_environment()


# ---- the whole sequence against recording stand-ins ------------------------------------------------
# Vendor sequence, https://docs.espressif.com/projects/esp-idf/en/stable/esp32s3/api-guides/tools/idf-py.html
# (global options -C project dir, -B build dir, -D cache entries; `set-target` then `build`) and
# https://docs.espressif.com/projects/esp-idf/en/stable/esp32s3/get-started/start-project.html (build,
# then flash). Flashing from the build directory with esptool's argument file `@flash_args`: the form
# ESP-IDF prints after a build ("or from the build directory ... write_flash @flash_args") and uses in
# its own example examples/build_system/cmake/idf_as_lib/run-esp32.sh (github.com/espressif/esp-idf);
# option names as in esptool's manual (https://manpages.ubuntu.com/manpages/noble/man1/esptool.1.html:
# --chip, -p, -b, --before default_reset, --after hard_reset, write_flash).

FAKE_BUILD = r"""
import pathlib, shutil
args = sys.argv[1:]
if 'build' in args:
    build = pathlib.Path(args[args.index('-B') + 1])
    build.mkdir(parents=True, exist_ok=True)
    shutil.copy({elf!r}, build / '{name}.elf')
    (build / '{name}.bin').write_bytes(b'\xe9' + bytes(4095))
    (build / 'flash_args').write_text('--flash_mode dio --flash_freq 80m --flash_size 8MB\n'
                                      '0x0 bootloader/bootloader.bin\n0x10000 {name}.bin\n'
                                      '0x8000 partition_table/partition-table.bin\n')
    (build.parent / 'sdkconfig').write_text('CONFIG_IDF_TARGET="esp32s3"\n')
    # check_sizes.py's line (format string quoted in test_app_size_line_from_check_sizes_format)
    print('{name}.bin binary size 0x1000 bytes. Smallest app partition is 0x7f0000 bytes. 0x7ef000 bytes (100%) free.')
"""


def _model(path: Path) -> QuantizedModel:
    return QuantizedModel("softmax10", path, hashlib.sha256(path.read_bytes()).hexdigest(), 0, "tflite graph")


def _elf(tmp_path: Path) -> Path:
    """A real ELF object (Arm, since no Xtensa compiler is here) for the ELF memory figures."""
    src = tmp_path / "x.c"
    src.write_text("const char table[300] = {1};\nchar buffer[1000];\nint f(int x) { return x * 3; }\n")
    obj = tmp_path / "x.o"
    subprocess.run(["arm-none-eabi-gcc", "-c", "-O2", str(src), "-o", str(obj)], check=True, timeout=60)
    return obj


def _tools(tmp_path, fake_tools, monkeypatch) -> None:
    monkeypatch.setenv("IDF_PATH", str(_fake_idf(tmp_path)))
    fake_tools.make("idf.py", stdout="", script="if sys.argv[1:] == ['--version']: print('ESP-IDF v5.3.1')\n"
                    + FAKE_BUILD.format(elf=str(_elf(tmp_path)), name=PROJECT_NAME))
    fake_tools.make("xtensa-esp32s3-elf-gcc")
    fake_tools.make("esptool.py", stdout="esptool.py v4.8.1\n4.8.1\n")


def test_check_build_flash_run_the_documented_commands(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    _tools(tmp_path, fake_tools, monkeypatch)
    board = _board(tmp_path, "board.port=/dev/ttyUSB0", "model.post=none")
    work = tmp_path / "job"
    work.mkdir()
    board.check_environment()
    firmware = board.build(_model(softmax_tflite), work)
    board.flash(firmware, work)

    project, build = work / "firmware" / "project", work / "firmware" / "project" / "build"
    defines = ["-D", f"UNPU_FW_ROOT={FIRMWARE}",
               "-D", f"SDKCONFIG_DEFAULTS={project / 'sdkconfig.defaults'};{project / 'sdkconfig.unpu'}"]
    idf = ["idf.py", "-C", str(project), "-B", str(build), *defines]
    assert fake_tools.calls() == [
        ["idf.py", "--version"],
        ["esptool.py", "version"],
        [*idf, "set-target", "esp32s3"],
        [*idf, "build"],
        ["esptool.py", "--chip", "esp32s3", "-p", "/dev/ttyUSB0", "-b", "460800", "--before", "default_reset",
         "--after", "hard_reset", "write_flash", "@flash_args"],
    ]
    # the staged project: the port's sources plus this build's generated files
    assert (project / "main" / "port.c").read_text() == (PORT_DIR / "main" / "port.c").read_text()
    header = (project / "main" / "unpu_build.h").read_text()
    for line in ("#define UNPU_ESP_PIN_TIMESTAMP 4", "#define UNPU_ESP_PIN_STAGE 5", "#define UNPU_ESP_LINK 0",
                 "#define UNPU_ESP_BAUDRATE 115200", "#define UNPU_ESP_CORE 1", "#define UNPU_TFLM_INPUT_CAPACITY 10"):
        assert line in header
    assert "unpu_model_tflite[" in (project / "main" / "model_data.c").read_text()
    sdk = (project / "sdkconfig.unpu").read_text()
    assert "CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240=y" in sdk and "CONFIG_ESPTOOLPY_FLASHSIZE_8MB=y" in sdk
    assert "factory, app, factory, 0x10000, 0x7f0000," in (project / "partitions.csv").read_text()
    # what the build reported, and the ELF's memory
    assert firmware.metrics["memory/app_image"] == 0x1000 and firmware.metrics["memory/app_partition"] == 0x7f0000
    assert firmware.metrics["memory/flash"] > 0 and firmware.metrics["memory/ram"] >= 1000
    assert firmware.arena_bytes == firmware.metrics["memory/arena"] and firmware.arena_bytes % 1024 == 0
    assert firmware.tags["esp.esp_nn_ops"] == "SOFTMAX" and firmware.tags["esp.reference_ops"] == "none"
    assert "device/flash.log" in firmware.artifacts


def test_idf_py_flash_variant(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    """board.flash_tool=idf.py: `idf.py -C <project> -B <build> -p PORT -b BAUD flash` (start-project.html)."""
    _tools(tmp_path, fake_tools, monkeypatch)
    board = _board(tmp_path, "board.port=/dev/ttyACM0", "board.flash_tool=idf.py", "board.serial.link=usb_serial_jtag")
    work = tmp_path / "job"
    work.mkdir()
    board.check_environment()
    firmware = board.build(_model(softmax_tflite), work)
    board.flash(firmware, work)
    calls = fake_tools.calls()
    assert [c[0] for c in calls] == ["idf.py", "idf.py", "idf.py", "idf.py"]  # no esptool needed
    assert calls[-1][-5:] == ["-p", "/dev/ttyACM0", "-b", "460800", "flash"]
    assert "#define UNPU_ESP_LINK 1" in (work / "firmware" / "project" / "main" / "unpu_build.h").read_text()


def test_failed_flash_is_retried_once(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    _tools(tmp_path, fake_tools, monkeypatch)
    board = _board(tmp_path, "board.port=/dev/ttyUSB0")
    work = tmp_path / "job"
    work.mkdir()
    firmware = board.build(_model(softmax_tflite), work)
    fake_tools.make("esptool.py", exit_code=2, script="sys.stderr.write('A fatal error occurred: Failed to connect')")
    with pytest.raises(BoardError, match="Failed to connect"):
        board.flash(firmware, work)
    assert sum(c[0] == "esptool.py" for c in fake_tools.calls()) == 2


# ---- parsers: formats printed by ESP-IDF's own code ------------------------------------------------
# ESP-IDF components/partition_table/check_sizes.py (github.com/espressif/esp-idf), check_partition():
CHECK_SIZES_OK = "{} binary size {:#x} bytes. Smallest {} partition is {:#x} bytes. {:#x} bytes ({}%) free."
CHECK_SIZES_TOO_SMALL = "{} partition is too small for binary {} size {:#x}:"


def test_app_size_line_from_check_sizes_format():
    log = ("Bootloader binary size 0x5240 bytes. 0x2dc0 bytes (36%) free.\n"  # check_bootloader(), ignored
           + CHECK_SIZES_OK.format("unpu_esp32s3.bin", 0x5A3B0, "app", 0x7F0000, 0x795C50, 96) + "\n")
    size = esp_tflm.parse_app_size(log)
    assert size == esp_tflm.AppSize("unpu_esp32s3.bin", 0x5A3B0, 0x7F0000, 0x795C50)
    assert size.metrics()["memory/app_image"] == 0x5A3B0


def test_app_too_large_from_check_sizes_format():
    log = ("Error: " + CHECK_SIZES_TOO_SMALL.format("app", "unpu_esp32s3.bin", 0x900000)
           + "\n  - {} (overflow {:#x})".format("Part 'factory' 0/0 @ 0x10000 size 0x7f0000", 0x110000))
    with pytest.raises(esp_tflm.EspError, match=r"unpu_esp32s3.bin is 9,437,184 B, overflow 1,114,112 B"):
        esp_tflm.parse_app_size(log)


def test_idf_version_from_idf_py_format():
    # ESP-IDF tools/idf.py prints 'ESP-IDF %s' % idf_version() (the version is `git describe` of the checkout)
    assert esp_tflm.parse_idf_version("ESP-IDF %s" % "v5.3.1") == (5, 3)
    assert esp_tflm.parse_idf_version("ESP-IDF %s" % "v5.4-dev-2231-g0f0068fff3") == (5, 4)
    with pytest.raises(esp_tflm.EspError):
        esp_tflm.parse_idf_version("ESP-IDF version unknown")


# ---- operator support and ESP-NN split -------------------------------------------------------------

def test_runner_ops_are_the_runner_source_s():
    source = (FIRMWARE / "harness" / "runner_tflm.cc").read_text()
    ops = runner_ops(source)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "PADV2", "MEAN"} <= ops
    assert "CUSTOM:ethos-u" not in ops and len(ops) == len(re.findall(r"resolver\.Add\w+\(\)", source)) - 1
    with pytest.raises(ToolError, match="cannot name: BatchMatMul"):
        runner_ops("resolver.AddBatchMatMul();")


def test_esp_nn_ops_are_the_component_s_kernels():
    # https://github.com/espressif/esp-tflite-micro/tree/99f49e1/tensorflow/lite/micro/kernels/esp_nn
    # (add, conv, depthwise_conv, fully_connected, mul, pooling = average + max, softmax)
    assert esp_tflm.ESP_NN_OPS == {"ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                                        "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX"}


def test_unsupported_operator_is_named_by_layer(tmp_path, monkeypatch, softmax_tflite):
    board = _board(tmp_path)
    monkeypatch.setattr("unpu.boards.esp32.runner_ops", lambda *a, **k: frozenset({"CONV_2D"}))
    with pytest.raises(BoardError) as exc:
        board.preflight(_model(softmax_tflite))
    assert "does not register: #0 SOFTMAX" in _one_line(exc)


# ---- pre-flight on real quantized models -----------------------------------------------------------

def _quantized(name: str, tmp_path: Path, cache: Path, *overrides: str):
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose([f"model={name}", f"cache.dir={cache}", "board=esp32s3", *overrides], tmp_path)
    return cfg, steps.quantized_model(cfg, Cache(cache))


@pytest.mark.slow
def test_preflight_passes_mobilenet_and_sizes_its_arena(tmp_path, shared_cache):
    cfg, model = _quantized("mobilenet", tmp_path, shared_cache)
    board = board_of(cfg)
    board.preflight(model)
    scratch = esp_tflm.esp_nn_scratch_bound(model.path.read_bytes())
    assert scratch > 0
    assert board.arena_bytes(model) >= scratch + int(cfg.board.esp.arena_margin_bytes)


@pytest.mark.slow
def test_preflight_names_the_sram_that_does_not_fit(tmp_path, shared_cache):
    cfg, model = _quantized("simplenet", tmp_path, shared_cache, "board.esp.sram_reserved_bytes=500000")
    with pytest.raises(BoardError) as exc:
        board_of(cfg).preflight(model)
    text = _one_line(exc)
    assert "does not fit esp32s3's SRAM: arena" in text and "24,288 B (524,288 B internal SRAM - 500,000 B" in text


@pytest.mark.slow
def test_preflight_names_the_flash_that_does_not_fit(tmp_path, shared_cache):
    cfg, model = _quantized("nas", tmp_path, shared_cache, "board.memory.flash_bytes=1048576",
                            "board.esp.firmware_base_bytes=700000")
    with pytest.raises(BoardError) as exc:
        board_of(cfg).preflight(model)
    assert "does not fit esp32s3's flash" in _one_line(exc) and "983,040 B app partition" in str(exc.value)


# ---- the port: what compiles without ESP-IDF -------------------------------------------------------

TICKS_TEST = r"""
#include <stdio.h>
#include "unpu_esp_ticks.h"
int main(void) {
    unpu_ticks_t s = {0, 0};
    unsigned long long a = unpu_ticks_extend(&s, 0xFFFFFF00u);
    unsigned long long b = unpu_ticks_extend(&s, 0x00000100u);   /* one wrap */
    unsigned long long c = unpu_ticks_extend(&s, 0x00000200u);
    uint32_t ticks, rest;
    unpu_idle_split(2500u, 1000u, &ticks, &rest);
    printf("%llu %llu %llu %u %u\n", a, b - a, c - b, ticks, rest);
    return 0;
}
"""


def test_port_timekeeping_compiles_and_extends_the_cycle_counter(tmp_path):
    main = tmp_path / "t.c"
    main.write_text(TICKS_TEST)
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-I", str(PORT_DIR / "main"),
                    "-I", str(FIRMWARE / "ports" / "common"), str(main),
                    str(PORT_DIR / "main" / "unpu_esp_ticks.c"), "-o", str(exe)], check=True, timeout=60)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=10, check=True).stdout.split()
    assert out == [str(0xFFFFFF00), "512", "256", "2", "500"]


def test_harness_and_port_arithmetic_compile_for_a_32_bit_mcu(tmp_path):
    """No Xtensa compiler here: the portable part (harness + the port's arithmetic) with the
    32-bit arm-none-eabi-gcc; port.c itself needs ESP-IDF's headers."""
    for src in (FIRMWARE / "harness" / "unpu_harness.c", PORT_DIR / "main" / "unpu_esp_ticks.c"):
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-std=c99", "-Wall", "-Werror", "-c",
                        "-I", str(FIRMWARE / "harness"), "-I", str(PORT_DIR / "main"),
                        "-I", str(FIRMWARE / "ports" / "common"), str(src),
                        "-o", str(tmp_path / (src.stem + ".o"))], check=True, timeout=60)


def test_idf_project_declares_the_component_and_the_port_functions():
    manifest = (PORT_DIR / "main" / "idf_component.yml").read_text()
    assert "espressif/esp-tflite-micro:" in manifest and '">=5.1"' in manifest
    port = (PORT_DIR / "main" / "port.c").read_text()
    header = (FIRMWARE / "harness" / "unpu_port.h").read_text()
    for name in re.findall(r"^\w[\w *]*?\b(port_\w+)\(", header, re.M):
        assert re.search(rf"^\w[\w *]*?\b{name}\(", port, re.M), name
