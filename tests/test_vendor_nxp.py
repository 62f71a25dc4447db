"""NXP MCX N947 (FRDM-MCXN947, eIQ Neutron NPU) adapter, as far as it runs without NXP's tools and
a board: the one-line refusal, the command sequence against argv-recording stand-ins (fake_tools),
the converted-model reader, pre-flight on real quantized models, and the port compiled for the M33.

Command sequence, as NXP documents it:
- neutron-converter --input M.tflite --output M_npu.tflite --target <target>
  https://github.com/nxp-mcuxpresso/mcuxsdk-middleware-tensorflow/blob/main/docs/topics/convert_model.md, and for
  this chip "./neutron-converter --input persondetect.tflite --output persondetect_npu16.tflite --target mcxn94x"
  (mcux-sdk-examples frdmmcxn947/eiq_examples/mpp_camera_persondetect_view_tflm/models/persondetect/
  persondetect_npu16_tflite.h, header comment)
- cmake -DCMAKE_TOOLCHAIN_FILE=<SDK>/tools/cmake_toolchain_files/armgcc.cmake -G "Unix Makefiles"
  -DCMAKE_BUILD_TYPE=release, then make: the armgcc/build_release.sh of every MCUXpresso SDK 2.x
  example (e.g. boards/frdmmcxn947/eiq_examples/tflm_kws/cm33_core0/armgcc in the SDK package)
- LinkServer flash MCXN947:FRDM-MCXN947 load app.elf: NXP LinkServer's flash command
  (https://www.nxp.com/design/design-center/software/development-software/mcuxpresso-software-and-tools-/linkserver-for-microcontrollers:LINKERSERVER;
  the same form Zephyr's linkserver runner issues, zephyr/scripts/west_commands/runners/linkserver.py)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import board_of, compose, run_unpu
from unpu.artifacts import QuantizedModel
from unpu.errors import BoardError
from unpu.boards.base import FIRMWARE
from unpu.boards.nxp import SDK_FILES, MCXN947Board, neutron_fallback, op_dtypes
from unpu.graph import inspect_tflite
from unpu.compilers.neutron import NEUTRON_OP, NeutronOptions, convert_command, parse_converted

ENV_VARS = ("NEUTRON_CONVERTER", "MCUX_SDK", "ARMGCC_DIR", "LINKSERVER")
PORT_DIR = FIRMWARE / "ports" / "mcxn947"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def _board(tmp_path: Path, *overrides: str) -> MCXN947Board:
    return board_of(compose(["board=mcxn947", *overrides], tmp_path))


# ---- a converted model, laid out as NXP's TFLM kernel reads a NeutronGraph node ------------------

def converted_model(microcode: int = 96, weights: int = 512, kernels: int = 48, scratch: int = 256) -> bytes:
    """A model shaped like the converter's output (NOT produced by it): one NeutronGraph custom
    operator whose inputs are [activation, microcode, weights, kernels] and outputs [activation,
    scratch] (neutron.cpp: `inputs->size - 3` microcode, `- 2` weights; the last output is the
    scratch buffer), followed by a SOFTMAX left to the CPU."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    def tensor(shape, buffer, dtype=s.TensorType.INT8):
        t = s.TensorT()
        t.shape, t.type, t.buffer = np.array(shape, np.int32), dtype, buffer
        return t

    def const(n):
        b = s.BufferT()
        b.data = np.arange(n, dtype=np.uint8)
        return b

    graph = s.SubGraphT()
    graph.tensors = [tensor([1, 16], 0), tensor([1, microcode], 1), tensor([1, weights], 2),
                     tensor([1, kernels], 3), tensor([1, 10], 0), tensor([1, scratch], 0), tensor([1, 10], 0)]
    graph.inputs, graph.outputs = np.array([0], np.int32), np.array([6], np.int32)
    npu = s.OperatorT()
    npu.opcodeIndex, npu.inputs, npu.outputs = 0, np.array([0, 1, 2, 3], np.int32), np.array([4, 5], np.int32)
    cpu = s.OperatorT()
    cpu.opcodeIndex, cpu.inputs, cpu.outputs = 1, np.array([4], np.int32), np.array([6], np.int32)
    graph.operators = [npu, cpu]
    custom = s.OperatorCodeT()
    custom.builtinCode = custom.deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
    custom.customCode = "NeutronGraph"
    softmax = s.OperatorCodeT()
    softmax.builtinCode = softmax.deprecatedBuiltinCode = s.BuiltinOperator.SOFTMAX
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [custom, softmax], [graph]
    model.buffers = [s.BufferT(), const(microcode), const(weights), const(kernels)]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_converted_model_reader_splits_npu_and_cpu_and_sizes_the_neutron_buffers():
    data = converted_model()
    report = parse_converted(data)
    assert report.neutron_graphs == 1 and report.cpu_ops == ["SOFTMAX"]
    assert (report.microcode_bytes, report.weights_bytes, report.kernels_bytes) == (96, 512, 48)
    assert report.scratch_bytes == 256 and report.model_bytes == len(data)
    metrics, tags = report.metrics(), report.tags()
    assert metrics["memory/npu_weights"] == 512 and metrics["neutron/cpu_operators"] == 1
    assert tags["neutron.cpu_fallback"] == "SOFTMAX"
    assert op_dtypes(inspect_tflite(data))[0][1] == NEUTRON_OP


# ---- one line naming what is missing ------------------------------------------------------------

def test_cli_without_the_toolchain_exits_2_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", **{var: "" for var in ENV_VARS}}
    proc = run_unpu(["board=mcxn947", "model=mobilenet"], tmp_path, timeout=300, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("unpu: board=mcxn947: neutron-converter not found (NEUTRON_CONVERTER unset")
    assert "eiq-toolkit" in lines[0].lower()


def test_cfg_job_composes_without_any_tool(tmp_path):
    proc = run_unpu(["board=mcxn947", "--cfg", "job"], tmp_path, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "unpu.boards.nxp.MCXN947Board" in proc.stdout


def fake_sdk(root: Path) -> Path:
    """The marker files check_environment and the build read, with the SDK's relative paths."""
    for rel in [*SDK_FILES.values(), "middleware/eiq/neutron/mcxn/libNeutronDriver.a",
                "middleware/eiq/neutron/mcxn/libNeutronFirmware.a",
                "middleware/eiq/neutron/driver/include/NeutronDriver.h",
                "boards/frdmmcxn947/eiq_examples/tflm_kws/cm33_core0/clock_config.c"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    return root


@pytest.mark.parametrize("missing, expected", [
    ("MCUX_SDK", "MCUX_SDK is not set: point it at an MCUXpresso SDK 2.x package for FRDM-MCXN947"),
    ("ARMGCC_DIR", "ARMGCC_DIR is not set: the SDK's armgcc.cmake needs it"),
    ("LINKSERVER", "LinkServer not found (LINKSERVER unset, not on PATH): install NXP LinkServer"),
    ("port", "board.port is not set"),
])
def test_check_environment_names_each_missing_piece(tmp_path, monkeypatch, fake_tools, missing, expected):
    fake_tools.make("neutron-converter")
    if missing != "LINKSERVER":
        fake_tools.make("LinkServer", stdout="LinkServer v0.0.0 (test stand-in)\n")
    if missing != "MCUX_SDK":
        monkeypatch.setenv("MCUX_SDK", str(fake_sdk(tmp_path / "sdk")))
    if missing != "ARMGCC_DIR":
        (tmp_path / "gcc" / "bin").mkdir(parents=True)
        (tmp_path / "gcc" / "bin" / "arm-none-eabi-gcc").write_text("")
        monkeypatch.setenv("ARMGCC_DIR", str(tmp_path / "gcc"))
    monkeypatch.setenv("PATH", f"{fake_tools.bin}:/usr/bin:/bin")
    overrides = [] if missing == "port" else ["board.port=/dev/ttyACM0"]
    with pytest.raises(BoardError) as exc:
        _board(tmp_path, *overrides).check_environment()
    text = str(exc.value)
    assert "\n" not in text and text.startswith(expected), text


def test_sdk_without_neutron_libraries_is_named(tmp_path, monkeypatch, fake_tools):
    fake_tools.make("neutron-converter")
    sdk = fake_sdk(tmp_path / "sdk")
    (sdk / "middleware/eiq/neutron/mcxn/libNeutronFirmware.a").unlink()
    monkeypatch.setenv("MCUX_SDK", str(sdk))
    with pytest.raises(BoardError, match="no Neutron driver libraries"):
        _board(tmp_path).check_environment()


# ---- the full command sequence against argv-recording stand-ins ---------------------------------

def _tiny_elf(out: Path) -> Path:
    """A real Cortex-M33 ELF (the stand-in cmake copies it where the real build would write app.elf)."""
    src = out / "tiny.c"
    src.write_text("const char rodata[64] = {1};\nchar bss[256];\nint main(void) { return rodata[0] + bss[1]; }\n")
    elf = out / "tiny.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "--specs=nosys.specs", str(src), "-o", str(elf)],
                   check=True, timeout=120, capture_output=True)
    return elf


def test_check_build_and_flash_run_the_documented_commands(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    converted = tmp_path / "converted.tflite"
    converted.write_bytes(converted_model())
    elf = _tiny_elf(tmp_path)
    copy_output = (f"import shutil; a = sys.argv\n"
                   f"if '--output' in a: shutil.copy({str(converted)!r}, a[a.index('--output') + 1])")
    fake_tools.make("neutron-converter", script=copy_output, stdout="neutron-converter 0.0.0 (test stand-in)\n")
    build_elf = (f"import shutil; a = sys.argv\n"
                 f"if '-B' in a: os.makedirs(a[a.index('-B') + 1])\n"
                 f"if a[1] == '--build': shutil.copy({str(elf)!r}, os.path.join(a[2], 'app.elf'))")
    fake_tools.make("cmake", script=build_elf)
    fake_tools.make("LinkServer", stdout="LinkServer v0.0.0 (test stand-in)\n")
    sdk = fake_sdk(tmp_path / "sdk")
    (tmp_path / "gcc" / "bin").mkdir(parents=True)
    (tmp_path / "gcc" / "bin" / "arm-none-eabi-gcc").write_text("")
    monkeypatch.setenv("MCUX_SDK", str(sdk))
    monkeypatch.setenv("ARMGCC_DIR", str(tmp_path / "gcc"))
    board = _board(tmp_path, "board.port=/dev/ttyACM0", "board.linkserver.probe=ABC123")
    model = QuantizedModel("softmax10", softmax_tflite, "d" * 64, 0, "tflite graph")

    board.check_environment()
    board.preflight(model)
    fw = board.build(model, tmp_path / "work")
    board.flash(fw, tmp_path / "work")

    out = tmp_path / "work" / "firmware"
    cache_tmp = [c for c in fake_tools.calls() if "--input" in c][0]
    assert fake_tools.calls() == [
        ["LinkServer", "-v"],                                                     # check_environment
        ["neutron-converter", "--version"],                                       # build: converter version (cache key)
        ["neutron-converter", "--input", str(softmax_tflite), "--output", cache_tmp[4], "--target", "mcxn94x"],
        ["cmake", "-S", str(PORT_DIR), "-B", str(out / "build"), "-G", "Unix Makefiles",
         f"-DCMAKE_TOOLCHAIN_FILE={sdk}/tools/cmake_toolchain_files/armgcc.cmake", "-DCMAKE_BUILD_TYPE=release",
         f"-DMCUX_SDK={sdk}", f"-DNEUTRON_DIR={sdk}/middleware/eiq/neutron",
         f"-DBOARD_DIR={sdk}/boards/frdmmcxn947/eiq_examples/tflm_kws/cm33_core0",
         f"-DUNPU_BUILD_H={out}/unpu_build.h", f"-DUNPU_MODEL_C={out}/model_data.c", "-DUNPU_BAUDRATE=115200",
         "-DUNPU_PIN_TIMESTAMP=P0_10", "-DUNPU_PIN_STAGE=P0_27"],
        ["cmake", "--build", str(out / "build"), "--", f"-j{min(os.cpu_count() or 1, 8)}"],
        ["LinkServer", "flash", "--probe", "ABC123", "MCXN947:FRDM-MCXN947", "load", str(out / "build" / "app.elf")],
    ]
    assert Path(cache_tmp[4]).name == "softmax10_npu.tflite"    # written in the cache's temporary entry
    # what the build recorded: the converted model's split, the ELF's memory, the model as C data
    assert fw.image == out / "build" / "app.elf" and fw.metrics["memory/npu_weights"] == 512
    assert fw.metrics["memory/flash"] > 0 and fw.tags["neutron.cpu_fallback"] == "SOFTMAX"
    assert fw.tags["neutron.version"] == "0.0.0"
    assert "0x54, 0x46, 0x4c, 0x33" in (out / "model_data.c").read_text()   # "TFL3" of the converted model
    assert "#define UNPU_TFLM_ARENA_SIZE" in (out / "unpu_build.h").read_text()


def test_converter_failure_is_one_line(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    fake_tools.make("neutron-converter", exit_code=3, script="sys.stderr.write('Error: unsupported model\\n')")
    board = _board(tmp_path)
    with pytest.raises(BoardError, match=r"neutron-converter failed on softmax10.tflite \(exit 3\): Error: unsupported"):
        board.compile(QuantizedModel("softmax10", softmax_tflite, "e" * 64, 0, "tflite graph"))


def test_convert_command_and_extra_args():
    opts = NeutronOptions(target="mcxn94x", extra_args=("--dump-header-file-output",))
    assert convert_command("nc", Path("/m/a.tflite"), Path("/o/a_npu.tflite"), opts) == [
        "nc", "--input", "/m/a.tflite", "--output", "/o/a_npu.tflite", "--target", "mcxn94x",
        "--dump-header-file-output"]


# ---- pre-flight -----------------------------------------------------------------------------------

def test_fallback_names_operators_and_types_the_npu_does_not_take(tmp_path):
    table = _board(tmp_path).spec.neutron.supported_ops
    ops = [(0, "CONV_2D", "int8"), (1, "CONV_2D", "int16"), (2, "DEPTHWISE_CONV_2D", "int16"), (3, "MEAN", "int8"),
           (4, "RESHAPE", "int8"), (5, "CONV_2D", "float32")]
    assert neutron_fallback(ops, table) == [("CONV_2D", "int16"), ("MEAN", "int8"), ("RESHAPE", "int8"),
                                            ("CONV_2D", "float32")]


def test_preflight_refuses_an_operator_neither_npu_nor_firmware_runs(tmp_path, monkeypatch):
    board = _board(tmp_path)
    monkeypatch.setattr("unpu.boards.nxp.op_dtypes", lambda data: [(0, "CONV_2D", "int8"), (1, "GELU", "int8")])
    model = QuantizedModel("m", tmp_path / "m.tflite", "f" * 64, 0, "tflite graph")
    model.path.write_bytes(converted_model())
    with pytest.raises(BoardError, match="operator\\(s\\) GELU are neither supported by the Neutron NPU nor registered"):
        board.preflight(model)


def _quantized(name: str, tmp_path: Path, cache: Path, *extra: str):
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose([f"model={name}", f"cache.dir={cache}", "board=mcxn947", *extra], tmp_path)
    return cfg, steps.quantized_model(cfg, Cache(cache))


@pytest.mark.slow
def test_preflight_passes_mobilenet_and_names_the_layer_that_does_not_fit(tmp_path, shared_cache):
    cfg, model = _quantized("mobilenet", tmp_path, shared_cache)
    board_of(cfg).preflight(model)      # VWW MobileNet α0.25 fits 2 MiB flash / 512 KiB SRAM
    small = compose(["model=mobilenet", f"cache.dir={shared_cache}", "board=mcxn947",
                     "board.memory.sram_bytes=100000"], tmp_path)
    with pytest.raises(BoardError) as exc:
        board_of(small).preflight(model)
    # the 1x1 conv 48x48x8 -> 48x48x16: 18,432 + 36,864 B live at once
    assert "does not fit mcxn947: layer 2 (CONV_2D) needs 55,296 B of activations at once, 34,464 B of SRAM are " \
           "left after 65,536 B for the runtime" in str(exc.value)


@pytest.mark.slow
def test_preflight_refuses_a_model_larger_than_flash(tmp_path, shared_cache):
    cfg, model = _quantized("resnet", tmp_path, shared_cache, "board.memory.flash_bytes=600000")
    with pytest.raises(BoardError, match=r"resnet does not fit mcxn947: the model takes [\d,]+ B of flash, "
                                         r"206,784 B are left after 393,216 B for the firmware"):
        board_of(cfg).preflight(model)


@pytest.mark.slow
def test_float_model_falls_back_to_the_cpu_with_a_warning(tmp_path, shared_cache, caplog):
    cfg, model = _quantized("dscnn", tmp_path, shared_cache, "quant=float32")
    with caplog.at_level("WARNING"):
        board_of(cfg).preflight(model)
    assert "does not take" in caplog.text and "(float32)" in caplog.text and "CPU fallback" in caplog.text


# ---- the port for the Cortex-M33, without the SDK --------------------------------------------------

def test_harness_and_port_compile_for_cortex_m33_without_the_sdk(tmp_path):
    flags = ["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16", "-O2",
             "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
             f"-I{FIRMWARE / 'harness'}", f"-I{FIRMWARE / 'kernels'}", f"-I{PORT_DIR}", f"-I{FIRMWARE / 'ports' / 'common'}"]
    for src in (PORT_DIR / "port.c", FIRMWARE / "harness" / "unpu_harness.c"):
        subprocess.run([*flags, "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))], check=True, timeout=120)
    nm = subprocess.run(["arm-none-eabi-nm", str(tmp_path / "port.o")], capture_output=True, text=True, check=True,
                        timeout=60).stdout
    for symbol in ("port_uart_getc", "port_timer_hz", "port_idle_us", "port_pin_stage", "SysTick_Handler", "main"):
        assert f" T {symbol}" in nm, symbol
