"""GAP8 (GreenWaves GAP SDK: NNTool + AutoTiler + gapy), as far as it runs without the SDK and a board:
the one-line message naming what is missing, the full command sequence against argv-recording
stand-ins (fake_tools), the parsers on public GAP SDK / AutoTiler output, pre-flight on real
quantized models, and the harness + runner compiled for rv32imc (and the runner run natively)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO, board_of, compose, run_unpu
from unpu.artifacts import QuantizedModel
from unpu.errors import BoardError
from unpu.boards.base import FIRMWARE
from unpu.boards.gap import Gap8Board, chw_defines
from unpu.compilers.nntool import (ModelFiles, NNToolOptions, network_arg_types, nntool_script, parse_kernels_c,
                                   parse_kernels_h, parse_version)

GAP_VARS = ("GAP_SDK_HOME", "TARGET_CHIP_FAMILY", "TARGET_CHIP", "GAPY_TARGET", "RULES_DIR", "TILER_LIB",
            "GAP_RISCV_GCC_TOOLCHAIN", "GAP_OPENOCD_TOOLS", "NNTOOL", "GAPY")
GAP_SDK = "https://github.com/GreenWaves-Technologies/gap_sdk/blob/a2302650"  # master, 2024-01-16


@pytest.fixture(autouse=True)
def no_gap_env(monkeypatch):
    for var in GAP_VARS:
        monkeypatch.delenv(var, raising=False)

PORT = FIRMWARE / "ports" / "gap8"


def _board(tmp_path: Path, *overrides: str) -> Gap8Board:
    return board_of(compose(["board=gap8", *overrides], tmp_path))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


def fake_sdk(tmp_path: Path, monkeypatch, autotiler: bool = True) -> Path:
    """A directory with the files check_environment looks for, and the variables the SDK config exports."""
    sdk = tmp_path / "gap_sdk"
    (sdk / "utils" / "rules").mkdir(parents=True)
    (sdk / "utils" / "rules" / "pmsis_rules.mk").write_text("")
    lib = sdk / "tools" / "autotiler_v3" / "Autotiler" / "LibTile.a"
    lib.parent.mkdir(parents=True)
    if autotiler:
        lib.write_bytes(b"!<arch>\n")
    env = {"GAP_SDK_HOME": sdk, "TARGET_CHIP_FAMILY": "GAP8", "TARGET_CHIP": "GAP8_V3", "GAPY_TARGET": "gapuino_v3",
           "RULES_DIR": sdk / "utils" / "rules", "TILER_LIB": lib, "GAP_RISCV_GCC_TOOLCHAIN": tmp_path / "riscv",
           "GAP_OPENOCD_TOOLS": sdk / "utils" / "openocd_tools"}
    for var, value in env.items():
        monkeypatch.setenv(var, str(value))
    return sdk


# ---- the CLI on this machine: exit 2, one line naming the missing toolchain --------------------------

def test_cli_without_gap_sdk_exits_2_with_one_line(tmp_path):
    proc = run_unpu(["board=gap8", "model=mobilenet"], tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("unpu: board=gap8: GAP_SDK_HOME is not set")
    assert "github.com/GreenWaves-Technologies/gap_sdk" in lines[0]


def test_cfg_job_still_composes(tmp_path):
    proc = run_unpu(["board=gap8", "--cfg", "job"], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "unpu.boards.gap.Gap8Board" in proc.stdout


# ---- each missing piece, named ---------------------------------------------------------------------

def test_unsourced_config_names_the_variable_and_the_config(tmp_path, monkeypatch):
    fake_sdk(tmp_path, monkeypatch)
    monkeypatch.delenv("GAPY_TARGET")
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "GAPY_TARGET is not set: source $GAP_SDK_HOME/configs/gapuino_v3.sh" in _one_line(exc)


def test_gap9_config_is_refused(tmp_path, monkeypatch):
    fake_sdk(tmp_path, monkeypatch)
    monkeypatch.setenv("TARGET_CHIP_FAMILY", "GAP9")
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "TARGET_CHIP_FAMILY=GAP9" in _one_line(exc)


def test_missing_autotiler_library_says_make_autotiler(tmp_path, monkeypatch):
    fake_sdk(tmp_path, monkeypatch, autotiler=False)
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "run `make autotiler`" in _one_line(exc)


def test_missing_nntool_is_named(tmp_path, monkeypatch):
    fake_sdk(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "nntool not found (NNTOOL unset, not on PATH)" in _one_line(exc) and "make nntool" in str(exc.value)


def test_old_nntool_is_refused(tmp_path, monkeypatch, fake_tools):
    fake_sdk(tmp_path, monkeypatch)
    fake_tools.make("nntool", stdout="NNTOOL Version 3.9\n")
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "NNTool 3.9 is too old" in _one_line(exc)


def test_missing_port_is_named_last(tmp_path, monkeypatch, fake_tools):
    fake_sdk(tmp_path, monkeypatch)
    for tool in ("nntool", "gapy", "riscv32-unknown-elf-gcc"):
        fake_tools.make(tool, stdout="NNTOOL Version 4.1\n" if tool == "nntool" else "")
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).check_environment()
    assert "board.port is not set" in _one_line(exc)


# ---- the whole sequence, against argv-recording stand-ins ------------------------------------------

# The fake nntool writes what the real one does: the state beside the model (-s, `save_state` without
# argument) and the AutoTiler model in -M (-g).
FAKE_NNTOOL = """
args = sys.argv[1:]
if args == ['-v']:
    print('NNTOOL Version 4.1')
elif '-s' in args:
    model = args[args.index('-s') + 2]
    open(os.path.splitext(model)[0] + '.json', 'w').write('{}')
elif '-g' in args:
    open(os.path.join(args[args.index('-M') + 1], args[args.index('-m') + 1]), 'w').write('/* model */')
"""

# The fake make writes what the AutoTiler (`model`) and the SDK build (`build`) would: the generated
# kernels (the public sample's Construct and signature, see test_parse_generated_kernels) and an ELF.
FAKE_MAKE = """
args = sys.argv[1:]
value = lambda key: next(a.split('=', 1)[1] for a in args if a.startswith(key + '='))
out = args[args.index('-C') + 1]
model = value('MODEL_BUILD')
if 'model' in args:
    open(os.path.join(model, 'unpuKernels.c'), 'w').write(os.environ['FAKE_KERNELS_C'])
    open(os.path.join(model, 'unpuKernels.h'), 'w').write(os.environ['FAKE_KERNELS_H'])
    open(os.path.join(model, 'unpu_L3_Flash_Const.dat'), 'wb').write(bytes(1000))
if 'build' in args:
    target = os.path.join(out, 'BUILD', 'GAP8_V3', 'GCC_RISCV_FREERTOS')
    os.makedirs(target, exist_ok=True)
    import shutil
    shutil.copy(os.environ['FAKE_ELF'], os.path.join(target, 'unpu_gap8'))
"""

KERNELS_C = """int unpuCNN_Construct()
{
\tunpu_L3_Memory = (AT_HYPERRAM_POINTER) AT_HYPERRAM_ALLOC(&HyperRam, 339692);
\tif (unpu_L3_Memory == 0) return 2;
\tunpu_L2_Memory = (AT_L2_POINTER) AT_L2_ALLOC(0, 82300);
\tunpu_L2_Memory_Dyn = (AT_L2_POINTER) AT_L2_ALLOC(0, 180448);
\tunpu_L1_Memory = (AT_L1_POINTER) AT_L1_ALLOC(0, 46724);
\treturn 0;
}
"""
KERNELS_H = """extern int unpuCNN(
\t\tsigned char * __restrict__ Input_1,
\t\tsigned char * __restrict__ Output_1);
"""


def riscv_elf(tmp_path: Path) -> Path:
    """A real (tiny) RISC-V ELF for the memory metrics, compiled with clang."""
    if shutil.which("clang") is None:
        pytest.skip("clang not installed (Debian package clang)")
    src = tmp_path / "tiny.c"
    src.write_text("int data_word = 3; char bss_block[100]; int main(void) { return data_word + bss_block[0]; }\n")
    elf = tmp_path / "tiny.o"
    subprocess.run(["clang", "--target=riscv32-unknown-elf", "-march=rv32imc", "-c", str(src), "-o", str(elf)],
                   check=True, timeout=60)
    return elf


def test_check_build_flash_and_run_commands_are_the_documented_ones(tmp_path, monkeypatch, fake_tools,
                                                                       softmax_tflite):
    """The sequence of the GAP SDK documentation and rules:
    - nntool -s SCRIPT MODEL.tflite -q, then nntool -g -M DIR -m <prefix>Model.c -T DIR/tensors -H <prefix>Info.h
      STATE.json: {GAP_SDK}/tools/nntool/docs/command_line.rst ("Scripting Mode") and the SDK's NN example rules
      {GAP_SDK}/examples/gap8/nn/nntool/common/model_rules.mk ($(MODEL_STATE) and $(AT_MODEL_PATH) recipes);
    - the AutoTiler generator and the firmware through make (`model`, then the pmsis rules' `build`);
    - gapy --target=$GAPY_TARGET --platform=board --work-dir=BUILDDIR [readfs files] run --image --flash --binary=BIN,
      then run --exec-prepare --exec: the `image`/`flash_fs` and `run` targets of
      {GAP_SDK}/rtos/freeRTOS/vendors/gwt/rules/freeRTOS_rules.mk; the readfs option of utils/rules/pmsis_rules.mk.
    """
    sdk = fake_sdk(tmp_path, monkeypatch)
    fake_tools.make("nntool", script=FAKE_NNTOOL)
    fake_tools.make("make", script=FAKE_MAKE)
    fake_tools.make("gapy")
    fake_tools.make("riscv32-unknown-elf-gcc")
    monkeypatch.setenv("FAKE_KERNELS_C", KERNELS_C)
    monkeypatch.setenv("FAKE_KERNELS_H", KERNELS_H)
    monkeypatch.setenv("FAKE_ELF", str(riscv_elf(tmp_path)))
    board = _board(tmp_path, "board.port=/dev/ttyUSB1")
    board.check_environment()
    model = QuantizedModel("softmax10", softmax_tflite, "0" * 64, 0, "tflite graph")
    work = tmp_path / "work"
    work.mkdir()
    firmware = board.build(model, work)
    board.flash(firmware, work)
    with board.device(firmware, work):   # gapy's JTAG load and start, stopped at the end of the run
        pass

    out = (work / "gap8").resolve()
    mdir = out / "model"
    bin_dir = out / "BUILD" / "GAP8_V3" / "GCC_RISCV_FREERTOS"
    make = ["make", "-C", str(out), "-f", str(PORT / "Makefile"), f"MODEL_BUILD={mdir}", "MODEL_L1=64000",
            "MODEL_L2=400000", "MODEL_L3=8000000", "CLUSTER_STACK_SIZE=4096", "CLUSTER_SLAVE_STACK_SIZE=1024",
            "FREQ_FC=250", "FREQ_CL=175"]
    gapy = ["gapy", "--target=gapuino_v3", "--platform=board", f"--work-dir={bin_dir}",
            f"--config-opt=**/flash/content/partitions/readfs/files={mdir / 'unpu_L3_Flash_Const.dat'}"]
    assert fake_tools.calls() == [
        ["nntool", "-v"],
        ["nntool", "-s", str(mdir / "nntool_script"), str(mdir / "unpu.tflite"), "-q"],
        ["nntool", "-g", "-M", str(mdir), "-m", "unpuModel.c", "-T", str(mdir / "tensors"), "-H", "unpuInfo.h",
         str(mdir / "unpu.json")],
        make + ["model"],
        make + ["build", f"BUILD_H={out / 'unpu_build.h'}", "platform=board", "PMSIS_OS=freertos", "io=disable"],
        gapy + ["run", "--image", "--flash", f"--binary={bin_dir / 'unpu_gap8'}"],
        gapy + ["run", "--exec-prepare", "--exec", f"--binary={bin_dir / 'unpu_gap8'}"],
    ]
    assert sdk.exists()
    # what the build recorded: the AutoTiler's allocations, the weights, the ELF's sections
    m = firmware.metrics
    assert (m["memory/at_l1"], m["memory/at_l2"], m["memory/at_l2_dyn"], m["memory/at_l3_ram"]) == \
        (46724, 82300, 180448, 339692)
    assert m["memory/arena"] == 82300 + 180448 and m["memory/npu_weights"] == 1000
    assert m["memory/bss"] >= 100 and _board(tmp_path).spec.runtime == "autotiler"
    header = (out / "unpu_build.h").read_text()
    assert "#define UNPU_GAP_INPUT_BYTES 10" in header and "#define UNPU_GAP_ARENA_BYTES 262748" in header
    assert "#define UNPU_GAP_PIN_TIMESTAMP PI_GPIO_A0_PAD_12_A3" in header
    assert (mdir / "nntool_script").read_text() == nntool_script(NNToolOptions())


def test_int16_network_input_is_refused(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    fake_sdk(tmp_path, monkeypatch)
    fake_tools.make("nntool", script=FAKE_NNTOOL)
    fake_tools.make("make", script=FAKE_MAKE)
    monkeypatch.setenv("FAKE_KERNELS_C", KERNELS_C)
    monkeypatch.setenv("FAKE_KERNELS_H", KERNELS_H.replace("signed char * __restrict__ Input_1",
                                                           "short int * __restrict__ Input_1"))
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).build(QuantizedModel("s", softmax_tflite, "0" * 64, 0, "tflite graph"), tmp_path)
    assert "takes (short int, signed char)" in _one_line(exc)


def test_q15_softmax_output_is_converted_on_the_device(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    """A graph ending in SOFTMAX: NNTool's SQ8 softmax writes Q15 unless softmax_out_8bits
    ({GAP_SDK}/tools/nntool/nntool/quantization/multiplicative/quantizers/softmax_tanh_mult.py)."""
    fake_sdk(tmp_path, monkeypatch)
    fake_tools.make("nntool", script=FAKE_NNTOOL)
    fake_tools.make("make", script=FAKE_MAKE)
    monkeypatch.setenv("FAKE_KERNELS_C", KERNELS_C)
    monkeypatch.setenv("FAKE_KERNELS_H", KERNELS_H.replace("signed char * __restrict__ Output_1",
                                                           "signed short * __restrict__ Output_1"))
    monkeypatch.setenv("FAKE_ELF", str(riscv_elf(tmp_path)))
    _board(tmp_path).build(QuantizedModel("s", softmax_tflite, "0" * 64, 0, "tflite graph"), tmp_path)
    assert "#define UNPU_GAP_OUTPUT_Q15 1" in (tmp_path / "gap8" / "unpu_build.h").read_text()


# ---- parsers, on public NNTool / AutoTiler output ---------------------------------------------------

def test_parse_nntool_version():
    # tools/nntool/scripts/nntool: print("NNTOOL Version {}".format(__version__)); _version.py: '4.1'
    # ({GAP_SDK}/tools/nntool/scripts/nntool, {GAP_SDK}/tools/nntool/nntool/_version.py)
    assert parse_version("NNTOOL Version 4.1\n") == (4, 1)
    with pytest.raises(BoardError):
        parse_version("usage: nntool [-h]")


# Lines of AutoTiler-generated code for a GAP8 (AI-deck) model, from
# https://github.com/dborstlap/crazyflie_obstacle_avoider/blob/cb90ecef2cc4a13c3d6896f0f919d9c207523c9a/deploy/classification/BUILD_MODEL_SQ8BIT/classificationKernels.c
PUBLIC_CONSTRUCT = """\tAT_HYPERRAM_OPEN(&HyperRam, &HyperRamConf, &Error);
\tif (Error) return 1;
\tAT_HYPERFLASH_FS_OPEN(&HyperFlash, &HyperFlashConf, "classification_L3_Flash_Const.dat", &Error);
\tif (Error) return 1;

\tclassification_L3_Memory = (AT_HYPERRAM_POINTER) AT_HYPERRAM_ALLOC(&HyperRam, 339692);
\tif (classification_L3_Memory == 0) return 2;
\tclassification_L2_Memory = (AT_L2_POINTER) AT_L2_ALLOC(0, 82300);
\tif (classification_L2_Memory == 0) return 3;
\tclassification_L2_Memory_Dyn = (AT_L2_POINTER) AT_L2_ALLOC(0, 180448);
\tif (classification_L2_Memory_Dyn == 0) return 3;
\tclassification_L1_Memory = (AT_L1_POINTER) AT_L1_ALLOC(0, 46724);
\tif (classification_L1_Memory == 0) return 4;
"""
# and from the header of the same repository:
# https://github.com/dborstlap/crazyflie_obstacle_avoider/blob/34a78d22a61ec2f284baba8282ca3f2a6af65a9f/deploy/classification/BUILD_MODEL_SQ8BIT/classificationKernels.h
PUBLIC_HEADER = """#define _classification_L1_Memory_SIZE 46692
#define _classification_L2_Memory_SIZE 270000
extern char *classification_L1_Memory; /* Size given for generation: 46736 bytes, used: 46692 bytes */
extern char *classification_L2_Memory; /* Size used for generation: 270000 bytes */
extern int classificationCNN_Construct();
extern int classificationCNN_Destruct();
extern int classificationCNN(
\t\tsigned char * __restrict__ Input_1,
\t\tsigned short * __restrict__ Output_1);
#endif
"""


def test_parse_generated_kernels():
    assert parse_kernels_c(PUBLIC_CONSTRUCT) == {"l3_ram": 339692, "l2": 82300, "l2_dyn": 180448, "l1": 46724}
    assert parse_kernels_h(PUBLIC_HEADER) == {"l1": 46692, "l2": 270000}
    assert network_arg_types(PUBLIC_HEADER) == ["signed char", "signed short"]   # softmax output: Q15


def test_nntool_script_uses_documented_commands():
    script = nntool_script(NNToolOptions()).splitlines()
    assert script[:2] == ["adjust", "fusions --scale8"]
    assert "set l3_flash_device AT_MEM_L3_HFLASH" in script and "set l3_ram_device AT_MEM_L3_HRAM" in script
    assert script[-1] == "save_state"


def test_model_files_layout(tmp_path):
    files = ModelFiles(tmp_path)
    assert files.state == tmp_path / "unpu.json" and files.weights == tmp_path / "unpu_L3_Flash_Const.dat"


def test_chw_defines_only_for_spatial_multichannel_tensors():
    assert chw_defines("IN", (1, 96, 96, 3)) == {"UNPU_GAP_IN_H": "96", "UNPU_GAP_IN_W": "96", "UNPU_GAP_IN_C": "3"}
    assert chw_defines("OUT", (1, 2)) == {} and chw_defines("OUT", (1, 1, 1, 10)) == {}


# ---- pre-flight on real quantized models -------------------------------------------------------------

def _quantized(name: str, tmp_path: Path, cache: Path, *overrides: str):
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose([f"model={name}", f"cache.dir={cache}", *overrides], tmp_path)
    return steps.quantized_model(cfg, Cache(cache))


@pytest.mark.slow
def test_preflight_accepts_mobilenet_and_names_what_does_not_fit(tmp_path, shared_cache):
    model = _quantized("mobilenet", tmp_path, shared_cache)
    _board(tmp_path).preflight(model)
    with pytest.raises(BoardError) as exc:
        _board(tmp_path, "board.autotiler.l2_bytes=10000", "board.autotiler.l3_bytes=10000").preflight(model)
    assert "B of weights exceed the AutoTiler's L2 + L3 budgets (10,000 + 10,000 B" in _one_line(exc)
    with pytest.raises(BoardError) as exc:
        _board(tmp_path, "board.nntool.supported_ops=[CONV_2D]").preflight(model)
    assert "is not imported by NNTool" in _one_line(exc) and "operator #" in str(exc.value)


@pytest.mark.slow
def test_preflight_refuses_int16_activations(tmp_path, shared_cache):
    model = _quantized("dscnn", tmp_path, shared_cache, "quant=int16x8")
    with pytest.raises(BoardError) as exc:
        _board(tmp_path).preflight(model)
    assert "is int16" in _one_line(exc)


def test_preflight_accepts_a_graph_ending_in_softmax(tmp_path, softmax_tflite):
    _board(tmp_path).preflight(QuantizedModel("softmax10", softmax_tflite, "0" * 64, 0, "tflite graph"))


# ---- the firmware: compiled for rv32imc without the SDK, and the runner run natively -----------------

NEWLIB_INCLUDE = Path("/usr/lib/arm-none-eabi/include")   # target-neutral C headers (string.h) for -ffreestanding


@pytest.mark.skipif(shutil.which("clang") is None or not NEWLIB_INCLUDE.is_dir(),
                    reason="needs clang and newlib headers (Debian packages clang, libnewlib-arm-none-eabi)")
def test_harness_and_runner_compile_for_rv32imc(tmp_path):
    header = tmp_path / "unpu_build.h"
    header.write_text("#define UNPU_GAP_INPUT_BYTES 27648\n#define UNPU_GAP_OUTPUT_BYTES 2\n"
                      "#define UNPU_GAP_IN_H 96\n#define UNPU_GAP_IN_W 96\n#define UNPU_GAP_IN_C 3\n"
                      "#define UNPU_POST_SOFTMAX 1\n#define UNPU_SOFTMAX_MULTIPLIER 1073741824\n"
                      "#define UNPU_SOFTMAX_LEFT_SHIFT 20\n#define UNPU_SOFTMAX_DIFF_MIN -248\n")
    sources = [REPO / "firmware/harness/unpu_harness.c", PORT / "runner_autotiler.c",
               REPO / "firmware/harness/runner_io.c", REPO / "firmware/kernels/ref/softmax.c"]
    for src in sources:
        subprocess.run(["clang", "--target=riscv32-unknown-elf", "-march=rv32imc", "-mabi=ilp32", "-Os",
                        "-ffreestanding", "-std=c99", "-Wall", "-Wextra", "-Werror", "-isystem", str(NEWLIB_INCLUDE),
                        "-include", str(header), f"-I{REPO / 'firmware/harness'}", f"-I{REPO / 'firmware/kernels'}",
                        f"-I{PORT}", "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))],
                       check=True, timeout=120)


STUB_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "gap_cluster.h"
#include "unpu_runner.h"
static int8_t seen[24];
static int constructs, destructs;
int unpu_gap_cluster_open(void) { return 0; }
int unpu_gap_network_construct(void) { constructs++; return 0; }
int unpu_gap_network_destruct(void) { destructs++; return 0; }
#ifdef UNPU_GAP_OUTPUT_Q15
static const int16_t q15[4] = {32767, 0, 16384, -1};
int unpu_gap_network_run(int8_t *in, void *out) { memcpy(seen, in, 24); memcpy(out, q15, sizeof q15); return 0; }
#else
int unpu_gap_network_run(int8_t *in, void *out) { memcpy(seen, in, 24); memcpy(out, in, 24); return 0; }
#endif
int main(void) {
    uint8_t x[24]; uint32_t i, n; const uint8_t *raw;
    for (i = 0; i < 24; ++i) x[i] = (uint8_t)i;
    if (runner_init() || runner_init() || runner_load_input(x, 24) || runner_run() || runner_read_output()) return 1;
    raw = runner_raw_output(&n);
    printf("%d %d %u\n", constructs, destructs, n);
    for (i = 0; i < 24; ++i) printf("%d ", seen[i]);
    printf("\n");
    for (i = 0; i < n; ++i) printf("%d ", (int8_t)raw[i]);
    printf("\n");
    return 0;
}
"""


def test_runner_transposes_hwc_to_chw_and_back_and_reconstructs_each_window(tmp_path):
    """runner_autotiler.c natively, over a stub network that echoes its (CHW) input as output."""
    main = tmp_path / "main.c"
    main.write_text(STUB_MAIN)
    exe = tmp_path / "runner"
    dims = ["-DUNPU_GAP_INPUT_BYTES=24", "-DUNPU_GAP_OUTPUT_BYTES=24", "-DUNPU_GAP_IN_H=2", "-DUNPU_GAP_IN_W=3",
            "-DUNPU_GAP_IN_C=4", "-DUNPU_GAP_OUT_H=2", "-DUNPU_GAP_OUT_W=3", "-DUNPU_GAP_OUT_C=4"]
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", *dims, f"-I{PORT}", f"-I{REPO / 'firmware/harness'}",
                    str(PORT / "runner_autotiler.c"), str(REPO / "firmware/harness/runner_io.c"), str(main), "-o", str(exe)],
                   check=True, timeout=120)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    assert lines[0] == "2 1 24"   # init twice: constructed twice, destructed once in between
    seen = [int(v) for v in lines[1].split()]
    h, w, c = 2, 3, 4
    assert seen == [(y * w + x) * c + k for k in range(c) for y in range(h) for x in range(w)]
    assert [int(v) for v in lines[2].split()] == list(range(24))


def test_runner_turns_q15_softmax_into_tflite_int8(tmp_path):
    """p = q15/32768 -> round(256 p) - 128, saturated: TFLite's int8 softmax output (scale 1/256, zp -128)."""
    main = tmp_path / "main.c"
    main.write_text(STUB_MAIN)
    exe = tmp_path / "runner"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-DUNPU_GAP_INPUT_BYTES=24", "-DUNPU_GAP_OUTPUT_BYTES=4",
                    "-DUNPU_GAP_OUTPUT_Q15=1", f"-I{PORT}", f"-I{REPO / 'firmware/harness'}",
                    str(PORT / "runner_autotiler.c"), str(REPO / "firmware/harness/runner_io.c"), str(main), "-o", str(exe)],
                   check=True, timeout=120)
    lines = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    assert [int(v) for v in lines[2].split()] == [127, -128, 0, -128]


def test_board_yaml_documents_every_gap_key(tmp_path):
    cfg = compose(["board=gap8"], tmp_path)
    assert cfg.board.support == "hardware" and cfg.board.missing is None
    assert cfg.board.adapter._target_ == "unpu.boards.gap.Gap8Board"
    assert json.loads(json.dumps(list(cfg.board.toolchain.sdk_vars)))[0] == "GAP_SDK_HOME"
