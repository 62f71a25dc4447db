"""The board contract, over every conf/board/*.yaml: it composes, its adapter's Spec accepts it, the
adapter instantiates, its firmware port exists, every vendor tool it names says where to get it, and
a missing tool is one BoardError line. Then: a misspelt key and a missing port folder each fail in
one line, `python -m unpu boards` lists every board, and every board list in the docs is conf/'s."""

from __future__ import annotations

import json
import re

import pytest
from omegaconf import OmegaConf

from helpers import REPO, board_of, compose, extra_board, run_unpu
from unpu.boards.base import PORTS, Board, adapter_class
from unpu.boards.catalog import board_config, board_names, runnable_boards
from unpu.boards import firmware
from unpu.boards.firmware import kernel_variant
from unpu.boards.spec import CpuSpec, EmulatedCpuSpec, Support
from unpu.cli import boards_main
from unpu.errors import BoardError

BOARDS = board_names()
QEMU_BOARDS = [n for n in BOARDS if str((board_config(n).adapter or {}).get("_target_", "")).endswith(".QemuBoard")]


def test_every_yaml_in_conf_board_is_a_board():
    assert len(BOARDS) >= 16 and {"host", "native", "qemu_m55", "qemu_m4", "hxwe2"} <= set(BOARDS)


@pytest.fixture(params=BOARDS)
def board(request, tmp_path) -> Board:
    """The board's adapter as a run makes it (hardware mode for boards that have an estimate mode)."""
    config = board_config(request.param)
    overrides = ["board.attached=true"] if "attached" in config else []
    return board_of(compose([f"board={request.param}", *overrides], tmp_path))


def test_contract_composes_and_instantiates(board, tmp_path):
    spec = board.spec
    alone = board_config(spec.name)
    assert spec.name == alone.name     # the file name is the board's name
    # the catalog composes the board group alone: it must be the node a whole job composes
    job = compose([f"board={spec.name}"], tmp_path).board
    assert OmegaConf.to_container(alone, resolve=True) == OmegaConf.to_container(job, resolve=True)
    assert isinstance(spec, type(board).Spec) and spec.title and spec.runtime and spec.toolchain.compiler
    assert spec.support in (Support.ci, Support.estimate, Support.hardware)
    assert board.source_latency in ("measured", "emulated", "estimated", "simulated")
    assert spec.power.basis, "every board says where its power figures come from (or that there are none)"


def test_contract_firmware_port_exists(board):
    if board.spec.firmware_port is None:
        assert board.spec.name == "host"      # the only board with no C firmware: a Python device process
        return
    port = board.port_dir
    assert port.parent == PORTS and any(port.glob("Makefile")) or any(port.glob("*.mk")) or \
        (port / "CMakeLists.txt").is_file()


def test_contract_every_tool_says_where_to_get_it(board):
    for role, tool in board.spec.toolchain.tools.items():
        assert tool.what, (board.spec.name, role)
        assert re.search(r"https?://", tool.url), (board.spec.name, role, tool.url)
        assert tool.var is None or re.fullmatch(r"[A-Z][A-Z0-9_]*", tool.var), (board.spec.name, role)


def test_contract_emulated_clock_is_the_clock_of_the_board_it_stands_in_for(board):
    """An emulated core has no cycles: its latency clock is that of the real CPU it stands in for, and
    cpu.clock_basis names that board (board=<name>), whose YAML gives the very same clock."""
    if not isinstance(board.spec.cpu, EmulatedCpuSpec):
        return
    named = re.findall(r"board=(\w+)", board.spec.cpu.clock_basis)
    assert named, f"{board.spec.name}: cpu.clock_basis names no board=<name>: {board.spec.cpu.clock_basis!r}"
    for name in named:
        assert board_config(name).cpu.clock_hz == board.spec.cpu.clock_hz, (board.spec.name, name)


def test_contract_missing_tool_is_one_boarderror_line(board, tmp_path, monkeypatch):
    """With no vendor variable set and nothing on PATH, the board either needs nothing (host) or
    names the first missing piece in one line."""
    for tool in board.spec.toolchain.tools.values():
        if tool.var:
            monkeypatch.delenv(tool.var, raising=False)
    for var in ("TFLM_DIR", "TFLM_LIB", "ETHOSU_DRIVER_DIR", "IDF_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    try:
        board.check_environment()
    except BoardError as exc:
        text = str(exc)
        assert text and "\n" not in text
        assert re.search(r"not set|not found|no executable|not on PATH|install", text), text
    else:
        assert board.spec.name == "host", "only the host board needs no tool"


def test_support_levels_match_what_runs():
    for name in BOARDS:
        config = board_config(name)
        has_adapter = adapter_class(config) is not None
        assert has_adapter == (config.support != "planned"), name
    assert runnable_boards() == BOARDS


# ---- one line for a board YAML that breaks the contract -------------------------------------------

QEMU_LIKE = """
defaults:
  - family/qemu@_here_
  - _self_
name: {name}
title: "a test board"
cpu: {{core: cortex-m4f, {clock_key}: 25000000, {basis}fpu: true}}
toolchain: {{qemu_machine: mps2-an386}}
firmware_port: {port}
"""
BASIS = 'clock_basis: "a test clock", '


def test_misspelt_key_fails_in_one_line(tmp_path):
    text = QEMU_LIKE.format(name="typo", clock_key="clock_hzz", basis=BASIS, port="qemu_m4")
    out = run_unpu([*extra_board(tmp_path, "typo", text), "model=dscnn"], tmp_path, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines == ["unpu: board=typo: unknown key board.cpu.clock_hzz (not in the QemuSpec contract)"]
    assert not (tmp_path / "mlflow.db").exists()


def test_emulated_board_without_clock_basis_fails_in_one_line(tmp_path):
    text = QEMU_LIKE.format(name="nobasis", clock_key="clock_hz", basis="", port="qemu_m4")
    out = run_unpu([*extra_board(tmp_path, "nobasis", text), "model=dscnn"], tmp_path, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "unpu: board=nobasis: board.cpu.clock_basis is missing (the QemuSpec contract requires it)"]


def test_wrong_type_fails_in_one_line(tmp_path):
    out = run_unpu(["board=qemu_m4", "board.cpu.clock_hz=fast", "model=dscnn"], tmp_path, timeout=120)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("unpu: board=qemu_m4: board.cpu.clock_hz: Value 'fast'") and "Float" in line


def test_missing_port_folder_fails_in_one_line(tmp_path):
    text = QEMU_LIKE.format(name="noport", clock_key="clock_hz", basis=BASIS, port="qemu_m99")
    out = run_unpu([*extra_board(tmp_path, "noport", text), "model=dscnn"], tmp_path, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "unpu: board=noport: firmware port firmware/ports/qemu_m99 does not exist (board.firmware_port names a "
        "folder of firmware/ports/ with a Makefile, a CMakeLists.txt or a .mk file)"]


# ---- the board list, from conf/ ---------------------------------------------------------------------

@pytest.mark.slow   # over 5 s: the developers' fast tier stays under 3 minutes
def test_unpu_boards_lists_every_board(tmp_path, capsys):
    out = run_unpu(["boards", "--json"], tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["board"] for r in rows] == BOARDS
    by_name = {r["board"]: r for r in rows}
    assert by_name["hxwe2"]["npu"] == "ethos-u55-64" and by_name["hxwe2"]["peak_gops"] == pytest.approx(51.2)
    assert by_name["qemu_m55"]["support"] == "ci" and by_name["qemu_m55"]["clock_mhz"] == 400
    assert by_name["corstone300"]["peak_gops"] == pytest.approx(128.0)   # 2 x 128 MAC x 500 MHz
    assert all(r["power_basis"] for r in rows)
    assert boards_main([]) == 0       # the table, in-process (the subprocess above proved the entry point)
    shown = capsys.readouterr().out
    assert all(name in shown for name in BOARDS)


def _readme_board_rows() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Boards"):]
    section = section[:section.index("\n## ", 4)]
    return [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| `")]


def test_readme_board_table_covers_conf_board():
    """The README lists families by name pattern (`qemu_*`): every board of conf/ falls in exactly one
    row, and every row matches a board, so adding a board of a known family needs no README change."""
    patterns = [cell.replace("`", "").split(", ") for cell in _readme_board_rows()]
    assert patterns, "README has no board table"
    for name in BOARDS:
        rows = [i for i, row in enumerate(patterns) if any(re.fullmatch(p.replace("*", ".*"), name) for p in row)]
        assert len(rows) == 1, (name, rows)
    for row in patterns:
        for pattern in row:
            assert any(re.fullmatch(pattern.replace("*", ".*"), name) for name in BOARDS), pattern


def test_help_lists_every_board():
    out = run_unpu(["--help"], REPO)
    assert "board: " + ", ".join(BOARDS) in out.stdout


# ---- kernel variants (docs/codegen.md "Kernel variants") ---------------------------------------------

def _cpu(**keys) -> CpuSpec:
    return CpuSpec(core="cortex-m55", fpu=True, **keys)


@pytest.fixture
def kernels_tree(tmp_path, monkeypatch):
    """A kernels folder with ref/ and helium/ only, so the choice does not depend on which variants
    the repository has today."""
    for name in ("ref", "helium", "check"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(firmware, "KERNELS", tmp_path)
    return tmp_path


def test_kernel_variant_follows_simd_when_the_folder_exists(kernels_tree):
    assert kernel_variant(_cpu(simd="helium")) == "helium"
    assert kernel_variant(_cpu(simd="dsp")) == "ref"      # no dsp/ folder: the reference kernels
    assert kernel_variant(_cpu(simd=None)) == "ref"


def test_kernel_variant_explicit_override_wins(kernels_tree):
    assert kernel_variant(_cpu(simd="helium", kernels="ref")) == "ref"
    assert kernel_variant(_cpu(simd=None, kernels="helium")) == "helium"


@pytest.mark.parametrize("name", ["dsp", "../ref", "ref extra", "check"])
def test_kernel_variant_unknown_folder_is_one_line_naming_the_folders(kernels_tree, name):
    with pytest.raises(BoardError) as exc:
        kernel_variant(_cpu(simd="helium", kernels=name))
    text = str(exc.value)
    assert text == f"board.cpu.kernels={name!r}: no folder firmware/kernels/{name} (there are: helium, ref)"


def test_kernel_variant_of_the_repository_boards(tmp_path):
    """On the real tree, as a run composes it: every QEMU board links the folder named by its SIMD
    extension if unpu has it, else ref; `board.cpu.kernels=ref` on the command line selects ref."""
    for name in QEMU_BOARDS:
        spec = board_of(compose([f"board={name}"], tmp_path)).spec
        expected = spec.cpu.simd if (firmware.KERNELS / spec.cpu.simd).is_dir() else "ref"
        assert kernel_variant(spec.cpu) == expected, name
        forced = board_of(compose([f"board={name}", "board.cpu.kernels=ref"], tmp_path)).spec
        assert kernel_variant(forced.cpu) == "ref", name
