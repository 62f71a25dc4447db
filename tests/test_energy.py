"""Energy: the simulated meter end to end, the recorded-trace meter, and the live Joulescope meter's
device-free parts (parameter order, sample conversion, the no-device message)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, compose, run_unpu
from test_e2e import _runs

STAGES = ("init", "input", "inference", "output", "post")
ENERGY_KEYS = [f"energy/{s}_uj" for s in STAGES] + [f"energy/{s}_net_uj" for s in STAGES] + [
    "energy/total_uj", "energy/window_uj", "power/active_mw", "power/idle_mw", "power/peak_mw"]
FAST = ["bench.windows=3", "bench.iterations=5", "bench.warmup=1", "bench.validation_inputs=2"]


def _model(**active):
    from unpu.meters.simulated import PowerModel

    return PowerModel(3.3, 1.0, {s: active.get(s, 10.0) for s in STAGES}, 0.0)


def test_simulated_window_is_recovered_by_the_analysis():
    """The synthetic capture, analysed like a real one, gives back power x time for every stage."""
    from unpu.meters.simulated import render, window_segments
    from unpu.meters.trace import analyze

    model = _model(init=50.0, input=20.0, inference=80.0, output=15.0, post=30.0)
    stage_s = {"init": 3e-3, "input": 200e-6, "inference": 2e-3, "output": 100e-6, "post": 50e-6}
    trace, widened = render(window_segments(model, stage_s, n=4, w=1, idle_s=0.05), 1e6, model, 0, 4e-6)
    assert widened == []
    m = analyze(trace, iterations=4, min_pulse_s=0.5e-6).metrics()
    for stage in STAGES:
        expected_uj = model.active_mw[stage] * stage_s[stage] * 1e3
        assert m[f"energy/{stage}_uj"] == pytest.approx(expected_uj, rel=2e-2), stage
        net = (model.active_mw[stage] - model.idle_mw) * stage_s[stage] * 1e3
        assert m[f"energy/{stage}_net_uj"] == pytest.approx(net, rel=2e-2), stage
    assert m["power/idle_mw"] == pytest.approx(1.0, rel=1e-3)


def test_stages_too_short_to_resolve_are_widened_and_named():
    from unpu.meters.simulated import render, window_segments

    stage_s = {"init": 1e-3, "input": 1e-3, "inference": 1e-3, "output": 1e-3, "post": 0.0}
    _, widened = render(window_segments(_model(), stage_s, 2, 0, 0.01), 1e6, _model(), 0, 4e-6)
    assert widened == ["post"]


def test_simulated_needs_a_power_model(tmp_path):
    from unpu.meters.base import MeterError
    from unpu.meters.simulated import PowerModel

    cfg = compose(["meter=simulated", "board.power.idle_mw=null"], tmp_path)
    with pytest.raises(MeterError, match="needs board.power.idle_mw"):
        PowerModel.from_board(cfg.board)


@pytest.mark.slow
def test_simulated_meter_sweep_host_and_qemu(tmp_path, shared_cache):
    out = run_unpu(["-m", "board=host,qemu_m55", "model=resnet8,dscnn", "meter=simulated", *FAST], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)}, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    client, _, children = _runs(tmp_path)
    assert len(children) == 4
    for run in children:
        tags, m = run.data.tags, run.data.metrics
        assert run.info.status == "FINISHED", tags.get("unpu.error")
        assert tags["source.energy"] == "simulated" and tags["meter"] == "simulated"
        for key in ENERGY_KEYS:
            assert key in m, (tags["board"], tags["model"], key)
        assert m["energy/inference_uj"] > m["energy/inference_net_uj"] > 0
        names = {a.path for a in client.list_artifacts(run.info.run_id, "energy")}
        assert names == {"energy/trace.jls", "energy/power.png"}
    # the standalone analysis of the logged .jls reproduces the logged numbers
    run = children[0]
    jls = Path(client.download_artifacts(run.info.run_id, "energy/trace.jls", str(tmp_path)))
    cli = subprocess.run([sys.executable, "-m", "unpu.meters.trace", str(jls), "--json",
                          "--min-pulse-us", "0.5"], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    standalone = json.loads(cli.stdout)
    for key in ENERGY_KEYS:
        assert standalone[key] == pytest.approx(run.data.metrics[key], rel=1e-9), key
    png = Path(client.download_artifacts(run.info.run_id, "energy/power.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_recorded_trace_meter_reads_a_file(tmp_path, shared_cache):
    """meter=trace on a trace written by the simulated meter: same numbers, source follows the file."""
    from unpu.meters.simulated import render, window_segments
    from unpu.meters.trace import analyze, write_jls

    model = _model(inference=60.0)
    trace, _ = render(window_segments(model, {s: 1e-3 for s in STAGES}, 3, 0, 0.02), 1e6, model, 0, 4e-6)
    trace.meta.update({"iterations": 3, "source": "simulated"})
    path = tmp_path / "rec.jls"
    write_jls(trace, path)
    out = run_unpu(["model=ad_fc", "meter=trace", f"meter.path={path}", *FAST], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 0, out.stderr[-3000:]
    _, _, children = _runs(tmp_path)
    run = children[0]
    assert run.data.tags["source.energy"] == "simulated" and run.data.tags["energy.trace_file"] == str(path)
    expected = analyze(trace, iterations=3, min_pulse_s=0.5e-6).metrics()
    assert run.data.metrics["energy/inference_uj"] == pytest.approx(expected["energy/inference_uj"])


@pytest.mark.slow
def test_estimate_board_energy_is_power_model_times_estimate(tmp_path, shared_cache):
    out = run_unpu(["board=corstone300", "model=resnet8", "meter=simulated"], tmp_path,
                   env={"UNPU_CACHE_DIR": str(shared_cache)})
    assert out.returncode == 0, out.stderr[-3000:]
    _, _, children = _runs(tmp_path)
    m, tags = children[0].data.metrics, children[0].data.tags
    cfg = compose(["board=corstone300"], tmp_path)
    expected = float(cfg.board.power.active_mw.inference) * m["estimate/latency_us"] * 1e-3
    assert m["energy/inference_uj"] == pytest.approx(expected)
    assert tags["source.energy"] == "simulated" and tags["source.latency"] == "estimated"


def test_joulescope_parameters_are_set_buffer_first_and_gpi_routed(tmp_path):
    from unpu.meters.joulescope import parameter_plan

    cfg = compose(["meter=joulescope", "meter.sample_rate_hz=500000"], tmp_path)
    plan = parameter_plan(cfg.meter)
    names = [name for name, _ in plan]
    assert names[0] == "buffer_duration" and names.index("sampling_frequency") < names.index("current_lsb")
    assert dict(plan)["sampling_frequency"] == 500000 and dict(plan)["i_range"] == "auto"
    assert ("current_lsb", "gpi0") in plan and ("voltage_lsb", "gpi1") in plan


def test_joulescope_samples_become_a_trace_and_a_jls(tmp_path):
    """The v1 samples_get layout → Trace → JLS file → the same analysis as every other trace."""
    from unpu.meters.joulescope import trace_from_samples
    from unpu.meters.simulated import render, window_segments
    from unpu.meters.trace import analyze, read_jls, write_jls

    model = _model()
    sim, _ = render(window_segments(model, {s: 5e-4 for s in STAGES}, 2, 1, 0.01), 1e6, model, 0, 4e-6)
    data = {"signals": {"current": {"value": sim.current, "units": "A"},
                        "voltage": {"value": sim.voltage, "units": "V"},
                        "current_lsb": {"value": sim.gpi0, "units": ""},
                        "voltage_lsb": {"value": sim.gpi1, "units": ""}}}
    trace = trace_from_samples(data, 1e6, {"iterations": 2})
    write_jls(trace, tmp_path / "cap.jls")
    again = read_jls(tmp_path / "cap.jls")
    assert analyze(again, min_pulse_s=0.5e-6).metrics() == pytest.approx(analyze(sim, iterations=2, min_pulse_s=0.5e-6).metrics())
    data["signals"]["current"]["value"] = np.where(np.arange(sim.current.size) == 10, np.nan, sim.current)
    from unpu.meters.base import MeterError

    with pytest.raises(MeterError, match="1 samples missing"):
        trace_from_samples(data, 1e6, {})
