"""Kernel variants against the reference kernels, on every emulated board (issue 14's table).

    .venv/bin/python bench/kernels.py [--boards qemu_m55,qemu_m4] [--models resnet8,dscnn]
                                      [--workdir DIR] [--cache DIR] [--write-docs]

For each emulated board (a conf/board YAML whose adapter is QemuBoard) and each model, `python -m
unpu` runs twice into a private MLflow store (sqlite in --workdir, a temporary directory by default):
with the board's default kernel variant (`board.cpu.kernels` unset: the folder named by cpu.simd if
firmware/kernels/ has it, else ref) and with `board.cpu.kernels=ref`. The host board runs each model
once more for TFLite Micro's arena. Printed: a markdown table of instructions per inference,
instructions per MAC, arena, flash, the largest difference from LiteRT's reference kernels and the
ref/default instruction ratio. When a board's default is ref (no variant folder yet) its row says so,
and the ratio is 1 by construction. --write-docs puts the table, dated, into docs/emulated.md between
its `bench/kernels.py` markers. Exit 1 if any run failed or was not bit-exact.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from unpu.boards.catalog import board_config, board_names  # noqa: E402
from unpu.boards.firmware import kernel_variant  # noqa: E402
from unpu.boards.qemu import QemuSpec  # noqa: E402
from unpu.boards.spec import load_spec  # noqa: E402

MODELS = "mobilenet,resnet8,dscnn,simplenet,autoencoder"
DOCS = REPO / "docs" / "emulated.md"
BEGIN, END = "<!-- bench/kernels.py begin -->", "<!-- bench/kernels.py end -->"
# instruction counts are deterministic under -icount shift=0: two short windows are enough
SMALL = ["bench.windows=2", "bench.iterations=2"]
JOB_TIMEOUT_S = 900


@dataclass
class Row:
    board: str
    model: str
    override: str | None          # board.cpu.kernels as given on the command line (None: the default)
    status: str
    kernels: str = "?"
    metrics: dict | None = None
    error: str = ""


def emulated_boards() -> list[str]:
    return [name for name in board_names()
            if str((board_config(name).get("adapter") or {}).get("_target_", "")).endswith(".QemuBoard")]


def default_variant(board: str) -> str:
    return kernel_variant(load_spec(board_config(board), QemuSpec).cpu)


def sweep(workdir: Path, cache: Path, overrides: list[str], jobs: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "UNPU_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "unpu", "-m", *overrides, *SMALL]
    print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S * jobs)
    (workdir / "sweeps.log").open("a").write(f"$ {' '.join(cmd)}\n{out.stdout}\n{out.stderr}\n")
    if out.returncode == 2:   # a usage error: nothing ran
        raise SystemExit(f"unpu refused the sweep: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    if out.returncode != 0:   # failed children are read from MLflow below and shown in the table
        print(f"  exit {out.returncode} (see {workdir / 'sweeps.log'})", file=sys.stderr)


def job_runs(workdir: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("unpu")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    return [r for r in runs if r.data.tags.get("unpu.kind") == "job"]


def as_row(run) -> Row:
    tags, params = run.data.tags, run.data.params
    override = params.get("board.cpu.kernels")
    return Row(board=tags.get("board", "?"), model=tags.get("model", "?"),
               override=None if override in (None, "null", "None") else override, status=run.info.status,
               kernels=tags.get("kernels", "?"), metrics=dict(run.data.metrics), error=tags.get("unpu.error", ""))


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def table(rows: list[Row], tflm_arena: dict[str, float], boards: list[str], models: list[str]) -> tuple[str, bool]:
    """The markdown table, and whether every run finished bit-exact."""
    by_key = {(r.board, r.model, r.override): r for r in rows}
    lines = ["| board | model | kernels | instructions/inference | instr/MAC | arena B | RAM B | flash B "
             "| TFLM arena B (host) | max diff LSB | ref / default |", "|" + "---|" * 11]
    ok = True
    for board in boards:
        default = default_variant(board)
        for model in models:
            base = by_key.get((board, model, "ref"))
            for override in (None, "ref"):
                row = by_key.get((board, model, override))
                label = "ref (forced)" if override else (f"{default} (default)" if default != "ref" else
                                                         "ref (default: no variant folder for this board yet)")
                if row is None or row.status != "FINISHED":
                    ok = False
                    why = "no run" if row is None else f"{row.status}: {row.error[:120]}"
                    lines.append(f"| {board} | {model} | {label} | {why} |" + " |" * 7)
                    continue
                m = row.metrics
                diff = m.get("validation/max_abs_diff_lsb")
                ok = ok and diff == 0 and row.kernels == (override or default)
                instr = m.get("instructions/inference")
                per_mac = instr / m["model/macs"] if instr and m.get("model/macs") else None
                ratio = "—"
                if override is None and base and base.status == "FINISHED" and instr:
                    ratio = f"{base.metrics['instructions/inference'] / instr:.2f}"
                    ratio += " (same kernels)" if row.kernels == "ref" else ""
                lines.append(f"| {board} | {model} | {label} | {_num(instr)} | {_num(per_mac, 2)} "
                             f"| {_num(m.get('memory/arena'))} | {_num(m.get('memory/ram'))} | {_num(m.get('memory/flash'))} "
                             f"| {_num(tflm_arena.get(model))} | {_num(diff)} | {ratio} |")
    return "\n".join(lines), ok


def write_docs(text: str) -> None:
    doc = DOCS.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOCS.relative_to(REPO)} has no {BEGIN} ... {END} markers")
    head, rest = doc.split(BEGIN, 1)
    DOCS.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", default=",".join(emulated_boards()), help="emulated boards (default: all)")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--workdir", type=Path, help="keep the MLflow store and logs here (default: a temp dir)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("UNPU_CACHE_DIR") or REPO / ".unpu_cache"),
                        help="unpu's cache (default: $UNPU_CACHE_DIR, else .unpu_cache of the repository)")
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS.relative_to(REPO)}")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: the table from the runs already in --workdir's store")
    args = parser.parse_args()
    boards, models = args.boards.split(","), args.models.split(",")
    unknown = sorted(set(boards) - set(emulated_boards()))
    if unknown:
        parser.error(f"not emulated boards: {', '.join(unknown)} (there are: {', '.join(emulated_boards())})")
    with tempfile.TemporaryDirectory(prefix="unpu-bench-kernels-") as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        jobs = len(boards) * len(models)
        if args.table_only and not args.workdir:
            parser.error("--table-only needs the --workdir of an earlier run")
        if not args.table_only:
            sweep(workdir, args.cache.resolve(), [f"board={','.join(boards)}", f"model={','.join(models)}",
                                                  "board.cpu.kernels=null,ref"], 2 * jobs)
            sweep(workdir, args.cache.resolve(), ["board=host", f"model={','.join(models)}"], len(models))
        runs = [as_row(r) for r in job_runs(workdir)]
    tflm = {r.model: r.metrics.get("memory/arena") for r in runs if r.board == "host" and r.status == "FINISHED"}
    body, ok = table([r for r in runs if r.board != "host"], tflm, boards, models)
    today = datetime.date.today().isoformat()
    text = (f"### Kernel variants ({today}, `bench/kernels.py --boards {','.join(boards)} --models {','.join(models)}`)\n\n"
            f"{body}")
    print(text)
    if args.write_docs:
        write_docs(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
