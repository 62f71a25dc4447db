"""Speed of the recorded-trace analysis (unpu.meters.trace.analyze) on a one-minute capture.

    .venv/bin/python bench/trace_speed.py [--seconds 60] [--rate 1000000] [--iterations 1000]
                                          [--loop-samples 2000000]

Builds a realistic capture (1 MS/s × 60 s = 60 M samples: an idle window, then `infer N W` with
N = 1000, measurement noise on current and voltage, bounce on both pins), times `analyze`, and times
a straightforward per-sample Python loop doing the same work (debounce both pins, find edges, sum
V·I between the boundaries) on the first --loop-samples samples, extrapolated linearly to the whole
capture (the loop's cost per sample does not depend on where it is). Goals: analyze ≤ 2 s, ≥ 50× the
loop. The loop is first checked against analyze on a small capture, so the two do the same analysis.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from unpu.meters.trace import Trace, analyze, min_samples  # noqa: E402

V0 = 3.3
STAGES_MS = {"input": 2.0, "inference": 40.0, "output": 1.0, "post": 7.0}
STAGE_MW = {"input": 15.0, "inference": 60.0, "output": 18.0, "post": 25.0}
BOUNCE_PULSE_S = 2e-6   # the bounce injected below is one sample (1 us): debounce runs shorter than 2 us
IDLE_MW, INIT_MW = 4.0, 30.0


def build(seconds: float, rate: float, n: int, w: int = 10, seed: int = 0) -> Trace:
    """Segments (samples, mW, pin event at the start) rendered with np.repeat, then noise and bounce."""
    us = rate / 1e6
    idle_s = min(5.0, seconds / 12)
    # stretch the stages so that the whole capture (with 0.3 s of lead, init and tail) lasts `seconds`
    scale = (seconds - idle_s - 0.3) / (n + w) / (sum(STAGES_MS.values()) * 1e-3)
    segs = [(200_000 * us, IDLE_MW, ""), (5 * us, IDLE_MW, "ts"), (idle_s * 1e6 * us, IDLE_MW, ""),
            (5 * us, IDLE_MW, "ts"), (100 * us, IDLE_MW, ""), (20_000 * us, INIT_MW, "toggle"),
            (50 * us, IDLE_MW, "toggle")]
    inference = [(ms * 1e3 * scale * us, STAGE_MW[s], "toggle") for s, ms in STAGES_MS.items()]
    segs += inference * w + [(5 * us, IDLE_MW, "ts")] + inference * n + [(5 * us, IDLE_MW, "ts")]
    counts = np.maximum(np.round([s[0] for s in segs]).astype(np.int64), 1)
    total = int(seconds * rate)
    segs.append((0, IDLE_MW, ""))
    counts = np.append(counts, max(total - counts.sum(), 1))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rng = np.random.default_rng(seed)
    current = np.repeat(np.array([s[1] for s in segs], dtype=np.float32) * 1e-3 / V0, counts)
    current += rng.standard_normal(current.size, dtype=np.float32) * np.float32(0.2e-3)
    voltage = np.full(current.size, V0, dtype=np.float32)
    voltage += rng.standard_normal(voltage.size, dtype=np.float32) * np.float32(2e-3)
    gpi0 = np.ones(current.size, dtype=np.uint8)
    for start, count, seg in zip(starts, counts, segs):
        if seg[2] == "ts":
            gpi0[start:start + count] = 0
    flips = np.zeros(current.size, dtype=np.uint8)
    flips[[s for s, seg in zip(starts, segs) if seg[2] == "toggle"]] = 1
    gpi1 = np.bitwise_xor.accumulate(flips)
    for pin in (gpi0, gpi1):   # contact bounce: one sample back at the old level after each edge
        edges = np.flatnonzero(pin[1:] != pin[:-1]) + 1
        pin[edges[edges + 1 < pin.size] + 1] ^= 1
    return Trace(current, voltage, gpi0, gpi1, rate, {"iterations": n, "warmup": w, "source": "simulated"})


# ---- the per-sample Python loop -----------------------------------------------------------------

def loop_edges(pin: list[int], min_run: int) -> list[tuple[int, int]]:
    """(index, new level) of each debounced edge, one sample at a time."""
    edges: list[tuple[int, int]] = []
    stable_level, stable_end = None, 0
    run_level, run_start = pin[0], 0
    n = len(pin)
    for i in range(1, n + 1):
        level = pin[i] if i < n else -1
        if level == run_level:
            continue
        if i - run_start >= min_run:
            if stable_level is not None and run_level != stable_level:
                edges.append((stable_end, run_level))
            stable_level, stable_end = run_level, i
        run_level, run_start = level, i
    return edges


def loop_sums(current: list[float], voltage: list[float], bounds: list[int],
              peak_range: tuple[int, int]) -> tuple[list[float], float]:
    """Σ V·I from bounds[0] to each bound, and the peak inside peak_range, one sample at a time."""
    sums, acc, peak, j = [], 0.0, float("-inf"), 0
    for i in range(bounds[0], bounds[-1]):
        while bounds[j] == i:
            sums.append(acc)
            j += 1
        p = current[i] * voltage[i]
        acc += p
        if peak_range[0] <= i < peak_range[1] and p > peak:
            peak = p
    sums += [acc] * (len(bounds) - j)
    return sums, peak


def loop_analyze(trace: Trace, n: int, min_pulse_s: float = BOUNCE_PULSE_S) -> dict[str, float]:
    run = min_samples(min_pulse_s, trace.sample_rate)
    falls = [i for i, level in loop_edges(trace.gpi0.tolist(), run) if level == 0]
    toggles = [i for i, _ in loop_edges(trace.gpi1.tolist(), run)]
    t0, t1 = falls[-2], falls[-1]
    idle = falls[:2] if len(falls) >= 4 else []
    inside = [t for t in toggles if t0 <= t < t1]
    before = [t for t in toggles if (idle[1] if idle else 0) <= t < t0]
    assert len(inside) == 4 * n and len(before) % 4 == 2
    bounds = idle + before[:2] + [t0] + inside + [t1]
    sums, peak = loop_sums(trace.current.tolist(), trace.voltage.tolist(), bounds, (t0, t1))
    uj = [(b - a) / trace.sample_rate * 1e6 for a, b in zip(sums, sums[1:])]
    k = len(idle)
    out = {"energy/init_uj": uj[k], "energy/window_uj": (sums[-1] - sums[k + 2]) / trace.sample_rate * 1e6 / n,
           "power/peak_mw": peak * 1e3}
    for j, stage in enumerate(("input", "inference", "output", "post")):
        out[f"energy/{stage}_uj"] = sum(uj[k + 3 + j::4]) / n
    return out


def time_loop(trace: Trace, samples: int, min_pulse_s: float = BOUNCE_PULSE_S) -> float:
    run = min_samples(min_pulse_s, trace.sample_rate)
    t = time.perf_counter()
    loop_edges(trace.gpi0[:samples].tolist(), run)
    loop_edges(trace.gpi1[:samples].tolist(), run)
    loop_sums(trace.current[:samples].tolist(), trace.voltage[:samples].tolist(), [0, samples], (0, samples))
    return time.perf_counter() - t


def check_same(rate: float) -> None:
    small = build(2.0, rate, 20, w=2, seed=1)
    want = analyze(small, min_pulse_s=BOUNCE_PULSE_S).metrics()
    got = loop_analyze(small, 20)
    for key, value in got.items():
        assert abs(value - want[key]) <= 1e-9 * abs(want[key]), (key, value, want[key])
    print(f"loop == analyze on a {len(small) / 1e6:.1f} M-sample capture ({len(got)} metrics, rel. diff ≤ 1e-9)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=1e6)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--loop-samples", type=int, default=2_000_000)
    args = p.parse_args()
    check_same(args.rate)
    t = time.perf_counter()
    trace = build(args.seconds, args.rate, args.iterations)
    print(f"capture: {len(trace) / 1e6:.1f} M samples ({args.seconds:g} s at {args.rate / 1e6:g} MS/s), "
          f"N = {args.iterations}, built in {time.perf_counter() - t:.1f} s")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        report = analyze(trace, min_pulse_s=BOUNCE_PULSE_S)
        times.append(time.perf_counter() - t)
    fast = min(times)
    print(f"analyze (numpy):   {fast:.3f} s (best of 3: {', '.join(f'{x:.3f}' for x in times)})  "
          f"inference {report.energy_uj['inference']:.1f} µJ, window {report.window_uj:.1f} µJ per inference")
    tracemalloc.start()
    analyze(trace, min_pulse_s=BOUNCE_PULSE_S)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"analyze peak memory beyond the trace: {peak / 2**20:.0f} MiB (tracemalloc; the trace itself is "
          f"{sum(a.nbytes for a in (trace.current, trace.voltage, trace.gpi0, trace.gpi1)) / 2**20:.0f} MiB)")
    samples = min(args.loop_samples, len(trace))
    loop_s = time_loop(trace, samples)
    slow = loop_s * len(trace) / samples
    print(f"per-sample loop:   {loop_s:.2f} s on {samples / 1e6:.1f} M samples → {slow:.1f} s for "
          f"{len(trace) / 1e6:.0f} M (linear extrapolation)")
    print(f"speed-up: {slow / fast:.0f}×   goals: analyze ≤ 2 s: {'met' if fast <= 2 else 'MISSED'}; "
          f"≥ 50×: {'met' if slow / fast >= 50 else 'MISSED'}")
    return 0 if fast <= 2 and slow / fast >= 50 else 1


if __name__ == "__main__":
    sys.exit(main())
