"""What a person sees: live progress while a sweep or a long run goes on, and the results at the end.

rich draws on a terminal; when stdout is not one (CI, a pipe, a file) nothing is drawn and the plain
log lines are all there is. The progress display is one rich `Progress` per process: the sweep's
job bar and the windows of the job under way share it, and log lines scroll above it.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

STAGE_ROWS = ("init", "input", "inference", "output", "post", "total")
PROGRESS_ENV = "UNPU_PROGRESS"  # "0": never draw progress (set for sweeps whose jobs run in other processes)
LONG_S = 1.0  # window progress appears once the windows have taken this long (or each window is this long)

_display: "_Display | None" = None


def _console():
    if _display is not None:
        return _display.progress.console
    return Console(file=sys.stdout, highlight=False)


def interactive() -> bool:
    """A person is watching stdout: a terminal (rich's test: FORCE_TERMINAL, TTY_COMPATIBLE...), not dumb."""
    if os.environ.get(PROGRESS_ENV) == "0":
        return False
    console = _console()
    return console.is_terminal and not console.is_dumb_terminal


class _Display:
    """rich Progress on the live terminal; stdout, and stderr when it is the same terminal, print above it."""

    def __init__(self, transient: bool) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(file=sys.stdout, highlight=False), transient=transient,
                                 redirect_stdout=True, redirect_stderr=sys.stderr.isatty())
        self._redirected: list[tuple[logging.StreamHandler, Any]] = []

    def start(self) -> None:
        global _display
        real = (sys.stdout, sys.stderr)
        self.progress.start()  # replaces sys.stdout (and sys.stderr) with rich's proxies
        _display = self
        self._redirect_log_handlers({id(real[0]): sys.stdout, id(real[1]): sys.stderr})
        atexit.register(self.stop)

    def stop(self) -> None:
        global _display
        if _display is not self:
            return
        _display = None
        self.progress.stop()
        for handler, stream in self._redirected:
            handler.setStream(stream)
        atexit.unregister(self.stop)

    def _redirect_log_handlers(self, proxies: dict[int, Any]) -> None:
        """Handlers made before the display (Hydra's console handler) hold the real stdout: while it
        is live they write through rich, so log lines scroll above the bars instead of tearing them."""
        loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                           if isinstance(lg, logging.Logger)]
        for logger in loggers:
            for handler in logger.handlers:
                if type(handler) is logging.StreamHandler and id(handler.stream) in proxies:
                    proxy = proxies[id(handler.stream)]
                    if proxy is not handler.stream:
                        self._redirected.append((handler, handler.setStream(proxy)))


class SweepProgress:
    """A sweep's bar: job i of N, with the board, model and quant of the job under way."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self._display: _Display | None = None
        self._task = None

    def start(self) -> None:
        if interactive() and _display is None:
            self._display = _Display(transient=False)
            self._display.start()
            self._task = self._display.progress.add_task("sweep", total=self.total)

    def job_started(self, index: int, label: str) -> None:
        logging.getLogger("unpu").info("job %s: %s", self._of(index), label)
        if self._display is not None:
            self._display.progress.update(self._task, description=f"job {self._of(index)} · {label}")

    def job_finished(self) -> None:
        if self._display is not None:
            self._display.progress.advance(self._task)

    def close(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def _of(self, index: int) -> str:
        return f"{index}/{self.total}" if self.total else str(index)


class WindowProgress:
    """The measurement windows of one job; hidden until the windows have run LONG_S (or are long)."""

    def __init__(self, progress, total: int, long: bool) -> None:
        self.progress, self.t0, self.visible = progress, time.monotonic(), long
        self.label = "sizing the window" if long else "windows"
        self.task = None if progress is None else progress.add_task(self.label, total=total, visible=long)

    def sizing_done(self, iterations: int) -> None:
        self.label = f"windows of {iterations} inferences"
        if self.task is not None:
            self.progress.update(self.task, description=self.label)

    def advance(self, note: str = "") -> None:
        if self.task is None:
            return
        self.visible = self.visible or time.monotonic() - self.t0 >= LONG_S
        self.progress.update(self.task, advance=1, visible=self.visible,
                             description=f"{self.label} · {note}" if note else self.label)


@contextmanager
def window_progress(total: int, long: bool) -> Iterator[WindowProgress]:
    """Progress of a job's windows: under the sweep's bar, on a display of its own for a single run
    on a terminal, or nothing at all when no one watches."""
    own = None
    if _display is None and interactive():
        own = _Display(transient=True)
        own.start()
    display = _display
    bar = WindowProgress(display.progress if display else None, total, long)
    try:
        yield bar
    finally:
        if bar.task is not None and own is None:
            display.progress.remove_task(bar.task)
        if own is not None:
            own.stop()


def ui_hint(uri: str) -> str:
    if uri.startswith("sqlite:"):
        return f"mlflow ui --backend-store-uri {uri}  (then open http://127.0.0.1:5000)"
    return f"open {uri} in a browser"


def run_summary(title: str, metrics: dict[str, float], tags: dict[str, Any], run_id: str, uri: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    table.add_column("median µs", justify="right")
    table.add_column("min µs", justify="right")
    table.add_column("max µs", justify="right")
    energy = any(k.startswith("energy/") for k in metrics)
    if energy:
        table.add_column(f"energy µJ ({tags.get('source.energy')})", justify="right")
        table.add_column("net of idle µJ", justify="right")
    for stage in STAGE_ROWS:
        key = f"latency/{stage}_us"
        if key in metrics:
            row = [_us(metrics.get(key + suffix)) for suffix in ("", "_min", "_max")]
            if energy:
                row += [_uj(metrics.get(f"energy/{stage}_uj")), _uj(metrics.get(f"energy/{stage}_net_uj"))]
            table.add_row(stage, *row)
    console = _console()
    console.print(table)
    if tags.get("source.latency") == "estimated":
        console.print(_estimate_banner(metrics, tags), soft_wrap=True)
    notes = [f"latency source: {tags.get('source.latency')}"]
    notes += [f"{label} {fmt(metrics[key])}" for key, (label, fmt) in NOTES.items() if key in metrics]
    console.print(" · ".join(notes), soft_wrap=True)
    console.print(f"MLflow run {run_id}  —  {ui_hint(uri)}", soft_wrap=True)


def _bytes(value: float) -> str:
    return f"{value:,.0f} B"


def _count(value: float) -> str:
    return f"{value:,.0f}"


# what the summary line says after the table, in people's units
NOTES = {
    "memory/arena": ("arena", _bytes), "memory/model": ("model file", _bytes), "memory/flash": ("flash", _bytes),
    "memory/ram": ("RAM", _bytes), "model/params": ("parameters", _count), "model/macs": ("MACs", _count),
    "perf/gops": ("achieved", lambda v: f"{v:,.3g} GOP/s"),
    "perf/peak_fraction": ("of peak", lambda v: f"{v:.1%}"),
    "estimate/latency_us": ("estimate", lambda v: f"{v:,.1f} µs"),
    "estimate/ratio": ("measured / estimate", lambda v: f"{v:.2f}×"),
    "energy/window_uj": ("energy per inference (MLPerf window)", lambda v: f"{v:,.3f} µJ"),
    "power/active_mw": ("active", lambda v: f"{v:,.2f} mW"), "power/idle_mw": ("idle", lambda v: f"{v:,.2f} mW"),
    "validation/max_abs_diff_lsb": ("max diff vs LiteRT", lambda v: f"{v:g} LSB"),
    "validation/top1_agree": ("top-1 agreement", lambda v: f"{v:.0%}"),
}


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _uj(value: float | None) -> str:
    return "—" if value is None else f"{value:,.3f}"


def _estimate_banner(metrics: dict[str, float], tags: dict[str, Any]) -> str:
    """Estimate mode says so in words: nothing ran, and what the estimate leaves out."""
    text = (f"ESTIMATE ONLY — nothing was measured: {tags.get('compiler')} estimates "
            f"{metrics.get('estimate/cycles', 0):,.0f} cycles on {tags.get('vela.accelerator', tags.get('npu'))} "
            f"at {metrics.get('estimate/clock_hz', 0) / 1e6:g} MHz")
    if "estimate/vela_default_latency_us" in metrics:
        text += (f" ({metrics['estimate/vela_default_latency_us']:,.1f} µs at Vela's default "
                 f"{metrics['estimate/vela_default_clock_hz'] / 1e6:g} MHz)")
    fallback = tags.get("vela.cpu_fallback")
    if fallback and fallback != "none":
        text += f"; CPU-fallback operators not included: {fallback}"
    return text + ". The seed measured HX-WE2 (Ethos-U55-64) inference 4.6–5.4× slower than Vela estimated."


def sweep_summary(parent_run_id: str, jobs: int, failed: int, uri: str) -> None:
    status = "all finished" if not failed else f"{failed} FAILED"
    _console().print(f"sweep: {jobs} jobs, {status}; MLflow parent run {parent_run_id}  —  {ui_hint(uri)}",
                     soft_wrap=True)
