"""Sophgo CV1800B (Milk-V Duo) adapter, as far as it runs without TPU-MLIR, the Duo SDK and a board:
the one-line refusal, the full recorded command sequence (compile -> build -> deploy) against fake
tools, the model_tool report parser on the vendor's documented sample, pre-flight on real models,
and the Linux port + harness compiled with the host gcc and driven over a pipe by the shared client."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO, board_of, compose, run_unpu
from unpu.artifacts import QuantizedModel
from unpu.errors import BoardError
from unpu.boards.base import FIRMWARE
from unpu.boards.cvitek import CV1800BBoard, check_ops, estimate_ion_bytes
from unpu.boards.firmware import HARNESS, KERNELS, generate_model, kernel_sources
from unpu.graph import inspect_tflite
from unpu.links import PipeLink
from unpu.compilers.tpu_mlir import MIB, SUPPORTED_OPS, TpuMlirError, find_tools, parse_model_info

ENV_VARS = ("TPU_MLIR_PATH", "TPU_SDK_PATH", "DUO_TOOLCHAIN")

# `cvimodel_tool -a dump -i xxx.cvimodel` output as documented in the CV183x/CV182x TPU development
# manual, chapter 2.1 (https://github.com/sophgo/tpu_compiler/blob/master/doc/cvitek_tpu_development_manual.md);
# TPU-MLIR's `model_tool --info` prints the same header, Sections table and programs.
DOCUMENTED_DUMP = """\
Cvitek Runtime 1.2.0 # runtime lib的版本号
Mlir Version: tpu_rel_v1.3.4-42-g2bd9f2a54-dirty:20201205
# 编译此cvimodel所用工具链的版本号
Cvimodel Version: 1.2.0 # cvimodel的版本号
Build at 2020-12-05 23:37:09 # cvimodel编译的时间
CviModel Need ION Memory Size: (5.74 MB) # 模型会使用的ION内存大小

 Sections:

 ID   TYPE   NAME        SIZE   OFFSET ENCRYPT MD5
 000 weight weight       820800 0      False   49974c...
 001 cmdbuf tpu_func0_3e 1440   820800 False   caa513...

WeightMap:
ID  OFFSET SIZE   TYPE  N   C    H W NAME
000 1600   819200 int8  400 2048 1 1 filter_quant_lowered
001 0      1600   int32 400 1    1 1 bias_quant_lowered

 Program %0
  batch_num : 1
  private_gmem_size: 0  # 私有memory大小
  shared_gmem_size: 448 # 共有memory\\<多个模型共享的内存区域\\>大小
  inputs: data_quant    # 模型输入tensor名称，可对应于后面的tensor列表
  outputs: input.7_Split_dequant # 模型输出tensor名称，可对应于后面的tensor列表

  tensor_map: # tensor列表
    ID  OFFSET TYPE N C H    W QSCALE   MEM    NAME
    000 0      int8 1 1 2048 1 5.314389 io_mem data_quant
    001 0      int8 1 1 400  1 -        shared fc
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)

PORT = FIRMWARE / "ports" / "cv1800b"


def _board(tmp_path: Path, *overrides: str) -> CV1800BBoard:
    return board_of(compose(["board=cv1800b", *overrides], tmp_path))


# ---- the one-line refusal ------------------------------------------------------------------------

def test_cli_refuses_with_one_line_naming_tpu_mlir(tmp_path):
    proc = run_unpu(["board=cv1800b", "model=mobilenet"], tmp_path, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("unpu: board=cv1800b: model_transform.py not found")
    assert "TPU_MLIR_PATH" in lines[0] and "github.com/sophgo/tpu-mlir" in lines[0]


def test_compose_only_needs_no_tools(tmp_path):
    proc = run_unpu(["board=cv1800b", "--cfg", "job"], tmp_path, timeout=120)
    assert proc.returncode == 0 and "unpu.boards.cvitek.CV1800BBoard" in proc.stdout


def test_tpu_mlir_path_without_tools_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TPU_MLIR_PATH", str(tmp_path))
    with pytest.raises(TpuMlirError, match=r"TPU_MLIR_PATH=.* has no executable model_transform"):
        find_tools()


# ---- model_tool --info, on the vendor's documented sample ----------------------------------------

def test_parse_documented_cvimodel_dump():
    info = parse_model_info(DOCUMENTED_DUMP)
    assert info.ion_bytes == round(5.74 * MIB)
    assert info.sections == {"weight": 820800, "cmdbuf": 1440}
    assert (info.private_gmem_bytes, info.shared_gmem_bytes) == (0, 448)
    assert info.mlir_version == "tpu_rel_v1.3.4-42-g2bd9f2a54-dirty:20201205"


def test_parse_without_ion_line_is_an_error():
    with pytest.raises(TpuMlirError, match="ION"):
        parse_model_info("Sections:\n")


# ---- compile -> build -> deploy, against fake tools ----------------------------------------------

DEPLOY_HELP = "INFO : TPU-MLIR v1.15.1-20250208\nusage: model_deploy.py --processor {bm1684x,cv183x,cv182x,cv181x,cv180x}\n"
WRITE_ARG = ("a = sys.argv\nfor flag in {flags!r}:\n    if flag in a:\n"
             "        open(a[a.index(flag) + 1], 'wb').write(b'fake')\n")


def _fake_environment(fake_tools, tmp_path, monkeypatch) -> dict:
    fake_tools.make("tf2onnx-python", script=WRITE_ARG.format(flags=["--output"]))
    fake_tools.make("model_transform.py")
    fake_tools.make("run_calibration.py")
    fake_tools.make("model_deploy.py", stdout=DEPLOY_HELP, script=WRITE_ARG.format(flags=["--model"]))
    fake_tools.make("model_tool", stdout=DOCUMENTED_DUMP)
    fake_tools.make("riscv64-unknown-linux-musl-gcc")
    fake_tools.make("make", script="import shutil\nb = [x for x in sys.argv if x.startswith('BUILD_DIR=')][0][10:]\n"
                                   "os.makedirs(b, exist_ok=True)\nshutil.copy('/bin/true', b + '/unpu_cvi')\n")
    fake_tools.make("ssh")
    fake_tools.make("scp")
    sdk = tmp_path / "cvitek_tpu_sdk"
    (sdk / "include").mkdir(parents=True)
    (sdk / "include" / "cviruntime.h").write_text("")
    (sdk / "lib").mkdir()
    monkeypatch.setenv("TPU_SDK_PATH", str(sdk))
    return {"sdk": sdk, "python": str(fake_tools.bin / "tf2onnx-python")}


def test_full_command_sequence(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    """The sequence of TPU-MLIR's CV18xx guide (docs/quick_start/source_en/Appx.02_cv18xx_guide.rst in
    https://github.com/sophgo/tpu-mlir: model_transform, run_calibration, model_deploy --quantize INT8
    --calibration_table --processor, model_tool --info), after tf2onnx's TFLite conversion
    (https://github.com/onnx/tensorflow-onnx, `python -m tf2onnx.convert --tflite`), then the cross
    build and the ssh/scp deployment to the Duo (https://milkv.io/docs/duo/getting-started/setup:
    root@192.168.42.1 over USB-RNDIS)."""
    env = _fake_environment(fake_tools, tmp_path, monkeypatch)
    board = _board(tmp_path, "model=file", f"model.path={softmax_tflite}", "board.host=192.168.42.1",
                   f"board.toolchain.tf2onnx_python={env['python']}", "quant.calibration_samples=3")
    board.check_environment()
    model = QuantizedModel("softmax10", softmax_tflite, "d" * 64, 0, "tflite graph")
    board.preflight(model)
    firmware = board.build(model, tmp_path / "work")
    board.flash(firmware, tmp_path / "work")   # the deployment: ssh mkdir, scp

    calls = fake_tools.calls()
    out = Path(calls[2][calls[2].index("--output") + 1]).parent  # the compile's working directory
    bin_ = fake_tools.bin
    ssh_opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    work = tmp_path / "work" / "firmware"
    assert calls == [
        ["model_deploy.py", "--help"],
        ["tf2onnx-python", "-c", "import tf2onnx"],
        ["tf2onnx-python", "-m", "tf2onnx.convert", "--tflite", f"{out}/model.tflite", "--dequantize",
         "--opset", "13", "--output", f"{out}/model.onnx"],
        ["model_transform.py", "--model_name", "model", "--model_def", f"{out}/model.onnx",
         "--input_shapes", "[[1,10]]", "--mlir", f"{out}/model.mlir"],
        ["run_calibration.py", f"{out}/model.mlir", "--dataset", f"{out}/cali", "--input_num", "3",
         "-o", f"{out}/model_cali_table"],
        ["model_deploy.py", "--mlir", f"{out}/model.mlir", "--quantize", "INT8", "--calibration_table",
         f"{out}/model_cali_table", "--processor", "cv180x", "--model", f"{out}/model.cvimodel"],
        ["model_tool", "--info", f"{out}/model.cvimodel"],
        ["make", "-C", str(PORT), f"CC={bin_}/riscv64-unknown-linux-musl-gcc", f"TPU_SDK_PATH={env['sdk']}",
         f"BUILD_DIR={work}/build", f"BUILD_H={work}/unpu_build.h"],
        ["ssh", *ssh_opts, "-p", "22", "root@192.168.42.1", "mkdir -p /root/unpu"],
        ["scp", "-O", *ssh_opts, "-P", "22", "-r", f"{work}/build/unpu_cvi", str(firmware.files["cvimodel"]),
         f"{env['sdk']}/lib", "root@192.168.42.1:/root/unpu/"],
    ]
    assert board.run_command("model.cvimodel") == [
        "ssh", *ssh_opts, "-p", "22", "-T", "root@192.168.42.1",
        "cd /root/unpu && LD_LIBRARY_PATH=/root/unpu/lib exec ./unpu_cvi model.cvimodel -1 -1"]
    assert firmware.metrics["memory/ion"] == round(5.74 * MIB)
    assert firmware.metrics["memory/npu_weights"] == 820800
    assert firmware.tags["tpu_mlir.version"] == "v1.15.1-20250208"
    header = (work / "unpu_build.h").read_text()
    assert "#define UNPU_INPUT_BYTES 10" in header and f"#define UNPU_CVI_ION_BYTES {round(5.74 * MIB)}" in header


def test_cvimodel_over_the_ion_budget_is_refused_before_the_build(tmp_path, monkeypatch, fake_tools, softmax_tflite):
    env = _fake_environment(fake_tools, tmp_path, monkeypatch)
    board = _board(tmp_path, "model=file", f"model.path={softmax_tflite}", "board.host=duo",
                   f"board.toolchain.tf2onnx_python={env['python']}", "quant.calibration_samples=2",
                   "board.memory.ion_bytes=4194304")
    board.check_environment()
    with pytest.raises(BoardError, match=r"needs 6,018,826 B of ION memory, board.memory.ion_bytes is 4,194,304 B"):
        board.build(QuantizedModel("softmax10", softmax_tflite, "e" * 64, 0, "tflite graph"), tmp_path / "work")
    assert not any(call[0] == "make" for call in fake_tools.calls())


def test_missing_host_is_named(tmp_path, monkeypatch, fake_tools):
    env = _fake_environment(fake_tools, tmp_path, monkeypatch)
    board = _board(tmp_path, f"board.toolchain.tf2onnx_python={env['python']}")
    with pytest.raises(BoardError, match="board.host is not set"):
        board.check_environment()


def test_ssh_options_and_pins_reach_the_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("TPU_SDK_PATH", "/sdk")
    board = _board(tmp_path, "board.host=10.0.0.2", "board.ssh.user=duo", "board.ssh.port=2222",
                   "board.ssh.options=['StrictHostKeyChecking=accept-new']", "board.pins.timestamp=440",
                   "board.pins.stage=441", "board.ssh.remote_dir='/tmp/u p'")
    cmd = board.run_command("m.cvimodel")
    assert cmd[:9] == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o",
                       "StrictHostKeyChecking=accept-new", "-p", "2222"]
    assert cmd[-2:] == ["duo@10.0.0.2", "cd '/tmp/u p' && LD_LIBRARY_PATH='/tmp/u p'/lib exec ./unpu_cvi m.cvimodel 440 441"]


# ---- pre-flight on real quantized models ---------------------------------------------------------

def _quantized(name: str, tmp_path: Path, cache: Path):
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose([f"model={name}", f"cache.dir={cache}"], tmp_path)
    return steps.quantized_model(cfg, Cache(cache))


@pytest.mark.slow
def test_preflight_accepts_mobilenet_and_names_what_does_not_fit(tmp_path, shared_cache):
    model = _quantized("mobilenet", tmp_path, shared_cache)
    _board(tmp_path).preflight(model)          # every op supported, fits 16 MiB of ION
    need = estimate_ion_bytes(inspect_tflite(model.path.read_bytes()))
    assert model.path.stat().st_size // 2 < need < 16 * MIB
    with pytest.raises(BoardError, match=rf"about {need:,} B of ION memory .*ion_bytes is 100,000 B"):
        _board(tmp_path, "board.memory.ion_bytes=100000").preflight(model)
    ops = tuple(o for o in SUPPORTED_OPS if o != "DEPTHWISE_CONV_2D")
    with pytest.raises(BoardError, match=r"operator DEPTHWISE_CONV_2D \(layer \d+\) is not supported"):
        _board(tmp_path, f"board.tpu_mlir.supported_ops=[{','.join(ops)}]").preflight(model)


@pytest.mark.slow
def test_preflight_refuses_float_models(tmp_path, shared_cache):
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose(["model=dscnn", "quant=float32", f"cache.dir={shared_cache}"], tmp_path)
    model = steps.quantized_model(cfg, Cache(shared_cache))
    with pytest.raises(BoardError, match="is float32; the cv1800b path takes int8"):
        _board(tmp_path).preflight(model)


def test_check_ops_names_the_first_unsupported_layer(softmax_tflite):
    from unpu.graph import inspect_tflite

    graph = inspect_tflite(softmax_tflite.read_bytes())
    check_ops("m", graph, ("SOFTMAX",))
    with pytest.raises(BoardError, match=r"operator SOFTMAX \(layer 0\)"):
        check_ops("m", graph, ("CONV_2D",))


# ---- the Linux port + harness, built with the host gcc, over a pipe --------------------------------

def test_port_and_harness_run_over_a_pipe(tmp_path, softmax_tflite):
    """port.c (stdin/stdout link, CLOCK_MONOTONIC_RAW, sysfs pins off) + the portable harness + the
    codegen runner standing in for runner_cvi.c (which needs cviruntime), driven by DutClient
    through PipeLink exactly as the ssh process is on the board."""
    from unpu.protocol import DutClient

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no host gcc")
    generate_model(softmax_tflite.read_bytes(), tmp_path / "gen")
    exe = tmp_path / "unpu_cvi"
    subprocess.run([gcc, "-O1", "-std=gnu99", "-Wall", "-Wextra", "-Werror", f"-I{HARNESS}", f"-I{KERNELS}",
                    f"-I{PORT.parent / 'family' / 'posix'}", f"-I{tmp_path / 'gen'}", str(PORT / "port.c"),
                    str(PORT.parent / "family" / "posix" / "posix_port.c"), str(PORT.parent / "common" / "port_defaults.c"),
                    str(HARNESS / "unpu_harness.c"),
                    str(HARNESS / "runner_codegen.c"), *map(str, kernel_sources()), str(tmp_path / "gen" / "model.c"),
                    "-o", str(exe), "-lm"], check=True, timeout=300)
    proc = subprocess.Popen([str(exe), "unused.cvimodel", "-1", "-1"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        client = DutClient(PipeLink(proc), timeout_s=10)
        assert client.connect() == "dut-[unpu]"
        info = client.info()
        assert (info.clock_hz, info.timer) == (1_000_000_000, "os")
        client.load_input(bytes(range(10)))
        result = client.infer(5, 1)
        assert result.window_us > 0 and set(client.stages()) == {"init", "input", "inference", "output", "post"}
        assert len(client.output()) == 10
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert proc.returncode == 0  # EOF on stdin ends the program cleanly


def test_runner_cvi_and_makefile_are_in_the_port():
    text = (PORT / "runner_cvi.c").read_text()
    for call in ("CVI_NN_RegisterModel", "CVI_NN_GetInputOutputTensors", "CVI_NN_Forward", "CVI_NN_CleanupModel"):
        assert call in text
    assert "-lcviruntime" in (PORT / "Makefile").read_text()
    assert (REPO / "docs" / "vendors" / "cvi.md").exists()
