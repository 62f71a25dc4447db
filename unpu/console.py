"""What a person sees at the end of a run or a sweep (rich when on a terminal, plain otherwise)."""

from __future__ import annotations

import sys
from typing import Any

STAGE_ROWS = ("init", "input", "inference", "output", "post", "total")


def _console():
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False)


def ui_hint(uri: str) -> str:
    if uri.startswith("sqlite:"):
        return f"mlflow ui --backend-store-uri {uri}  (then open http://127.0.0.1:5000)"
    return f"open {uri} in a browser"


def run_summary(title: str, metrics: dict[str, float], tags: dict[str, Any], run_id: str, uri: str) -> None:
    from rich.table import Table

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
    for key in ("memory/arena", "memory/model", "model/params", "model/macs", "perf/gops", "perf/peak_fraction",
                "estimate/latency_us", "estimate/ratio", "energy/window_uj", "power/active_mw", "power/idle_mw",
                "validation/max_abs_diff_lsb", "validation/top1_agree"):
        if key in metrics:
            notes.append(f"{key} = {metrics[key]:.4g}")
    console.print("  ".join(notes), soft_wrap=True)
    console.print(f"MLflow run {run_id}  —  {ui_hint(uri)}", soft_wrap=True)


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
