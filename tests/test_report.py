"""`python -m unpu report` on a real sweep: host (measured) and corstone300 (Vela estimate), both with the
simulated meter, three models each, plus gap8 jobs that are refused (FAILED children)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from helpers import run_unpu

from unpu import report

MODELS = ["ad_fc", "dscnn", "resnet8"]  # in MACs order
FAST = ["bench.windows=3", "bench.iterations=5", "bench.warmup=1", "bench.validation_inputs=2"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, shared_cache):
    cwd = tmp_path_factory.mktemp("report_sweep")
    out = run_unpu(["-m", "board=host,corstone300,gap8", "model=" + ",".join(MODELS), "meter=simulated", *FAST],
                   cwd, env={"UNPU_CACHE_DIR": str(shared_cache)}, timeout=900)
    assert out.returncode == 1, out.stderr[-3000:]  # the gap8 jobs are refused (no GAP SDK); the rest finish
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd}/mlflow.db")
    exp = client.get_experiment_by_name("unpu")
    parent = client.search_runs([exp.experiment_id], "tags.`unpu.kind` = 'sweep'")[0]
    return SimpleNamespace(cwd=cwd, client=client, parent=parent)


@pytest.fixture(scope="module")
def selection(sweep):
    return report.select_runs(sweep.client, "unpu")


@pytest.mark.slow
def test_cli_writes_figures_and_summary_and_logs_them_to_the_parent(sweep):
    out = run_unpu(["report", "--out", "rep"], sweep.cwd, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = sweep.cwd / "rep"
    names = ["latency_stages.png", "energy_per_inference.png", "latency_vs_macs.png", "summary.md"]
    for name in names:
        assert (folder / name).stat().st_size > 0, name
    for name in names[:3]:
        assert (folder / name).read_bytes()[:8] == PNG, name
    text = (folder / "summary.md").read_text()
    latency = _section(text, "## Latency")
    assert len(latency) == 6
    for model in MODELS:
        assert any(line.startswith(f"| host | {model} |") and line.endswith("| measured |") for line in latency)
        assert any(line.startswith(f"| corstone300 | {model} |") and line.endswith("| estimated |") for line in latency)
    energy = _section(text, "## Energy")
    assert len(energy) == 6 and all("| simulated |" in line for line in energy)
    assert len(_section(text, "## Failed runs")) == 3 and "gap8" in _section(text, "## Failed runs")[0]
    for name in names[:3]:
        assert f"]({name})" in text
    logged = {a.path for a in sweep.client.list_artifacts(sweep.parent.info.run_id, "report")}
    assert logged == {f"report/{n}" for n in names}
    assert sweep.parent.info.run_id in out.stdout


@pytest.mark.slow
def test_filter_selects_runs_and_logs_nothing(sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(sweep.cwd)  # the default tracking URI is ./mlflow.db
    assert report.main(["--filter", "tags.board = 'corstone300'", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert len(_section(text, "## Latency")) == 3 and "| host |" not in text
    assert "logged under" not in capsys.readouterr().out
    assert (tmp_path / "latency_vs_macs.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_selection_is_the_newest_sweeps_children_in_board_and_macs_order(sweep, selection):
    assert selection.parent.info.run_id == sweep.parent.info.run_id
    assert len(selection.rows) == 9
    done = selection.finished
    assert [(r.board, r.model) for r in done] == [(b, m) for b in ("host", "corstone300") for m in MODELS]
    assert {r.board for r in selection.failed} == {"gap8"} and len(selection.failed) == 3
    assert {r.source_latency for r in done if r.board == "host"} == {"measured"}
    assert {r.source_latency for r in done if r.board == "corstone300"} == {"estimated"}
    assert {r.source_energy for r in done} == {"simulated"}


@pytest.mark.slow
def test_tables_carry_values_and_sources(selection):
    done = selection.finished
    head, body = report.latency_table(done)
    assert head[-1] == "latency source" and len(body) == 6
    host = dict(zip(head, body[0]))
    assert host["latency source"] == "measured" and host["init µs"] != "—"
    vela = dict(zip(head, body[3]))
    assert vela["latency source"] == "estimated"
    assert vela["init µs"] == "—" and vela["total µs"] == "—"  # Vela estimates the inference only
    assert vela["inference µs"] == report.fmt(done[3].metrics["latency/inference_us"])

    head, body = report.energy_table(done)
    row = dict(zip(head, body[0]))
    assert row["energy source"] == "simulated" and row["latency source"] == "measured"
    per_inference = sum(done[0].metrics[f"energy/{s}_uj"] for s in report.PER_INFERENCE)
    assert report.energy_per_inference(done[0]) == pytest.approx(per_inference)
    assert report.energy_per_inference(done[0], net=True) < per_inference

    head, body = report.memory_table(done)
    assert [dict(zip(head, b))["memory source"] for b in body] == ["measured"] * 3 + ["estimated"] * 3

    head, body = report.spec_table(done)
    vela = dict(zip(head, body[5]))
    assert vela["peak GOP/s"] == report.fmt(128.0)  # U55-128 at 500 MHz: 2 x 128 x 500e6
    assert vela["of peak"] == f"{done[5].metrics['perf/peak_fraction']:.2%}"
    assert dict(zip(head, body[0]))["peak GOP/s"] == "—"  # the host has no published peak


@pytest.mark.slow
def test_peak_falls_back_to_the_runs_config_artifact(sweep, selection, tmp_path):
    rows = [report.row_from_run(sweep.client.get_run(r.run_id)) for r in selection.finished]
    for row in rows:
        row.peak_gops = None  # as for a run that logged no perf/peak_gops
    report.fill_peaks(sweep.client, rows, tmp_path)
    assert {r.board: r.peak_gops for r in rows} == {"host": None, "corstone300": pytest.approx(128.0)}


@pytest.mark.slow
def test_no_experiment_or_no_sweep_is_one_line_exit_2(sweep, tmp_path, capsys):
    uri = f"sqlite:///{sweep.cwd}/mlflow.db"
    assert report.main(["--tracking-uri", uri, "--experiment", "nope", "--out", str(tmp_path)]) == 2
    assert "no MLflow experiment 'nope'" in capsys.readouterr().err
    assert report.main(["--tracking-uri", uri, "--parent", "0" * 32, "--out", str(tmp_path)]) == 2
    assert "no run" in capsys.readouterr().err


def test_markdown_table_escapes_pipes_and_right_aligns_numbers():
    rows = [["host", "a|b", "int8", "1,234", "measured"], ["host", "c", "int8", "—", "estimated"]]
    text = report.markdown_table(["board", "model", "quant", "x µs", "note"], rows)
    lines = text.splitlines()
    assert lines[1] == "|---|---|---|---:|---|"
    assert "a\\|b" in lines[2]
    assert report.fmt(None) == "—" and report.fmt(12345.6) == "12,346" and report.fmt(0.0012344) == "0.001234"


def _section(text: str, heading: str) -> list[str]:
    """The data rows of the first table under the heading."""
    lines = text.split(heading, 1)[1].splitlines()
    end = next((i for i, line in enumerate(lines[1:]) if line.startswith("## ")), len(lines))
    table = [line for line in lines[1:end + 1] if line.startswith("|")]
    return table[2:]
