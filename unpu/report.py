"""`python -m unpu.report` / `unpu report`: figures and a Markdown summary of a sweep's runs.

Selects the child runs of a sweep's parent run (default: the newest sweep of experiment `unpu` in
`sqlite:///<cwd>/mlflow.db`) or the runs an MLflow filter string matches, writes PNG figures
(matplotlib, Agg) and `summary.md` into the out folder, and logs them under `report/` of the parent
run. Every number keeps its origin: the `source.latency` / `source.energy` tags are a column of each
table, and in the figures anything not measured is hatched (bars) or drawn with its own marker.
MLflow and matplotlib are imported only when the report runs.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from rich.console import Console

from unpu.boards.spec import peak_ops
from unpu.meters.plot import COLORS

STAGES = ("init", "input", "inference", "output", "post")
PER_INFERENCE = ("input", "inference", "output", "post")
SOURCES = ("measured", "emulated", "estimated", "simulated")
HATCH = {"measured": "", "emulated": "//", "estimated": "xx", "simulated": "..", "none": ""}
MARKER = {"measured": "o", "emulated": "^", "estimated": "X", "simulated": "s"}
SOURCE_MEANING = {
    "measured": "timed on the device (the host board: on this machine's CPU)",
    "emulated": "instruction counts of an emulator at the board's nominal clock",
    "estimated": "the compiler's estimate (Vela); nothing ran",
    "simulated": "synthesized from the board's power model (illustrative where the board YAML says so)",
}
FIGURES = {"latency": "latency_stages.png", "energy": "energy_per_inference.png", "macs": "latency_vs_macs.png"}
REPORT_ARTIFACT_DIR = "report"


class ReportError(Exception):
    """Nothing to report on (no experiment, no sweep, no runs); one line for the user (exit 2)."""


@dataclass
class RunRow:
    """One job run, flattened to what the report reads."""

    run_id: str
    board: str
    model: str
    quant: str
    status: str
    start_time: int
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    peak_gops: float | None = None
    label: str = ""

    @property
    def source_latency(self) -> str:
        return self.tags.get("source.latency", "none")

    @property
    def source_energy(self) -> str:
        return self.tags.get("source.energy", "none")

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED"

    @property
    def has_energy(self) -> bool:
        return any(f"energy/{s}_uj" in self.metrics for s in STAGES)

    def stage_us(self) -> dict[str, float]:
        return {s: self.metrics[f"latency/{s}_us"] for s in STAGES if f"latency/{s}_us" in self.metrics}

    def stage_uj(self, net: bool = False) -> dict[str, float]:
        suffix = "_net_uj" if net else "_uj"
        return {s: self.metrics[f"energy/{s}{suffix}"] for s in STAGES if f"energy/{s}{suffix}" in self.metrics}


@dataclass
class Selection:
    """The runs a report covers and the sweep parent it belongs to (None for a filter)."""

    rows: list[RunRow]
    parent: Any | None = None
    how: str = ""

    @property
    def finished(self) -> list[RunRow]:
        return [r for r in self.rows if r.finished]

    @property
    def failed(self) -> list[RunRow]:
        return [r for r in self.rows if not r.finished]


# -- selecting runs -----------------------------------------------------------------------------------

def default_tracking_uri() -> str:
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def search_all(client, experiment_ids: list[str], filter_string: str = "", order_by: list[str] | None = None) -> list:
    """Every run matching the filter, page by page."""
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, order_by=order_by,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_parent(client, experiment_id: str, run_id: str | None = None):
    """The given run, or the newest sweep parent run of the experiment."""
    if run_id:
        from mlflow.exceptions import MlflowException

        try:
            return client.get_run(run_id)
        except MlflowException as exc:
            raise ReportError(f"no run {run_id!r}: {' '.join(str(exc).split())[:200]}") from None
    runs = client.search_runs([experiment_id], "tags.`unpu.kind` = 'sweep'", max_results=1,
                              order_by=["attributes.start_time DESC"])
    if not runs:
        raise ReportError("no sweep parent run in this experiment: run a sweep (python -m unpu -m ...) "
                          "or select runs with --filter")
    return runs[0]


def select_runs(client, experiment: str, parent: str | None = None, filter_string: str | None = None) -> Selection:
    """The job runs of a sweep (its parent's children) or of a filter, sorted and labelled."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ReportError(f"no MLflow experiment {experiment!r} at {client.tracking_uri}")
    if filter_string:
        runs = [r for r in search_all(client, [exp.experiment_id], filter_string)
                if r.data.tags.get("unpu.kind") != "sweep"]
        parent_run, how = None, f"filter: {filter_string}"
    else:
        parent_run = find_parent(client, exp.experiment_id, parent)
        pid = parent_run.info.run_id
        runs = search_all(client, [exp.experiment_id], f"tags.mlflow.parentRunId = '{pid}'")
        how = f"children of sweep parent run {pid}"
    if not runs:
        raise ReportError(f"no runs selected ({how})")
    rows = [row_from_run(r) for r in runs]
    return Selection(order_rows(rows), parent_run, how)


def row_from_run(run) -> RunRow:
    tags = dict(run.data.tags)
    metrics = dict(run.data.metrics)
    peak = metrics.get("perf/peak_gops")
    return RunRow(run.info.run_id, tags.get("board", "?"), tags.get("model", "?"), tags.get("quant", "?"),
                  run.info.status, run.info.start_time or 0, metrics, tags, peak)


def order_rows(rows: list[RunRow]) -> list[RunRow]:
    """Boards in the order the sweep ran them, models by MACs within a board; labels unique per board."""
    first_seen: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: r.start_time):
        first_seen.setdefault(row.board, len(first_seen))
    rows = sorted(rows, key=lambda r: (first_seen[r.board], r.metrics.get("model/macs", math.inf), r.model,
                                       r.quant, r.start_time))
    several_quants = len({r.quant for r in rows}) > 1
    for row in rows:
        row.label = f"{row.model} {row.quant}" if several_quants else row.model
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.board, row.label)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            row.label += f" #{seen[key]}"
    return rows


def peak_from_config(config: dict) -> float | None:
    """The board's peak GOP/s from a run's resolved config, by the rule the pipeline uses (plain
    mappings: an older run's config need not satisfy today's board contract)."""
    board = config.get("board")
    if board is None:
        return None
    peak, _ = peak_ops(board.get("npu"), board.get("cpu"))
    return peak / 1e9 if peak else None


def fill_peaks(client, rows: Iterable[RunRow], workdir: Path) -> None:
    """Runs without a `perf/peak_gops` metric: read the peak from their `config/config.yaml` artifact
    (once per board)."""
    by_board: dict[str, float | None] = {}
    for row in rows:
        if row.peak_gops is not None or not row.finished:
            continue
        if row.board not in by_board:
            try:
                local = client.download_artifacts(row.run_id, "config/config.yaml", str(workdir))
                by_board[row.board] = peak_from_config(yaml.safe_load(Path(local).read_text()))
            except Exception:  # no config artifact (an old run): no peak line rather than no report
                by_board[row.board] = None
        row.peak_gops = by_board[row.board]


# -- tables -------------------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:,.{max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))}f}" if value else "0"


def fmt_int(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def latency_table(rows: list[RunRow]) -> tuple[list[str], list[list[str]]]:
    head = ["board", "model", "quant", *[f"{s} µs" for s in STAGES], "total µs", "latency source"]
    body = [[r.board, r.model, r.quant, *[fmt(r.metrics.get(f"latency/{s}_us")) for s in STAGES],
             fmt(r.metrics.get("latency/total_us")), r.source_latency] for r in rows]
    return head, body


def energy_per_inference(row: RunRow, net: bool = False) -> float | None:
    """Energy of one inference: the per-inference stages (init, once per window, is not one of them)."""
    values = [v for s, v in row.stage_uj(net).items() if s in PER_INFERENCE]
    return _sum(values)


def energy_table(rows: list[RunRow]) -> tuple[list[str], list[list[str]]]:
    head = ["board", "model", "quant", "init µJ", "init net µJ", "per inference µJ", "per inference net µJ",
            "MLPerf window µJ", "energy source", "latency source"]
    body = [[r.board, r.model, r.quant, fmt(r.metrics.get("energy/init_uj")), fmt(r.metrics.get("energy/init_net_uj")),
             fmt(energy_per_inference(r)), fmt(energy_per_inference(r, net=True)),
             fmt(r.metrics.get("energy/window_uj")), r.source_energy, r.source_latency]
            for r in rows if r.has_energy]
    return head, body


MEMORY_KEYS = ("memory/flash", "memory/ram", "memory/arena", "memory/npu_weights", "memory/model")


def memory_table(rows: list[RunRow]) -> tuple[list[str], list[list[str]]]:
    head = ["board", "model", "quant", *[k.split("/")[1] + " B" for k in MEMORY_KEYS], "memory source", "method"]
    body = [[r.board, r.model, r.quant, *[fmt_int(r.metrics.get(k)) for k in MEMORY_KEYS], memory_source(r),
             r.tags.get("memory.method") or r.tags.get("arena.method") or "—"] for r in rows]
    return head, body


def memory_source(row: RunRow) -> str:
    """Estimate boards' memory is the compiler's plan; otherwise it was found on the device or in the ELF."""
    return "estimated" if row.tags.get("unpu.measured") == "false" else "measured"


def spec_table(rows: list[RunRow]) -> tuple[list[str], list[list[str]]]:
    head = ["board", "model", "quant", "MACs", "inference µs", "latency source", "GOP/s", "peak GOP/s",
            "of peak", "compiler estimate µs", "inference ÷ estimate"]
    body = []
    for r in rows:
        m = r.metrics
        fraction = m.get("perf/peak_fraction")
        body.append([r.board, r.model, r.quant, fmt_int(m.get("model/macs")), fmt(m.get("latency/inference_us")),
                     r.source_latency, fmt(m.get("perf/gops")), fmt(r.peak_gops),
                     "—" if fraction is None else f"{fraction:.2%}", fmt(m.get("estimate/latency_us")),
                     fmt(m.get("estimate/ratio"), 3)])
    return head, body


def failed_table(rows: list[RunRow]) -> tuple[list[str], list[list[str]]]:
    head = ["board", "model", "quant", "status", "run", "error"]
    body = [[r.board, r.model, r.quant, r.status, r.run_id,
             " ".join(r.tags.get("unpu.error", "").split())[:300] or "—"] for r in rows]
    return head, body


def markdown_table(head: list[str], body: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---" if i < 3 or not _numeric_column(body, i) else "---:" for i in range(len(head))]
    return "\n".join([line(head), "|" + "|".join(align) + "|", *map(line, body)])


def _numeric_column(body: list[list[str]], index: int) -> bool:
    return all(row[index] == "—" or row[index][:1].isdigit() for row in body)


def _sum(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) if values else None


# -- the Markdown summary -----------------------------------------------------------------------------

def summary_markdown(selection: Selection, figures: dict[str, Path], uri: str, experiment: str) -> str:
    done = selection.finished
    parts = [f"# unpu report: {len(selection.rows)} runs", "", _header(selection, uri, experiment), "",
             "Every number carries its source: `measured` " + SOURCE_MEANING["measured"] + "; `emulated` "
             + SOURCE_MEANING["emulated"] + "; `estimated` " + SOURCE_MEANING["estimated"] + "; `simulated` "
             + SOURCE_MEANING["simulated"] + ". In the figures, bars of anything not measured are hatched "
             "and points have their own marker.", ""]
    for key, title in (("latency", "Latency by stage"), ("energy", "Energy per stage, gross and net of idle"),
                       ("macs", "Latency vs MACs")):
        if key in figures:
            parts += [f"![{title}]({figures[key].name})", ""]
    sections = [("Latency (median over windows)", latency_table(done), ""),
                ("Energy", energy_table(done),
                 "`per inference` = input + inference + output + post of one inference; init is once per window. "
                 "`net` subtracts idle power × duration. `MLPerf window` = ∫P over the timed window ÷ N."),
                ("Memory", memory_table(done), ""),
                ("Spec vs reality", spec_table(done),
                 "GOP/s = 2·MACs ÷ inference time; peak from the board YAML (`perf/peak_gops`). "
                 "`inference ÷ estimate` exists only when a run has both a measured/emulated/simulated latency and a "
                 "compiler estimate; an `estimated` run's inference time *is* the estimate."),
                ("Failed runs", failed_table(selection.failed), "")]
    for title, (head, body), note in sections:
        if body:
            parts += [f"## {title}", "", markdown_table(head, body), ""] + ([note, ""] if note else [])
    return "\n".join(parts)


def _header(selection: Selection, uri: str, experiment: str) -> str:
    lines = [f"- tracking: `{uri}`, experiment `{experiment}`", f"- selection: {selection.how}",
             f"- runs: {len(selection.finished)} finished, {len(selection.failed)} failed"]
    parent = selection.parent
    if parent is not None:
        tags = parent.data.tags
        lines.append(f"- sweep: `{parent.info.run_name}` ({parent.info.status}), overrides "
                     f"`{tags.get('sweep.overrides', '')}`, git `{tags.get('git_commit', '?')}`")
    sources = sorted({r.source_latency for r in selection.finished})
    energy = sorted({r.source_energy for r in selection.finished if r.has_energy})
    lines.append(f"- latency sources: {', '.join(sources) or '—'}; energy sources: {', '.join(energy) or '—'}")
    return "\n".join(lines)


# -- figures ------------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _by_board(rows: list[RunRow]) -> dict[str, list[RunRow]]:
    groups: dict[str, list[RunRow]] = {}
    for row in rows:
        groups.setdefault(row.board, []).append(row)
    return groups


def _panels(plt, count: int, bars: int):
    """One panel per board, at most four in a row, wide enough for the bars."""
    ncols = min(4, count)
    nrows = math.ceil(count / ncols)
    width = max(7.0, min(22.0, 2.2 + 0.75 * bars / nrows + 1.2 * ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 3.9 * nrows + 1.3), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _legend_handles(stages: Iterable[str], sources: Iterable[str], extra: list | None = None) -> list:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=COLORS[s], edgecolor="0.3", label=s) for s in stages]
    handles += [Patch(facecolor="white", edgecolor="0.3", hatch=HATCH[s] * 2, label=f"{s} (hatched)" if HATCH[s]
                      else s) for s in sources]
    return handles + (extra or [])


def _scale(ax, totals: list[float]) -> None:
    """Log when one panel spans more than 30x (small models vanish on a linear axis)."""
    positive = [t for t in totals if t > 0]
    if positive and max(positive) / min(positive) > 30:
        ax.set_yscale("log")


def _stacked_bar(ax, x: float, values: dict[str, float], width: float, hatch: str, alpha: float = 1.0) -> float:
    bottom = 0.0
    for stage in STAGES:
        if stage in values:
            ax.bar(x, values[stage], width, bottom=bottom, color=COLORS[stage], alpha=alpha, hatch=hatch,
                   edgecolor="0.25", linewidth=0.4)
            bottom += values[stage]
    return bottom


def _finish(fig, handles: list, title: str, path: Path) -> Path:
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    ncol = len(handles) if len(handles) <= 8 else math.ceil(len(handles) / 2)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07 if len(handles) <= 8 else 0.11, 1, 0.95))
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _xticks(ax, rows: list[RunRow]) -> None:
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.label for r in rows], rotation=30 if len(rows) > 3 else 0, ha="right" if len(rows) > 3
                       else "center", fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)


def plot_latency_stages(rows: list[RunRow], path: Path) -> Path | None:
    """Per board, one bar per model: the five stage latencies stacked (the seed's breakdown)."""
    rows = [r for r in rows if r.stage_us()]
    if not rows:
        return None
    plt = _pyplot()
    groups = _by_board(rows)
    fig, axes = _panels(plt, len(groups), len(rows))
    for ax, (board, group) in zip(axes, groups.items()):
        totals = [_stacked_bar(ax, i, r.stage_us(), 0.65, HATCH.get(r.source_latency, "")) for i, r in enumerate(group)]
        _scale(ax, totals)
        for i, total in enumerate(totals):
            ax.annotate(_short_us(total), (i, total), xytext=(0, 2), textcoords="offset points", ha="center",
                        fontsize=7)
        ax.margins(y=0.12)
        _xticks(ax, group)
        ax.set_title(f"{board} · latency {'/'.join(sorted({r.source_latency for r in group}))}", fontsize=9,
                     loc="left")
        ax.set_ylabel("latency per stage (µs)", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    stages = [s for s in STAGES if any(s in r.stage_us() for r in rows)]
    sources = sorted({r.source_latency for r in rows}, key=_source_order)
    return _finish(fig, _legend_handles(stages, sources),
                   "Latency by stage (median over windows; init once per window, the others per inference)", path)


def plot_energy(rows: list[RunRow], path: Path) -> Path | None:
    """Per board and model: gross (solid) and net-of-idle (faded) energy per stage, stacked; ◆ the
    MLPerf window energy per inference."""
    rows = [r for r in rows if r.has_energy]
    if not rows:
        return None
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    groups = _by_board(rows)
    fig, axes = _panels(plt, len(groups), 2 * len(rows))
    for ax, (board, group) in zip(axes, groups.items()):
        tops = []
        for i, r in enumerate(group):
            hatch = HATCH.get(r.source_energy, "")
            tops.append(_stacked_bar(ax, i - 0.2, r.stage_uj(), 0.38, hatch))
            _stacked_bar(ax, i + 0.2, r.stage_uj(net=True), 0.38, hatch, alpha=0.45)
            if "energy/window_uj" in r.metrics:
                ax.plot(i - 0.2, r.metrics["energy/window_uj"], "D", color="black", markersize=4)
        _scale(ax, tops)
        ax.margins(y=0.1)
        _xticks(ax, group)
        ax.set_title(f"{board} · energy {'/'.join(sorted({r.source_energy for r in group}))}, latency "
                     f"{'/'.join(sorted({r.source_latency for r in group}))}", fontsize=9, loc="left")
        ax.set_ylabel("energy per stage (µJ)", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    stages = [s for s in STAGES if any(s in r.stage_uj() for r in rows)]
    sources = sorted({r.source_energy for r in rows}, key=_source_order)
    extra = [Patch(facecolor="0.35", label="left: gross"),
             Patch(facecolor="0.35", alpha=0.45, label="right: net of idle"),
             Line2D([], [], marker="D", color="black", linestyle="", markersize=4, label="MLPerf window ÷ N")]
    return _finish(fig, _legend_handles(stages, sources, extra),
                   "Energy per stage (init once per window, the others per inference)", path)


def plot_latency_vs_macs(rows: list[RunRow], path: Path) -> Path | None:
    """Inference latency against MACs, log-log, per board, with the board's ideal line at its peak."""
    rows = [r for r in rows if r.metrics.get("model/macs") and r.metrics.get("latency/inference_us")]
    if not rows:
        return None
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8.5, 6))
    colors = plt.get_cmap("tab10")
    macs_all = [r.metrics["model/macs"] for r in rows]
    span = (min(macs_all) / 2, max(macs_all) * 2)
    handles = []
    for n, (board, group) in enumerate(_by_board(rows).items()):
        color = colors(n % 10)
        for r in group:
            x, y = r.metrics["model/macs"], r.metrics["latency/inference_us"]
            filled = r.source_latency == "measured"
            ax.plot(x, y, MARKER.get(r.source_latency, "o"), color=color, markersize=8,
                    markerfacecolor=color if filled else "white", markeredgewidth=1.5)
            ax.annotate(r.label, (x, y), xytext=(5, 3), textcoords="offset points", fontsize=7, color=color)
        handles.append(Line2D([], [], color=color, marker="o", linestyle="", label=board))
        peak = group[0].peak_gops
        if peak:
            ax.plot(span, [2 * m / (peak * 1e3) for m in span], "--", color=color, linewidth=1)
            handles.append(Line2D([], [], color=color, linestyle="--", label=f"{board} at peak {peak:g} GOP/s"))
    for source in sorted({r.source_latency for r in rows}, key=_source_order):
        handles.append(Line2D([], [], color="0.3", marker=MARKER.get(source, "o"), linestyle="",
                              markerfacecolor="0.3" if source == "measured" else "white", label=source))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*span)
    ax.set_xlabel("MACs per inference")
    ax.set_ylabel("inference latency (µs)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    ax.set_title("Inference latency vs MACs (dashed: linear in MACs at the board's peak)", fontsize=10, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _source_order(source: str) -> int:
    return SOURCES.index(source) if source in SOURCES else len(SOURCES)


def _short_us(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.3g} s"
    if value >= 1e3:
        return f"{value / 1e3:.3g} ms"
    return f"{value:.3g} µs"


# -- the report ---------------------------------------------------------------------------------------

def write_report(selection: Selection, out: Path, uri: str, experiment: str) -> list[Path]:
    """The figures and summary.md in `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    done = selection.finished
    figures = {}
    for key, plot in (("latency", plot_latency_stages), ("energy", plot_energy), ("macs", plot_latency_vs_macs)):
        path = plot(done, out / FIGURES[key])
        if path is not None:
            figures[key] = path
    summary = out / "summary.md"
    summary.write_text(summary_markdown(selection, figures, uri, experiment))
    return [*figures.values(), summary]


def default_out(selection: Selection) -> Path:
    if selection.parent is not None:
        return Path("reports") / selection.parent.info.run_id
    return Path("reports") / ("filter-" + hashlib.sha256(selection.how.encode()).hexdigest()[:8])


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m unpu.report",
        description="Figures and a Markdown summary of a sweep's runs, logged to the sweep's parent run under report/.")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite:///<cwd>/mlflow.db)")
    parser.add_argument("--experiment", default="unpu", help="MLflow experiment (default: unpu)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--parent", metavar="RUN_ID", help="a sweep's parent run (default: the newest sweep)")
    which.add_argument("--filter", metavar="FILTER", help="an MLflow filter string, e.g. \"tags.board = 'host'\" "
                       "(the report is not logged to any run)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: reports/<parent run id>)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = args.tracking_uri or default_tracking_uri()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        selection = select_runs(client, args.experiment, args.parent, args.filter)
    except ReportError as exc:
        print(f"unpu report: {exc}", file=sys.stderr)
        return 2
    out = args.out or default_out(selection)
    with tempfile.TemporaryDirectory() as tmp:
        fill_peaks(client, selection.rows, Path(tmp))
    files = write_report(selection, out, uri, args.experiment)
    if selection.parent is not None:
        for path in files:
            client.log_artifact(selection.parent.info.run_id, str(path), REPORT_ARTIFACT_DIR)
    _print_done(selection, files, out)
    return 0


def _print_done(selection: Selection, files: list[Path], out: Path) -> None:
    console = Console(file=sys.stdout, highlight=False)
    console.print(f"report: {len(selection.finished)} runs ({len(selection.failed)} failed) → "
                  f"{', '.join(p.name for p in files)} in {out}", soft_wrap=True)
    if selection.parent is not None:
        console.print(f"logged under {REPORT_ARTIFACT_DIR}/ of sweep parent run {selection.parent.info.run_id}",
                      soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
