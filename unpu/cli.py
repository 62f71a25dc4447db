"""`python -m unpu boards`: every board of conf/board/ with its support level, NPU, peak, clock and
power basis, read from the YAMLs through the board contract (a rich table on a terminal, --json for
scripts, --power for the power models meter=simulated uses). It is the board list the README and
docs point to, so it is never out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from unpu.boards.catalog import specs
from unpu.boards.spec import BoardSpec
from unpu.errors import UnpuError

COLUMNS = ("board", "title", "support", "npu", "peak GOPS", "clock MHz", "power basis")
POWER_COLUMNS = ("board", "supply V", "idle mW", "init mW", "input mW", "inference mW", "output mW", "post mW", "basis")
STAGES = ("init", "input", "inference", "output", "post")


def board_row(spec: BoardSpec) -> dict[str, Any]:
    """One board as the table and --json show it."""
    peak, peak_basis = spec.peak_ops()
    return {"board": spec.name, "title": spec.title, "support": spec.support.value,
            "npu": spec.npu.name if spec.npu else None, "peak_gops": peak / 1e9 if peak else None,
            "peak_basis": peak_basis or None, "cpu": spec.cpu.core,
            "clock_mhz": spec.cpu.clock_hz / 1e6 if spec.cpu.clock_hz else None,
            "npu_clock_mhz": spec.npu.clock_hz / 1e6 if spec.npu and spec.npu.clock_hz else None,
            "runtime": spec.runtime, "compiler": spec.toolchain.compiler, "power_basis": spec.power.basis,
            "adapter": spec.adapter._target_ if spec.adapter else None, "firmware_port": spec.firmware_port}


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.6g}"


def table(rows: list[dict[str, Any]]) -> Table:
    out = Table(title="unpu boards (conf/board/)", title_justify="left")
    for column in COLUMNS:
        out.add_column(column, justify="right" if column in ("peak GOPS", "clock MHz") else "left",
                       overflow="fold", no_wrap=column == "board", ratio=3 if column in ("title", "power basis") else None)
    for row in rows:
        clock = _number(row["clock_mhz"]) + (f" (NPU {_number(row['npu_clock_mhz'])})" if row["npu_clock_mhz"] else "")
        out.add_row(row["board"], row["title"], row["support"], row["npu"] or "—", _number(row["peak_gops"]), clock,
                    row["power_basis"])
    return out


def power_table(found: dict[str, BoardSpec]) -> Table:
    """Each board's power model (mW per stage); — where no public figure exists (meter=simulated refuses those)."""
    out = Table(title="board power models (board.power; sources in each YAML)", title_justify="left")
    for column in POWER_COLUMNS:
        out.add_column(column, justify="left" if column in ("board", "basis") else "right", overflow="fold",
                       ratio=4 if column == "basis" else None)
    for spec in found.values():
        power = spec.power
        stages = [_number(getattr(power.active_mw, stage)) for stage in STAGES]
        out.add_row(spec.name, _number(power.supply_v), _number(power.idle_mw), *stages, power.basis)
    return out


def boards_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m unpu boards", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per board (the whole spec under 'spec')")
    parser.add_argument("--power", action="store_true", help="the power models (supply, idle and per-stage mW)")
    args = parser.parse_args(argv)
    try:
        found = specs()
    except UnpuError as exc:
        print(f"unpu: {exc}", file=sys.stderr)
        return 2
    rows = [board_row(spec) for spec in found.values()]
    if args.json:
        full = [{**row, "spec": asdict(spec)} for row, spec in zip(rows, found.values())]
        print(json.dumps(full, indent=2, default=str))
    else:
        # piped: wide enough that a script or a log keeps whole rows
        console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
        console.print(power_table(found) if args.power else table(rows))
    return 0
