"""MAX78000 / MAX78002 (unpu.boards.maxim, unpu.compilers.ai8x) as far as they run without the MSDK,
ai8x-synthesis and a board: the one-line refusal naming what is missing, the documented command
sequence (checkpoint, ai8xize, MSDK make, OpenOCD) run for real against argv-recording stand-ins,
the parsers on ai8x-synthesis output published in the MSDK, pre-flight on real quantized models,
and the SDK-free part of the firmware port through the real cross compiler.

Sources of the command sequence:
- ai8xize: https://github.com/analogdevicesinc/ai8x-synthesis/blob/develop/README.md, "Network Loader
  (AI8Xize)" (`python ai8xize.py --verbose --test-dir demos --prefix ai85-mnist --checkpoint-file ...
  --config-file ... --device MAX78000 --compact-data ...`; run from the synthesis folder, which holds
  the `assets/` it copies; `--no-version-check` from izer/commandline.py keeps it off the network).
- MSDK build: https://analogdevicesinc.github.io/msdk/USERGUIDE/ "Build System" (`make` in the project,
  TARGET, BOARD, MAXIM_PATH, SRCS/IPATH/PROJ_CFLAGS in project.mk; output build/<target lowercase>.elf,
  PROJECT ?= $(TARGET_LC) in ai8x-synthesis assets/makefile/Makefile).
- Flash: the same user guide, "Flashing on the Command-Line": `openocd -s $MAXIM_PATH/Tools/OpenOCD/scripts
  -f interface/cmsis-dap.cfg -f target/max78002.cfg -c "program build/max78002.elf verify exit"`
  (unpu adds `reset` so the firmware runs).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import board_of, compose, run_unpu
from unpu.artifacts import QuantizedModel
from unpu.errors import BoardError
from unpu.boards.base import FIRMWARE
from unpu.boards.maxim import MaximBoard
from unpu.compilers.ai8x import CHECKPOINT_SCRIPT, Ai8xError, lower, parse_cnn_h, parse_load_input, requantize

ENV_VARS = ("MAXIM_PATH", "AI8X_SYNTHESIS", "AI8X_PYTHON", "OPENOCD")
BOARDS = ("max78000", "max78002")
PORT_DIR = FIRMWARE / "ports" / "max78000"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def _board(name: str, tmp_path: Path, *overrides: str) -> MaximBoard:
    return board_of(compose([f"board={name}", *overrides], tmp_path))


def _quantized(name: str, tmp_path: Path, cache: Path) -> QuantizedModel:
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose([f"model={name}", f"cache.dir={cache}"], tmp_path)
    return steps.quantized_model(cfg, Cache(cache))


def _file_model(path: Path) -> QuantizedModel:
    return QuantizedModel(path.stem, path, "sha256-" + path.stem, 0, "tflite graph")


# ---- the one line naming what is missing --------------------------------------------------------

@pytest.mark.parametrize("board", BOARDS)
def test_cli_without_msdk_exits_2_naming_it(tmp_path, board):
    out = run_unpu([f"board={board}", "model=mobilenet"], tmp_path, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert lines == [f"unpu: board={board}: MAXIM_PATH is not set: point it at the Analog Devices MSDK "
                     f"(https://github.com/analogdevicesinc/msdk)"]


def _fake_msdk(root: Path, device: str) -> Path:
    msdk = root / "msdk"
    gcc = msdk / "Libraries" / "CMSIS" / "Device" / "Maxim" / device / "Source" / "GCC"
    gcc.mkdir(parents=True)
    (gcc / f"{device.lower()}.mk").write_text("")
    target = msdk / "Tools" / "OpenOCD" / "scripts" / "target"
    target.mkdir(parents=True)
    (target / f"{device.lower()}.cfg").write_text("")
    return msdk


def _fake_synthesis(root: Path) -> Path:
    synth = root / "ai8x-synthesis"
    (synth / "izer").mkdir(parents=True)
    (synth / "ai8xize.py").write_text("")
    (synth / "izer" / "checkpoint.py").write_text("")
    return synth


def test_missing_synthesis_then_python_then_port_are_named(tmp_path, monkeypatch, fake_tools):
    board = _board("max78000", tmp_path)
    monkeypatch.setenv("MAXIM_PATH", str(_fake_msdk(tmp_path, "MAX78000")))
    with pytest.raises(BoardError, match=r"^AI8X_SYNTHESIS is not set: .*github.com/analogdevicesinc/ai8x-synthesis"):
        board.check_environment()
    synth = _fake_synthesis(tmp_path)
    monkeypatch.setenv("AI8X_SYNTHESIS", str(synth))
    with pytest.raises(BoardError, match=r"^no ai8x-synthesis Python at .*\.venv/bin/python: create its venv"):
        board.check_environment()
    python = fake_tools.make("python", stdout="Python 3.12.1\n")
    monkeypatch.setenv("AI8X_PYTHON", str(python))
    with pytest.raises(BoardError, match="is Python 3.12.1; ai8x-synthesis needs Python 3.11"):
        board.check_environment()
    fake_tools.make("python", stdout="Python 3.11.9\n")
    fake_tools.make("openocd", stdout="Open On-Chip Debugger 0.12.0+dev-g1 (2023-01-01)\n")
    with pytest.raises(BoardError, match=r"^board.port is not set"):
        board.check_environment()


# ---- the whole sequence against recording stand-ins ---------------------------------------------

FAKE_PYTHON = r"""
from pathlib import Path
args = sys.argv[1:]
if args and args[0].endswith("ai8x_checkpoint.py"):
    Path(args[2]).write_bytes(b"checkpoint")
elif args and args[0].endswith("ai8xize.py"):
    out = Path(args[args.index("--test-dir") + 1]) / args[args.index("--prefix") + 1]
    out.mkdir(parents=True, exist_ok=True)
    # stand-in files in the layout ai8xize writes (not its output): the lines unpu reads
    (out / "cnn.h").write_text("  Weight memory: 381,792 bytes out of 442,368 bytes total (86%)\n"
                               "  Bias memory:   1,220 bytes out of 2,048 bytes total (60%)\n"
                               "#define CNN_NUM_OUTPUTS 100\n")
    (out / "main.c").write_text("void load_input(void)\n{\n  memcpy32((uint32_t *) 0x50400000, input_0, 1024);\n}\n"
                                "int main(void) {\n  cnn_enable(MXC_S_GCR_PCLKDIV_CNNCLKSEL_PCLK, "
                                "MXC_S_GCR_PCLKDIV_CNNCLKDIV_DIV1);\n}\n")
    (out / "project.mk").write_text("# project.mk\n")
"""

FAKE_MAKE = r"""
import shutil
from pathlib import Path
project = Path(sys.argv[sys.argv.index("-C") + 1])
(project / "build").mkdir(exist_ok=True)
shutil.copy(os.environ["UNPU_TEST_ELF"], project / "build" / "max78000.elf")
"""


def _tiny_elf(tmp_path: Path) -> Path:
    src = tmp_path / "tiny.c"
    src.write_text("const int table[64] = {1};\nint counter;\nint main(void) { return table[counter]; }\n")
    elf = tmp_path / "tiny.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-e", "main", str(src),
                    "-o", str(elf)], check=True, timeout=60)
    return elf


@pytest.mark.slow
def test_check_build_flash_run_the_documented_commands(tmp_path, monkeypatch, fake_tools, shared_cache):
    model = _quantized("simplenet", tmp_path, shared_cache)
    msdk, synth = _fake_msdk(tmp_path, "MAX78000"), _fake_synthesis(tmp_path)
    python = fake_tools.make("python", script=FAKE_PYTHON, stdout="Python 3.11.9\n")
    openocd = fake_tools.make("openocd", stdout="Open On-Chip Debugger 0.12.0+dev-g1 (2023-01-01)\n")
    fake_tools.make("make", script=FAKE_MAKE)
    for var, value in (("MAXIM_PATH", msdk), ("AI8X_SYNTHESIS", synth), ("AI8X_PYTHON", python),
                       ("OPENOCD", openocd), ("UNPU_TEST_ELF", _tiny_elf(tmp_path))):
        monkeypatch.setenv(var, str(value))
    board = _board("max78000", tmp_path, "board.port=/dev/ttyACM9")

    board.check_environment()
    board.preflight(model)
    work = tmp_path / "work"
    fw = board.build(model, work)
    board.flash(fw, work)

    out = work / "ai8x"
    project = out / "generated" / "unpu"
    scripts = msdk / "Tools" / "OpenOCD" / "scripts"
    assert fake_tools.calls() == [
        ["python", "--version"],
        ["openocd", "--version"],
        ["python", str(CHECKPOINT_SCRIPT), str(out / "weights.npz"), str(out / "unpu.pth.tar"), "--arch", "unpu"],
        ["python", str(synth / "ai8xize.py"), "--test-dir", str(out / "generated"), "--prefix", "unpu",
         "--checkpoint-file", str(out / "unpu.pth.tar"), "--config-file", str(out / "network.yaml"),
         "--sample-input", str(out / "sample.npy"), "--device", "MAX78000", "--board-name", "EvKit_V1",
         "--compact-data", "--mexpress", "--overwrite", "--no-version-check", "--verbose"],
        ["make", "-C", str(project), board.make_command(project, msdk, out / "unpu_build.h")[3],
         f"MAXIM_PATH={msdk}", "TARGET=MAX78000", "BOARD=EvKit_V1", f"UNPU_BUILD_H={out / 'unpu_build.h'}"],
        ["openocd", "-s", str(scripts), "-f", "interface/cmsis-dap.cfg", "-f", "target/max78000.cfg",
         "-c", f"program {project / 'build' / 'max78000.elf'} verify reset exit"],
    ]
    # unpu's sources join the generated MSDK project; its known-answer main.c is moved aside
    assert (project / "project.mk").read_text().endswith(f"include {PORT_DIR / 'unpu.mk'}\n")
    assert not (project / "main.c").exists() and (project / "ai8x_kat_main.c.txt").exists()
    header = (out / "unpu_build.h").read_text()
    for line in ("#define UNPU_AI8X_INPUT_H 32", "#define UNPU_AI8X_INPUT_C 3", "#define UNPU_AI8X_INPUT_CHUNKS 1",
                 "#define UNPU_AI8X_INPUT_ADDRS {0x50400000u}", "#define UNPU_AI8X_INPUT_FIRST_CH {0u}",
                 "#define UNPU_AI8X_CNN_ENABLE() cnn_enable(MXC_S_GCR_PCLKDIV_CNNCLKSEL_PCLK, "
                 "MXC_S_GCR_PCLKDIV_CNNCLKDIV_DIV1)", "#define UNPU_PIN_TS_PORT 1", "#define UNPU_PIN_TS_PIN 6"):
        assert line in header
    assert fw.metrics["memory/npu_weights"] == 381792 and fw.metrics["ai8x/bias_bytes"] == 1220
    assert fw.metrics["memory/flash"] > 0 and board.spec.runtime == "ai8x"
    # what ai8xize was given: 14 layers, 8-bit weights, the sample as int64 C x H x W
    import yaml

    net = yaml.safe_load((out / "network.yaml").read_text())
    assert net["arch"] == "unpu" and len(net["layers"]) == 14 and net["layers"][0]["data_format"] == "HWC"
    assert [l["out_offset"] for l in net["layers"][:2]] == ["0x4000", "0x0000"]
    assert net["layers"][4]["max_pool"] == 2 and net["layers"][4]["pool_stride"] == 2
    with np.load(out / "weights.npz") as w:
        assert w["l0.op.weight"].shape == (16, 3, 3, 3) and w["l0.op.weight"].dtype == np.int64
        assert all(-128 <= w[k].min() and w[k].max() <= 127 for k in w.files if k.endswith(".op.weight"))
        assert sum(w[k].size for k in w.files if k.endswith(".op.weight")) == 381792
    sample = np.load(out / "sample.npy")
    assert sample.shape == (3, 32, 32) and sample.dtype == np.int64


def test_flash_is_retried_once(tmp_path, monkeypatch, fake_tools):
    from unpu.artifacts import Firmware

    msdk = _fake_msdk(tmp_path, "MAX78002")
    monkeypatch.setenv("MAXIM_PATH", str(msdk))
    monkeypatch.setenv("OPENOCD", str(fake_tools.make("openocd", exit_code=1, stdout="Error: unable to find a matching CMSIS-DAP device\n")))
    board = _board("max78002", tmp_path)
    elf = tmp_path / "max78002.elf"
    with pytest.raises(BoardError, match="OpenOCD flash of the MAX78002 failed"):
        board.flash(Firmware(image=elf, digest="d", build_id="b"), tmp_path)
    calls = fake_tools.calls()
    assert len(calls) == 2 and calls[0] == calls[1]
    assert calls[0][calls[0].index("-c") + 1] == f"program {elf} verify reset exit"
    assert "target/max78002.cfg" in calls[0]


# ---- parsers, on ai8x-synthesis output published in the MSDK ------------------------------------

# analogdevicesinc/msdk, Examples/MAX78000/CNN/mnist/cnn.h (commit 16728031a4813884022086ee7cb44ea068d4a2ff),
# written by ai8xize.py (izer/stats.py); lines quoted verbatim.
MNIST_CNN_H_MAX78000 = """
/*
  SUMMARY OF OPS
  Hardware: 10,883,968 ops (10,751,808 macc; 128,576 comp; 3,584 add; 0 mul; 0 bitwise)
    Layer 0: 470,400 ops (423,360 macc; 47,040 comp; 0 add; 0 mul; 0 bitwise)
    Layer 1: 8,356,800 ops (8,294,400 macc; 62,400 comp; 0 add; 0 mul; 0 bitwise)
    Layer 2: 1,954,304 ops (1,935,360 macc; 18,944 comp; 0 add; 0 mul; 0 bitwise)
    Layer 3: 100,544 ops (96,768 macc; 192 comp; 3,584 add; 0 mul; 0 bitwise)
    Layer 4: 1,920 ops (1,920 macc; 0 comp; 0 add; 0 mul; 0 bitwise)

  RESOURCE USAGE
  Weight memory: 71,148 bytes out of 442,368 bytes total (16%)
  Bias memory:   10 bytes out of 2,048 bytes total (0%)
*/

/* Number of outputs for this network */
#define CNN_NUM_OUTPUTS 10
"""

# analogdevicesinc/msdk, Examples/MAX78002/CNN/mnist/cnn.h (commit 16ecdea6fa5413698e7093335f333fe999b77c16)
MNIST_RESOURCES_MAX78002 = """
  RESOURCE USAGE
  Weight memory: 71,148 bytes out of 2,396,160 bytes total (3%)
  Bias memory:   10 bytes out of 8,192 bytes total (0%)
"""

# analogdevicesinc/msdk, Examples/MAX78000/CNN/mnist/main.c (commit 0c084f499ba1df3ad119d54a1ab8ca9324ad6a77)
MNIST_MAIN_C = """
// 1-channel 28x28 data input (784 bytes / 196 32-bit words):
// CHW 28x28, channel 0
static const uint32_t input_0[] = SAMPLE_INPUT_0;

void load_input(void)
{
    // This function loads the sample data input -- replace with actual data

    memcpy32((uint32_t *)0x50400000, input_0, 196);
}
"""


def test_cnn_h_statistics_max78000():
    m = parse_cnn_h(MNIST_CNN_H_MAX78000)
    assert m == {"memory/npu_weights": 71148, "ai8x/weight_memory_bytes": 442368, "ai8x/bias_bytes": 10,
                 "ai8x/bias_memory_bytes": 2048, "ai8x/hw_ops": 10883968, "ai8x/hw_macc": 10751808,
                 "ai8x/layers": 5, "ai8x/outputs": 10}


@pytest.mark.parametrize("board, text, total", [("max78000", MNIST_CNN_H_MAX78000, 442368),
                                                ("max78002", MNIST_RESOURCES_MAX78002, 2396160)])
def test_yaml_weight_and_bias_memory_equal_what_ai8xize_reports(tmp_path, board, text, total):
    m = parse_cnn_h(text)
    dev = _board(board, tmp_path).device
    assert (dev.weight_bytes, dev.bias_bytes) == (total, m["ai8x/bias_memory_bytes"]) and m["ai8x/weight_memory_bytes"] == total


def test_cnn_h_without_resource_usage_is_refused():
    with pytest.raises(Ai8xError, match="no 'Weight memory"):
        parse_cnn_h("#define CNN_NUM_OUTPUTS 10\n")


def test_load_input_addresses_from_generated_main_c():
    assert parse_load_input(MNIST_MAIN_C) == [(0x50400000, "input_0", 196)]
    with pytest.raises(Ai8xError, match="no memcpy32 input loads"):
        parse_load_input("void load_input(void)\n{\n  // FIFO\n}\n")


def test_requantize_is_8_bit_with_a_power_of_two_shift():
    w, b, shift = requantize(np.array([[0.5, -0.25], [0.125, 0.0]]), np.array([0.25, -1.0]))
    assert shift == -1 and w.tolist() == [[127, -64], [32, 0]]      # 0.5 / 2^-1 * 128 = 128 -> clamped
    assert (b // 128).tolist() == [64, -128] and (b % 128 == 0).all()   # checkpoints keep biases x128


# ---- pre-flight on real quantized models --------------------------------------------------------

def _graph_weight_bytes(data: bytes) -> int:
    """8-bit weight bytes counted straight from the TFLite graph (independent of the lowering)."""
    from ai_edge_litert import schema_py_generated as schema

    from unpu.graph import inspect_tflite

    tensors = schema.ModelT.InitFromPackedBuf(data, 0).subgraphs[0].tensors
    return sum(int(np.prod(tensors[op.inputs[1]].shape)) for op in inspect_tflite(data).ops
               if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))


@pytest.mark.slow
def test_mobilenet_weights_fit_max78000_but_depthwise_is_named(tmp_path, shared_cache):
    model = _quantized("mobilenet", tmp_path, shared_cache)
    weights = _graph_weight_bytes(model.path.read_bytes())
    board = _board("max78000", tmp_path)
    assert lower(model.path.read_bytes(), board.device).weight_bytes == weights
    with pytest.raises(BoardError) as exc:
        board.preflight(model)
    text = str(exc.value)
    assert "\n" not in text and text.startswith("mobilenet cannot run on max78000: ")
    assert weights <= 442368 and "weight memory" not in text          # ~208 k: fits, as the numbers say
    assert "op 1 DEPTHWISE_CONV_2D: depthwise convolution: MAX78000 has groups=1 only" in text
    assert "(and 12 more like it)" in text and "CONV_2D: stride 2x2" in text


@pytest.mark.slow
def test_mobilenet_on_max78002_is_refused_for_its_strided_convolutions(tmp_path, shared_cache):
    model = _quantized("mobilenet", tmp_path, shared_cache)
    with pytest.raises(BoardError) as exc:
        _board("max78002", tmp_path).preflight(model)
    assert "DEPTHWISE" not in str(exc.value) and "op 0 CONV_2D: stride 2x2: ai8x Conv2d stride is fixed to 1" in str(exc.value)


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARDS)
def test_simplenet_fits_both(tmp_path, shared_cache, board, caplog):
    import logging

    model = _quantized("simplenet", tmp_path, shared_cache)
    with caplog.at_level(logging.INFO, logger="unpu.boards.maxim"):
        _board(board, tmp_path).preflight(model)
    limit = "442,368" if board == "max78000" else "2,396,160"
    weights = _graph_weight_bytes(model.path.read_bytes())
    assert f"14 ai8x layers, {weights:,} B of {limit} B weight memory" in caplog.text


def _convert(path: Path, net, shape) -> Path:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(0, 1, shape).astype(np.float32)] for _ in range(20))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def _wide_convs_tflite(path: Path) -> Path:
    """Real int8 TFLite: 3x3 convolutions 3->128 then 4 x 128->128 (593,280 weights), stride 1, ReLU."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    ws = [tf.constant(rng.normal(0, 0.1, (3, 3, 3, 128)), tf.float32)]
    ws += [tf.constant(rng.normal(0, 0.05, (3, 3, 128, 128)), tf.float32) for _ in range(4)]

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32)])
    def net(x):
        for w in ws:
            x = tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME"))
        return x

    return _convert(path, net, (1, 8, 8, 3))


@pytest.mark.slow
def test_too_many_weights_fail_on_max78000_with_the_numbers_and_fit_max78002(tmp_path):
    model = _file_model(_wide_convs_tflite(tmp_path / "wide.tflite"))
    weights = _graph_weight_bytes(model.path.read_bytes())
    assert weights == 3 * 9 * 128 + 4 * 9 * 128 * 128 == 593280
    with pytest.raises(BoardError) as exc:
        _board("max78000", tmp_path).preflight(model)
    assert str(exc.value) == ("wide cannot run on max78000: its 593,280 B of 8-bit weights exceed the 442,368 B "
                              "CNN weight memory")
    _board("max78002", tmp_path).preflight(model)   # 2,396,160 B: fits


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARDS)
def test_unsupported_operator_is_named(tmp_path, board):
    from test_vela import _depth_to_space_tflite

    path = tmp_path / "d2s.tflite"
    _depth_to_space_tflite(path)
    model = _file_model(path)
    with pytest.raises(BoardError) as exc:
        _board(board, tmp_path).preflight(model)
    assert str(exc.value).startswith(f"d2s cannot run on {board}: op 1 DEPTH_TO_SPACE: no MAX7800x CNN operation")


# ---- firmware: the SDK-free part through the real compilers -------------------------------------

def test_sdk_free_port_and_harness_compile_for_cortex_m4(tmp_path):
    for src in (FIRMWARE / "ports" / "common" / "cortex_m.c", FIRMWARE / "ports" / "common" / "port_dwt.c",
                PORT_DIR / "ai8x_layout.c", FIRMWARE / "harness" / "unpu_harness.c"):
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16",
                        "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                        f"-I{FIRMWARE / 'harness'}", f"-I{PORT_DIR}", f"-I{FIRMWARE / 'ports' / 'common'}", "-c", str(src),
                        "-o", str(tmp_path / (src.stem + ".o"))],
                       check=True, timeout=120)


def test_hwc_packing_matches_the_documented_layout(tmp_path):
    """ai8x HWC: a 32-bit word holds 4 consecutive channels of one pixel, lowest channel in byte 0;
    channels 4k..4k+3 go to the k-th memory instance (ai8x-synthesis README, "HWC")."""
    h, w, c = 3, 5, 6
    data = np.arange(h * w * c, dtype=np.int64).astype(np.int8) - 40
    main = tmp_path / "pack.c"
    main.write_text("#include <stdio.h>\n#include \"ai8x_layout.h\"\n"
                    f"static const int8_t in[] = {{{', '.join(str(int(v)) for v in data)}}};\n"
                    "int main(void) { uint32_t words[15];\n"
                    " for (uint32_t k = 0; k < 6; k += 4) { ai8x_pack_hwc(in, 3, 5, 6, k, words);\n"
                    "  for (int i = 0; i < 15; i++) printf(\"%u \", words[i]); }\n return 0; }\n")
    exe = tmp_path / "pack"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{PORT_DIR}", str(main), str(PORT_DIR / "ai8x_layout.c"),
                    "-o", str(exe)], check=True, timeout=120)
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=30).stdout.split()]
    pixels = data.reshape(h * w, c).view(np.uint8).astype(np.uint32)
    want = []
    for first in (0, 4):
        chunk = np.zeros((h * w, 4), np.uint32)
        chunk[:, :min(4, c - first)] = pixels[:, first:first + 4]
        want += (chunk[:, 0] | chunk[:, 1] << 8 | chunk[:, 2] << 16 | chunk[:, 3] << 24).tolist()
    assert got == want
