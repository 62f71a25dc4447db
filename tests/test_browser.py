"""The MLflow UI in a real browser: Debian's Chromium, headless, driven by Playwright.

A small real sweep is recorded in a sqlite database, `mlflow server` serves it on 127.0.0.1, and
the experiment's runs table must show the sweep's parent run, its child runs once the parent is
expanded, and the `latency/inference_us` column (added through the UI's column selector) with the
values the REST API returns. The screenshot is kept: under the test's tmp dir and copied to
test-artifacts/mlflow-runs.png at the repo root (git-ignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import REPO, MlflowServer, metrics_of, run_unpu, search_runs, tags_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
METRIC = "latency/inference_us"
MODELS = ("ad_fc", "dscnn")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (make test installs it: apt-get install chromium)")


@pytest.mark.slow
def test_sweep_parent_children_and_latency_column_in_the_mlflow_ui(tmp_path, shared_cache):
    out = run_unpu(["-m", "model=" + ",".join(MODELS), "bench.windows=2", "bench.iterations=3",
                    "bench.validation_inputs=2"], tmp_path, env={"UNPU_CACHE_DIR": str(shared_cache)}, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    server = MlflowServer(tmp_path / "mlflow.db", tmp_path / "artifacts")
    try:
        server.wait()
        runs = search_runs(server)
        parent = next(r for r in runs if tags_of(r)["unpu.kind"] == "sweep")
        expected = {r["info"]["run_name"]: metrics_of(r)[METRIC] for r in runs if r is not parent}
        assert sorted(expected) == [f"host/{m}/int8" for m in MODELS]
        table = _runs_table_in_chromium(server.url, parent["info"]["experiment_id"], parent["info"]["run_name"],
                                        sorted(expected), tmp_path / "mlflow-runs.png")
    finally:
        server.stop()
    names = [row["name"] for row in table]
    assert names[0] == parent["info"]["run_name"] and sorted(names[1:]) == sorted(expected), names
    assert table[0][METRIC] == "-"  # the parent run has no latency of its own
    for row in table[1:]:
        assert float(row[METRIC].replace(",", "")) == pytest.approx(expected[row["name"]], rel=1e-3), row


def _runs_table_in_chromium(url: str, experiment_id: str, parent: str, children: list[str], shot: Path) -> list[dict]:
    """Open the experiment's runs table, add the metric column, expand the parent; rows in display order."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, timeout=120_000,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.set_default_timeout(60_000)
            try:
                # MLflow 3 opens experiments in its GenAI view; the runs table is the "machine learning" one.
                page.goto(f"{url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning")
                page.get_by_text(parent, exact=True).wait_for()
                _close_assistant_panel(page)
                for child in children:  # collapsed: only the parent row is shown
                    assert page.get_by_text(child, exact=True).count() == 0
                _add_metric_column(page, METRIC)
                page.get_by_role("gridcell").filter(has_text=parent).get_by_role("button").click()  # expand
                for child in children:
                    page.get_by_text(child, exact=True).wait_for()
                page.locator(f'[role=gridcell][col-id="metrics.`{METRIC}`"]').last.wait_for()
                return _table(page)
            finally:
                page.screenshot(path=str(shot))
                ARTIFACTS.mkdir(exist_ok=True)
                shutil.copy(shot, ARTIFACTS / shot.name)
        finally:
            browser.close()


def _close_assistant_panel(page) -> None:
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():
        close.first.click()


def _add_metric_column(page, metric: str) -> None:
    page.get_by_role("button", name="Columns").click()
    page.get_by_placeholder("Search columns").fill(metric)
    page.get_by_text(metric, exact=True).first.click()  # the tree's entry (not the _min/_max/... ones)
    page.keyboard.press("Escape")


def _table(page) -> list[dict]:
    """The grid's rows by row index (ag-grid draws pinned and scrolling columns as separate rows)."""
    cells = page.evaluate("""() => Array.from(document.querySelectorAll('[role=row][row-index]')).flatMap(row =>
        Array.from(row.querySelectorAll('[role=gridcell][col-id]')).map(cell =>
            [Number(row.getAttribute('row-index')), cell.getAttribute('col-id'), cell.innerText]))""")
    rows: dict[int, dict] = {}
    for index, column, text in cells:
        row = rows.setdefault(index, {})
        if column == "attributes.`Run Name`":
            row["name"] = text.splitlines()[-1].strip()  # the colour swatch's label comes first
        elif column == f"metrics.`{METRIC}`":
            row[METRIC] = text.strip()
    return [rows[i] for i in sorted(rows)]
