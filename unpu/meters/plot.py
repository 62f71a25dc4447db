"""The power trace as a PNG: power over time with the idle window and each stage shaded and
labelled (like the seed paper's figures). Long traces are drawn as a min/max envelope."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLORS = {"idle": "#bbbbbb", "init": "#e377c2", "input": "#1f77b4", "inference": "#d62728",
          "output": "#2ca02c", "post": "#ff7f0e"}
MAX_POINTS = 4000


def envelope(values: np.ndarray, points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample index, min, max) per bucket, so a 60 M-sample trace plots in milliseconds."""
    if values.size <= points:
        index = np.arange(values.size)
        return index, values, values
    edges = np.linspace(0, values.size, points + 1).astype(np.int64)
    lows = np.minimum.reduceat(values, edges[:-1])
    highs = np.maximum.reduceat(values, edges[:-1])
    return edges[:-1], lows, highs


def plot_trace(trace, report, path: Path, title: str = "") -> Path:
    """Top: the whole capture (idle window, then the infer command); bottom: the infer command alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    power_mw = trace.current.astype(np.float64) * trace.voltage * 1e3
    spans = report.spans() if hasattr(report, "spans") else []
    fig, (whole, zoom) = plt.subplots(2, 1, figsize=(11, 6.5))
    _panel(whole, power_mw, trace.sample_rate, 0, power_mw.size, spans)
    busy = [(a, b) for name, a, b in spans if name != "idle"]
    if busy:
        first, last = min(a for a, _ in busy), max(b for _, b in busy)
        margin = 0.05 * (last - first)
        lo = max(0, int((first - margin) * trace.sample_rate))
        hi = min(power_mw.size, int((last + margin) * trace.sample_rate) + 1)
        _panel(zoom, power_mw, trace.sample_rate, lo, hi, spans)
        zoom.set_title("the infer command: init, warm-ups, the timed inferences", loc="left", fontsize=9)
    whole.set_title(title, loc="left", fontsize=10)
    handles, labels = whole.get_legend_handles_labels()
    if handles:
        whole.legend(handles, labels, loc="upper right", fontsize=8, ncol=len(handles))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _panel(ax, power_mw: np.ndarray, rate: float, lo: int, hi: int, spans) -> None:
    index, low, high = envelope(power_mw[lo:hi])
    t_ms = (index + lo) / rate * 1e3
    ax.fill_between(t_ms, low, high, color="black", linewidth=0.5, step="post")
    seen: set[str] = set()
    t_lo, t_hi = lo / rate, hi / rate
    for name, start, stop in spans:
        if stop < t_lo or start > t_hi:
            continue
        ax.axvspan(start * 1e3, stop * 1e3, color=COLORS.get(name, "#dddddd"), alpha=0.3, linewidth=0,
                   label=None if name in seen else name)
        seen.add(name)
    ax.set_xlim(t_lo * 1e3, t_hi * 1e3)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("power (mW)")
