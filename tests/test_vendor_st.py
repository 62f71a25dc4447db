"""ST boards (stm32n6, stm32h7a3) over ST Edge AI Core, as far as it runs without ST's tools and
boards: the one-line message naming what is missing, stedgeai's report parsed from ST's published
samples, the full tool sequence (check, generate, build, sign, flash) against recording stand-ins
(tests/conftest.py fake_tools), pre-flight on real quantized models, and the SDK-free half of the
ports through the real cross compiler."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers import REPO, board_of, compose, run_unpu
from unpu.errors import BoardError
from unpu.boards.stm32 import Stm32Board
from unpu.compilers.stedgeai import command, parse_report, parse_version, StEdgeAiOptions

ENV_VARS = ("STEDGEAI_CORE_DIR", "STM32CUBE_H7", "STM32CUBE_N6", "STM32_PRG_PATH", "STM32N6_FSBL")

# The summary of ST's own report for a model generated for an STM32 (software runtime), verbatim from
# https://github.com/STMicroelectronics/stm32ai-modelzoo/blob/main/stm32ai_application_code/sensing_thread_x/
#   Projects/B-U585I-IOT02A/Applications/GS/X-CUBE-AI/App/network_generate_report.txt
# (header and memory summary; the per-layer tables between them are left out).
ST_SW_REPORT = """\
Neural Network Tools for STM32 family v1.7.0 (stm.ai v8.1.0-19520)
Exec/report summary (generate)
---------------------------------------------------------------------------------------------------------------------------
c_name             :   network                                                                                             
compression        :   lossless                                                                                            
target/series      :   stm32f4                                                                                             
params #           :   3,064 items (11.97 KiB)                                                                             
---------------------------------------------------------------------------------------------------------------------------
input 1/1          :   'input_1' (domain:activations/**default**)                                                          
                   :   72 items, 288 B, ai_float, float, (1,24,3,1)                                                        
output 1/1         :   'dense_1' (domain:activations/**default**)                                                          
                   :   4 items, 16 B, ai_float, float, (1,4)                                                               
macc               :   14,404                                                                                              
weights (ro)       :   12,256 B (11.97 KiB) (1 segment)                                                                    
activations (rw)   :   2,880 B (2.81 KiB) (1 segment) *                                                                    
ram (total)        :   2,880 B (2.81 KiB) = 2,880 + 0 + 0                                                                  
---------------------------------------------------------------------------------------------------------------------------
(*) 'input'/'output' buffers can be used from the activations buffer

  Summary per memory device type
  --------------------------------------------
  .\\device      FLASH       %     RAM       % 
  --------------------------------------------
  RT total     13,498   52.4%   2,144   42.7% 
  --------------------------------------------
  TOTAL        25,754           5,024         
  --------------------------------------------
"""

# The Neural-ART (stm32n6) generate output printed in ST's article "Getting started - How to evaluate
# a model on STM32N6 development board" (ST Edge AI Core 4.0.0 docs,
# https://stedgeai-dc.st.com/assets/embedded-docs/stneuralart_getting_started.html, section
# "Outputs of the generate command"), verbatim apart from the left-out compiler command line.
ST_N6_REPORT = """\
ST Edge AI Core v3.0.0
 Exec/report summary (generate)
 --------------------------------------------------------------------------------------------------------------------
 model file         :   /stedgeai/models/mnist_int8_io_i8.tflite
 c_name             :   Default
 target/series      :   stm32n6npu
 model_fmt          :   sa/sa per tensor
 params #           :   20,410 items (20.00 KiB)
 --------------------------------------------------------------------------------------------------------------------
 input 1/1          :   'Input_0_out_0', int8(1x1x28x28x1), 784 Bytes, QLinear(0.003921569,-128,int8), activations
 output 1/1         :   'Quantize_14_out_0', int8(1x1x10), 10 Bytes, QLinear(0.003906250,-128,int8), activations
 macc               :   0
 weights (ro)       :   20,625 B (20.14 KiB) (1 segment) / -61,015(-74.7%) vs float model
 activations (rw)   :   4,060 B (3.96 KiB) (1 segment) *
 ram (total)        :   4,060 B (3.96 KiB) = 4,060 + 0 + 0
 --------------------------------------------------------------------------------------------------------------------
 (*) 'input'/'output' buffers can be used from the activations buffer

Computing AI RT data/code size (target=stm32n6npu)..

Compilation details
   ---------------------------------------------------------------------------------
Compiler version: 0.4.0-892
====================================================================================
Memory usage information
   ---------------------------------------------------------------------------------
        flexMEM    [0x34000000 - 0x34000000]:          0  B /          0  B  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)    
        cpuRAM1    [0x34064000 - 0x34064000]:          0  B /          0  B  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)    
        cpuRAM2    [0x34100000 - 0x34200000]:          0  B /      1.000 MB  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)    
        npuRAM3    [0x34200000 - 0x34270000]:          0  B /    448.000 kB  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)    
        npuRAM4    [0x34270000 - 0x342E0000]:      3.965 kB /    448.000 kB  (  0.89 % used) -- weights:          0  B (  0.00 % used)  activations:      3.965 kB (  0.89 % used)    
        npuRAM5    [0x342E0000 - 0x34350000]:          0  B /    448.000 kB  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)    
        npuRAM6    [0x34350000 - 0x343C0000]:          0  B /    448.000 kB  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)    
        octoFlash  [0x70000000 - 0x74000000]:     20.142 kB /     64.000 MB  (  0.03 % used) -- weights:     20.142 kB (  0.03 % used)  activations:          0  B (  0.00 % used)    
        hyperRAM   [0x90000000 - 0x92000000]:          0  B /     32.000 MB  (  0.00 % used) -- weights:          0  B (  0.00 % used)  activations:          0  B (  0.00 % used)    

Total:                                            24.106 kB                                  -- weights:     20.142 kB                  activations:      3.965 kB
====================================================================================
Used memory ranges
   ---------------------------------------------------------------------------------
        npuRAM4    [0x34270000 - 0x342E0000]: 0x34270000-0x34270FE0
        octoFlash  [0x70000000 - 0x74000000]: 0x70000000-0x700050A0
====================================================================================
Epochs details
   ---------------------------------------------------------------------------------
Total number of epochs                               5
>> pure software (SW) epochs                         1
>> hybrid epochs (using both software and hardware)  0
>> pure hardware (HW or EC) epochs                   4  (implemented in 0 epoch controller blobs/meta epochs)

+----------+------+---------+
| epoch ID | Type | Details |
+----------+------+---------+
| epoch_2  |  HW  |         |
| epoch_3  |  HW  |         |
| epoch_4  |  HW  |         |
| epoch_5  |  HW  |         |
| epoch_6  |  SW  | Softmax |
+----------+------+---------+
====================================================================================
  Summary - "stm32n6npu" target
  --------------------------------------------------
               FLASH (ro)      %*   RAM (rw)      %
  --------------------------------------------------
  RT total         28,536   58.0%        517   9.6%
  --------------------------------------------------
  TOTAL            49,161              5,371
  --------------------------------------------------
"""
# NOT ST output: the same report with the weights moved to 0x70380000, as an mpool that starts the
# xSPI2 pool there would place them (ST's STM32N6 getting-started projects flash their weights at
# 0x70380000); the sample's own 0x70000000 collides with the boot loader (see the pre-flight test).
N6_REPORT_RELOCATED = ST_N6_REPORT.replace("0x70000000-0x700050A0", "0x70380000-0x703850A0")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def _board(name: str, tmp_path: Path, *overrides: str) -> Stm32Board:
    return board_of(compose([f"board={name}", "board.port=/dev/ttyACM7", *overrides], tmp_path))


# ---- the one-line message naming what is missing ------------------------------------------------

@pytest.mark.parametrize("board", ["stm32n6", "stm32h7a3"])
def test_unpu_exits_2_naming_stedgeai(tmp_path, board):
    out = run_unpu([f"board={board}", "model=mobilenet"], tmp_path, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"unpu: board={board}: stedgeai not found (STEDGEAI_CORE_DIR unset, not on PATH)")
    assert "st.com/en/development-tools/stedgeai-core" in lines[0]
    assert not (tmp_path / "mlflow.db").exists()


def test_cfg_job_composes_without_tools(tmp_path):
    for board in ("stm32n6", "stm32h7a3"):
        out = run_unpu([f"board={board}", "--cfg", "job"], tmp_path, timeout=120)
        assert out.returncode == 0 and "_target_: unpu.boards.stm32.Stm32Board" in out.stdout


def test_each_missing_piece_is_named(tmp_path, fake_tools, monkeypatch):
    env = _fake_env(tmp_path, fake_tools, monkeypatch, "stm32n6", ST_N6_REPORT)
    board = _board("stm32n6", tmp_path)
    board.check_environment()   # everything present
    for var, message in (("STM32N6_FSBL", "STM32N6_FSBL is not set"),
                         ("STM32CUBE_N6", "STM32CUBE_N6 is not set: point it at an STM32CubeN6 checkout")):
        monkeypatch.delenv(var)
        with pytest.raises(BoardError, match=message) as exc:
            _board("stm32n6", tmp_path).check_environment()
        assert "\n" not in str(exc.value)
        monkeypatch.setenv(var, env[var])
    (Path(env["STM32_PRG_PATH"]) / "ExternalLoader" / "MX25UM51245G_STM32N6570-NUCLEO.stldr").unlink()
    with pytest.raises(BoardError, match="no external loader MX25UM51245G_STM32N6570-NUCLEO.stldr"):
        _board("stm32n6", tmp_path).check_environment()
    (Path(env["STM32_PRG_PATH"]) / "ExternalLoader" / "MX25UM51245G_STM32N6570-NUCLEO.stldr").write_text("")
    with pytest.raises(BoardError, match="board.port is not set"):
        _board("stm32n6", tmp_path, "board.port=null").check_environment()


def test_old_stedgeai_is_refused(tmp_path, fake_tools, monkeypatch):
    _fake_env(tmp_path, fake_tools, monkeypatch, "stm32h7a3", ST_SW_REPORT, version="1.0.0")
    with pytest.raises(BoardError, match=r"stedgeai 1.0.0 is too old: unpu needs ST Edge AI Core >= 2.0.0"):
        _board("stm32h7a3", tmp_path).check_environment()


# ---- stedgeai's report, from ST's published samples ---------------------------------------------

def test_report_of_the_stm32_software_runtime():
    report = parse_report(ST_SW_REPORT)
    assert (report.macc, report.weights, report.activations, report.ram_total, report.io) == (14404, 12256, 2880, 2880, 0)
    assert (report.flash_total, report.ram_total_with_runtime) == (25754, 5024)
    assert report.pools == [] and report.epochs == {}
    metrics = report.metrics()
    assert metrics["stedgeai/macc"] == 14404 and metrics["stedgeai/weights_bytes"] == 12256
    assert "memory/npu_weights" not in metrics


def test_report_of_the_neural_art_back_end():
    report = parse_report(ST_N6_REPORT)
    assert (report.weights, report.activations, report.ram_total) == (20625, 4060, 4060)
    assert report.macc == 0 and "stedgeai/macc" not in report.metrics()   # the N6 back end reports no MACC
    pools = {p.name: p for p in report.pools}
    assert len(pools) == 9 and pools["npuRAM3"].end - pools["npuRAM3"].start == 448 * 1024
    assert pools["npuRAM4"].activations == 4060 and pools["octoFlash"].weights == 20625   # 3.965 kB, 20.142 kB
    assert pools["cpuRAM2"].used == 0 and pools["hyperRAM"].start == 0x90000000
    assert report.used_ranges == {"npuRAM4": [(0x34270000, 0x34270FE0)], "octoFlash": [(0x70000000, 0x700050A0)]}
    assert report.epochs == {"total": 5, "sw": 1, "hybrid": 0, "hw": 4}
    assert report.sw_epoch_ops == ["Softmax"] and report.tags() == {"stedgeai.sw_epochs": "Softmax"}
    assert (report.flash_total, report.ram_total_with_runtime) == (49161, 5371)
    assert report.metrics()["memory/npu_weights"] == 20625


def test_version_line_from_st_setting_env_article():
    # https://stedgeai-dc.st.com/assets/embedded-docs/setting_env.html: `stedgeai --version`
    assert parse_version("ST Edge AI Core v2.0.0-A1\n    STM32CubeAI 10.0.0\n") == (2, 0, 0)


def test_generate_command_lines():
    n6 = command("/st/stedgeai", "generate", Path("m.tflite"), StEdgeAiOptions("stm32n6", neural_art="default"),
                 Path("/w"), Path("/o"))
    assert n6 == ["/st/stedgeai", "generate", "--model", "m.tflite", "--target", "stm32n6", "--name", "network",
                  "--c-api", "st-ai", "--workspace", "/w", "--output", "/o", "--st-neural-art", "default"]
    h7 = command("stedgeai", "analyze", Path("m.tflite"), StEdgeAiOptions("stm32h7", extra=("-O", "time")),
                 Path("/w"), Path("/o"))
    assert h7[:6] == ["stedgeai", "analyze", "--model", "m.tflite", "--target", "stm32h7"]
    assert "--st-neural-art" not in h7 and h7[-2:] == ["-O", "time"]
    bare = command("stedgeai", "generate", Path("m"), StEdgeAiOptions("stm32n6", neural_art=""), Path("/w"), Path("/o"))
    assert bare[-1] == "--st-neural-art"


# ---- the whole tool sequence, against recording stand-ins ---------------------------------------

FAKE_STEDGEAI = """
args = sys.argv[1:]
if args and args[0] != '--version':
    out = args[args.index('--output') + 1]
    name = args[args.index('--name') + 1]
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, name + '_generate_report.txt'), 'w').write(REPORT)
    open(os.path.join(out, name + '.c'), 'w').write('/* generated */\\n')
    open(os.path.join(out, name + '_c_info.json'), 'w').write('{}')
    if '--st-neural-art' in args:
        open(os.path.join(out, name + '_atonbuf.xSPI2.raw'), 'wb').write(b'\\x01' * 64)
"""

FAKE_MAKE = """
build = [a.split('=', 1)[1] for a in sys.argv if a.startswith('BUILD_DIR=')][0]
os.makedirs(build, exist_ok=True)
import shutil
shutil.copy(ELF, os.path.join(build, 'app.elf'))
open(os.path.join(build, 'app.bin'), 'wb').write(b'app')
"""

FAKE_WRITES_OUTPUT = """
args = sys.argv[1:]
path = args[args.index('-o') + 1] if '-o' in args else args[-1]
open(path, 'wb').write(b'out')
"""


def _fake_env(tmp_path: Path, fake_tools, monkeypatch, board: str, report: str, version: str = "3.0.0") -> dict:
    """Fake ST installs (the files the checks look for) and recording stand-ins for every tool."""
    sdk = tmp_path / "stedgeai_core"
    (sdk / "Utilities" / "linux").mkdir(parents=True)
    exe = fake_tools.make("stedgeai", stdout=f"ST Edge AI Core v{version}\n",
                          script=f"REPORT = {report!r}\n" + FAKE_STEDGEAI)
    (sdk / "Utilities" / "linux" / "stedgeai").write_text(exe.read_text())
    (sdk / "Utilities" / "linux" / "stedgeai").chmod(0o755)
    exe.unlink()   # only the one under STEDGEAI_CORE_DIR
    cube = tmp_path / "cube"
    marker = {"stm32n6": "Drivers/CMSIS/Device/ST/STM32N6xx/Include/stm32n6xx.h",
              "stm32h7a3": "Drivers/CMSIS/Device/ST/STM32H7xx/Include/stm32h7a3xxq.h"}[board]
    (cube / marker).parent.mkdir(parents=True)
    (cube / marker).write_text("")
    elf = tmp_path / "tiny.o"
    src = tmp_path / "tiny.c"
    src.write_text("const char table[40] = {1};\nint counter[25];\nint f(void) { return counter[0] + table[1]; }\n")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-c", str(src), "-o", str(elf)],
                   check=True, timeout=60)
    fake_tools.make("make", script=f"ELF = {str(elf)!r}\n" + FAKE_MAKE)
    for tool in ("arm-none-eabi-objcopy", "STM32_SigningTool_CLI"):
        fake_tools.make(tool, script=FAKE_WRITES_OUTPUT)
    fake_tools.make("STM32_Programmer_CLI")
    (fake_tools.bin / "ExternalLoader").mkdir()
    (fake_tools.bin / "ExternalLoader" / "MX25UM51245G_STM32N6570-NUCLEO.stldr").write_text("")
    fsbl = tmp_path / "ai_fsbl.hex"
    fsbl.write_text(":00000001FF\n")
    env = {"STEDGEAI_CORE_DIR": str(sdk), "STM32CUBE_N6" if board == "stm32n6" else "STM32CUBE_H7": str(cube),
           "STM32_PRG_PATH": str(fake_tools.bin), "STM32N6_FSBL": str(fsbl)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _run_sequence(tmp_path, board_name: str, softmax_tflite: Path):
    from unpu.artifacts import QuantizedModel
    from unpu.cache import file_digest

    board = _board(board_name, tmp_path, f"cache.dir={tmp_path / 'cache'}")
    model = QuantizedModel("softmax10", softmax_tflite, file_digest(softmax_tflite), 0, "tflite graph")
    board.check_environment()
    board.preflight(model)
    work = tmp_path / "job"
    firmware = board.build(model, work)
    board.flash(firmware, work)
    return board, firmware, work


def test_n6_sequence_is_st_documented_flow(tmp_path, fake_tools, monkeypatch, softmax_tflite):
    """Commands as ST documents them:
    - generate: `stedgeai generate -m <model> --target stm32n6 --st-neural-art` (ST Edge AI Core docs,
      https://stedgeai-dc.st.com/assets/embedded-docs/stneuralart_getting_started.html);
    - weights to Intel-hex at their flash address with arm-none-eabi-objcopy, sign the application
      (`STM32_SigningTool_CLI -bin Project.bin -nk -t ssbl -hv 2.3 -o Project_sign.bin`), then
      `STM32_Programmer_CLI -c port=SWD mode=HOTPLUG -el <loader> -hardRst -w` the FSBL, the signed
      application at 0x70100000 and the weights (README of
      https://github.com/STMicroelectronics/STM32N6-GettingStarted-ReID, "Program the Firmware in the
      External Flash", and its Model/generate-n6-model_NUCLEO-N657X0-Q.sh)."""
    env = _fake_env(tmp_path, fake_tools, monkeypatch, "stm32n6", N6_REPORT_RELOCATED)
    board, firmware, work = _run_sequence(tmp_path, "stm32n6", softmax_tflite)
    loader = str(fake_tools.bin / "ExternalLoader" / "MX25UM51245G_STM32N6570-NUCLEO.stldr")
    fw = work / "firmware"
    calls = fake_tools.calls()
    generate = calls[1]
    assert calls[0] == ["stedgeai", "--version"]
    assert generate[:8] == ["stedgeai", "generate", "--model", str(softmax_tflite), "--target", "stm32n6",
                            "--name", "network"]
    assert generate[-2:] == ["--st-neural-art", "default"] and "st-ai" in generate
    assert calls[2][:3] == ["make", "-C", str(REPO / "firmware" / "ports" / "stm32n6")]
    assert {f"CUBE_DIR={env['STM32CUBE_N6']}", f"STEDGEAI_DIR={env['STEDGEAI_CORE_DIR']}",
            f"BUILD_DIR={fw / 'build'}", f"BUILD_H={fw / 'unpu_build.h'}"} <= set(calls[2])
    gen_dir = Path([c for c in calls[2] if c.startswith("GEN_DIR=")][0][8:])   # the cache entry generate filled
    assert (gen_dir / "network.c").is_file()
    assert calls[3:] == [
        ["STM32_SigningTool_CLI", "-bin", str(fw / "build" / "app.bin"), "-nk", "-t", "ssbl", "-hv", "2.3",
         "-o", str(fw / "app_sign.bin")],
        ["arm-none-eabi-objcopy", "-I", "binary", str(gen_dir / "network_atonbuf.xSPI2.raw"), "--change-addresses",
         "0x70380000", "-O", "ihex", str(fw / "network_data.hex")],
        ["STM32_Programmer_CLI", "-c", "port=SWD", "mode=HOTPLUG", "-el", loader, "-hardRst", "-w", env["STM32N6_FSBL"]],
        ["STM32_Programmer_CLI", "-c", "port=SWD", "mode=HOTPLUG", "-el", loader, "-hardRst", "-w",
         str(fw / "app_sign.bin"), "0x70100000"],
        ["STM32_Programmer_CLI", "-c", "port=SWD", "mode=HOTPLUG", "-el", loader, "-hardRst", "-w",
         str(fw / "network_data.hex")]]
    assert firmware.metrics["memory/npu_weights"] == 20625 and firmware.metrics["stedgeai/epochs_sw"] == 1
    assert firmware.metrics["memory/flash"] > 0 and firmware.tags["stedgeai.sw_epochs"] == "Softmax"
    assert "compiler/network_generate_report.txt" in firmware.artifacts
    header = (fw / "unpu_build.h").read_text()
    assert "#define UNPU_INPUT_BYTES 10" in header and "UNPU_OUTPUT_ZERO_POINT -128" in header


def test_h7a3_sequence_is_st_documented_flow(tmp_path, fake_tools, monkeypatch, softmax_tflite):
    """`stedgeai generate --target stm32h7` (ST's STM32 CLI article,
    https://stedgeai-dc.st.com/assets/embedded-docs/stm32_command_line_interface.html), make, then
    `STM32_Programmer_CLI -c port=SWD -w app.elf -v -rst` (STM32CubeProgrammer user manual UM2237,
    https://www.st.com/resource/en/user_manual/um2237-stm32cubeprogrammer-software-description-stmicroelectronics.pdf:
    connect over SWD, download with verify, reset)."""
    env = _fake_env(tmp_path, fake_tools, monkeypatch, "stm32h7a3", ST_SW_REPORT)
    board, firmware, work = _run_sequence(tmp_path, "stm32h7a3", softmax_tflite)
    calls = fake_tools.calls()
    assert [c[:2] for c in calls] == [["stedgeai", "--version"], ["stedgeai", "generate"], ["make", "-C"],
                                      ["STM32_Programmer_CLI", "-c"]]
    assert calls[1][4:6] == ["--target", "stm32h7"] and "--st-neural-art" not in calls[1]
    assert f"CUBE_DIR={env['STM32CUBE_H7']}" in calls[2]
    assert calls[3] == ["STM32_Programmer_CLI", "-c", "port=SWD", "-w", str(work / "firmware" / "build" / "app.elf"),
                        "-v", "-rst"]
    assert firmware.metrics["stedgeai/weights_bytes"] == 12256 and firmware.metrics["stedgeai/macc"] == 14404
    assert (work / "flash.log").exists()


def test_generate_is_cached(tmp_path, fake_tools, monkeypatch, softmax_tflite):
    _fake_env(tmp_path, fake_tools, monkeypatch, "stm32h7a3", ST_SW_REPORT)
    from unpu.artifacts import QuantizedModel
    from unpu.cache import file_digest

    model = QuantizedModel("softmax10", softmax_tflite, file_digest(softmax_tflite), 0, "tflite graph")
    for _ in range(2):
        _board("stm32h7a3", tmp_path, f"cache.dir={tmp_path / 'cache'}").preflight(model)
    assert [c[1] for c in fake_tools.calls()].count("generate") == 1


# ---- pre-flight ----------------------------------------------------------------------------------

def test_n6_default_mpool_weights_collide_with_the_boot_loader(tmp_path, fake_tools, monkeypatch, softmax_tflite):
    """ST's sample puts the weights at 0x70000000, where the FSBL must be: refused before any build."""
    _fake_env(tmp_path, fake_tools, monkeypatch, "stm32n6", ST_N6_REPORT)
    from unpu.artifacts import QuantizedModel

    model = QuantizedModel("softmax10", softmax_tflite, "d" * 64, 0, "tflite graph")
    with pytest.raises(BoardError, match=r"weights at 0x70000000-0x700050A0 in octoFlash; on stm32n6 they must "
                                         r"lie in 0x70380000-0x74000000") as exc:
        _board("stm32n6", tmp_path, f"cache.dir={tmp_path / 'cache'}").preflight(model)
    assert "\n" not in str(exc.value)
    assert not any(c[0] == "make" for c in fake_tools.calls())


def test_memory_limits_name_the_number(tmp_path):
    n6 = parse_report(N6_REPORT_RELOCATED)
    board = _board("stm32n6", tmp_path, "board.memory.npu_data_bytes=4000")
    with pytest.raises(BoardError, match=r"needs 4,060 B of activations, the largest region it can use has 4,000 B"):
        board.check_memory("m", n6)
    with pytest.raises(BoardError, match="needs 12,256 B of weights, the flash left for them has 10,000 B"):
        _board("stm32h7a3", tmp_path, "board.memory.weight_region_bytes=10000").check_memory("m", parse_report(ST_SW_REPORT))
    spilled = N6_REPORT_RELOCATED.replace("hyperRAM   [0x90000000 - 0x92000000]:          0  B",
                                          "hyperRAM   [0x90000000 - 0x92000000]:      1.000 MB")
    with pytest.raises(BoardError, match="in memory pool hyperRAM, which this board does not have"):
        _board("stm32n6", tmp_path).check_memory("m", parse_report(spilled))
    _board("stm32n6", tmp_path).check_memory("m", n6)   # fits


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet", "dscnn"])
def test_zoo_models_pass_the_operator_check(tmp_path, shared_cache, name):
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose([f"model={name}", f"cache.dir={shared_cache}", "board=stm32n6"], tmp_path)
    model = steps.quantized_model(cfg, Cache(shared_cache))
    board_of(cfg).check_operators(model)
    narrowed = compose([f"model={name}", f"cache.dir={shared_cache}", "board=stm32h7a3",
                        "board.stedgeai.supported_ops=[CONV_2D,RESHAPE,SOFTMAX,FULLY_CONNECTED,QUANTIZE]"], tmp_path)
    with pytest.raises(BoardError, match=r"operator #\d+ (DEPTHWISE_CONV_2D|AVERAGE_POOL_2D|MEAN|ADD) is not supported "
                                         r"by stedgeai for stm32h7a3"):
        board_of(narrowed).check_operators(model)


@pytest.mark.slow
def test_real_model_too_big_for_flash_is_refused_before_stedgeai(tmp_path, shared_cache):
    from unpu import steps
    from unpu.cache import Cache

    cfg = compose(["model=resnet8", f"cache.dir={shared_cache}", "board=stm32h7a3", "board.memory.flash_bytes=20000"],
                  tmp_path)
    model = steps.quantized_model(cfg, Cache(shared_cache))
    with pytest.raises(BoardError, match=r"needs [\d,]+ B of flash for its weights; stm32h7a3 has 20,000 B"):
        board_of(cfg).preflight(model)


# ---- the SDK-free half of the ports, through the real cross compiler ----------------------------

@pytest.mark.parametrize("port, cpu", [("stm32h7a3", ["-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"]),
                                       ("stm32n6", ["-mcpu=cortex-m55", "-mfloat-abi=hard"])])
def test_harness_and_port_compile_without_the_sdk(tmp_path, port, cpu):
    from elftools.elf.elffile import ELFFile

    fw = REPO / "firmware"
    for src in (fw / "harness" / "unpu_harness.c", fw / "ports" / "family" / "stm32" / "port.c"):
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run(["arm-none-eabi-gcc", *cpu, "-mthumb", "-O2", "-std=gnu11", "-Wall", "-Wextra",
                        "-Wno-unused-parameter", "-Werror", "-c", f"-I{fw / 'harness'}", f"-I{fw / 'ports' / port}",
                        f"-I{fw / 'ports' / 'common'}",
                        str(src), "-o", str(obj)], check=True, timeout=120, capture_output=True)
        with open(obj, "rb") as f:
            names = {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
        if src.name == "port.c":
            assert {"port_init", "port_uart_getc", "port_timer_ticks", "port_pin_timestamp", "port_idle_us",
                    "port_exit"} <= names
