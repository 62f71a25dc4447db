"""The DVC study (dvc.yaml, docs/dvc.md) in a fresh git repository made from this one's files:
real DVC, real TensorFlow conversions, real Vela and arm-none-eabi-gcc, real QEMU, real MLflow.

The tests share one repository (module fixture: the first `dvc repro`); each leaves it consistent
(outputs matching dvc.lock), so they do not depend on running in order.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO

VENV_BIN = Path(sys.executable).parent
COPY = ["conf", "unpu", "firmware", "dvc.yaml", "params.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore",
        ".gitignore", "pyproject.toml"]
STUDY_STAGES = {"float@dscnn", "float@ad_fc", "quantize@dscnn-int8", "quantize@ad_fc-int8",
                "compile@hxwe2-dscnn-int8", "compile@hxwe2-ad_fc-int8",
                "compile@qemu_m55-dscnn-int8", "compile@qemu_m55-ad_fc-int8"}
AD_FC_CHAIN = {"float@ad_fc", "quantize@ad_fc-int8", "compile@hxwe2-ad_fc-int8", "compile@qemu_m55-ad_fc-int8"}
FAST_BENCH = ["-S", "bench.windows=2", "-S", "bench.iterations=2", "-S", "bench.warmup=1",
              "-S", "bench.validation_inputs=2"]



def _env(root: Path, cache: Path) -> dict[str, str]:
    # Stage commands run `python -m unpu.dvc_stages`: this venv's python, this copy's package.
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(root),
            "UNPU_CACHE_DIR": str(cache), "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(root.parent / "dvc_site"),
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _dvc(root: Path, env: dict[str, str], *args: str, timeout: float = 900) -> str:
    return _run([str(VENV_BIN / "dvc"), *args], root, env, timeout)


def _git(root: Path, env: dict[str, str], *args: str) -> str:
    return _run(["git", *args], root, env, timeout=60)


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def _lock_outs(root: Path) -> dict[str, str]:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def _mlflow_runs(root: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
    exp = client.get_experiment_by_name("unpu")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])


# -- fast: no conversion ---------------------------------------------------------------------------

def test_committed_params_are_conf_composed_as_dvc_does(tmp_path, monkeypatch):
    """params.yaml is generated: it must equal conf/ composed by DVC's own Hydra composition (after a
    change in conf/, regenerate it with `python -m unpu.dvc_stages params`)."""
    from unpu.dvc_stages import write_params

    monkeypatch.chdir(tmp_path)
    write_params([])
    assert yaml.safe_load(Path("params.yaml").read_text()) == yaml.safe_load((REPO / "params.yaml").read_text())
    study = yaml.safe_load(Path("params.yaml").read_text())["study"]
    assert (study["models"], study["quants"], study["boards"]) == ({"dscnn": {}, "ad_fc": {}}, {"int8": {}},
                                                                   {"hxwe2": {}, "qemu_m55": {}})


def test_bench_refuses_values_the_artifacts_would_not_see(tmp_path, monkeypatch):
    """`-S model.seed=3` would change params.yaml but not the study's artifacts: refused, with the way to do it."""
    from omegaconf import OmegaConf

    from unpu.dvc_stages import StageError, bench_stage, write_params

    monkeypatch.chdir(tmp_path)
    write_params(["model.seed=3"])
    with pytest.raises(StageError, match=r"study\.models\.dscnn"):
        bench_stage(OmegaConf.load("params.yaml"), Path("m.tflite"), Path("b"), Path("out.json"))
    assert not Path("out.json").exists()


# -- slow: the study in a fresh repository -----------------------------------------------------------

@pytest.fixture(scope="module")
def study(tmp_path_factory, shared_cache):
    """A git repository of this project's files, after its first `dvc repro`."""
    root = tmp_path_factory.mktemp("study") / "repo"
    for rel in COPY:
        src, dst = REPO / rel, root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    env = _env(root, shared_cache)
    _git(root, env, "init", "-q")
    _git(root, env, "add", "-A")
    _git(root, env, "commit", "-qm", "study")
    first = _dvc(root, env, "repro")
    _git(root, env, "add", "-A")
    _git(root, env, "commit", "-qm", "reproduced")
    return root, env, first


@pytest.mark.slow
def test_repro_builds_models_and_compiled_binaries(study):
    root, _, first = study
    assert _ran(first) == STUDY_STAGES | {"bench"}
    outs = _lock_outs(root)
    for model in ("dscnn", "ad_fc"):
        tflite = root / f"dvc_out/models/{model}-int8.tflite"
        assert outs[f"dvc_out/models/{model}-int8.tflite"] == hashlib.md5(tflite.read_bytes()).hexdigest()
        assert tflite.read_bytes()[4:8] == b"TFL3" and (root / f"dvc_out/float/{model}.keras").stat().st_size > 0
        vela = root / f"dvc_out/compiled/hxwe2/{model}-int8/model_vela.tflite"
        elf = root / f"dvc_out/compiled/qemu_m55/{model}-int8/app.elf"
        assert vela.read_bytes()[4:8] == b"TFL3" and elf.read_bytes()[:4] == b"\x7fELF"
        for binary in (vela, elf):  # the build report names the very bytes DVC tracks
            report = yaml.safe_load((binary.parent / "build.json").read_text())
            assert report["sha256"] == hashlib.sha256(binary.read_bytes()).hexdigest()
    assert not (root / "dvc_out").joinpath(".gitignore").exists()
    assert "dvc_out" not in _git(root, study[1], "status", "--porcelain", "--ignored=no")


@pytest.mark.slow
def test_second_repro_runs_nothing(study):
    root, env, _ = study
    out = _dvc(root, env, "repro")
    assert _ran(out) == set() and "Data and pipelines are up to date" in out


@pytest.mark.slow
def test_one_model_change_rebuilds_only_its_chain(study):
    """study.models.ad_fc.seed=1 (the study's per-model override) reruns ad_fc's chain and nothing else."""
    root, env, _ = study
    before = _lock_outs(root)
    _run([sys.executable, "-m", "unpu.dvc_stages", "params", "+study.models.ad_fc.seed=1"], root, env)
    assert yaml.safe_load((root / "params.yaml").read_text())["study"]["models"] == {"dscnn": {}, "ad_fc": {"seed": 1}}
    out = _dvc(root, env, "repro")
    assert _ran(out) == AD_FC_CHAIN
    after = _lock_outs(root)
    changed = {path for path in after if after[path] != before[path]}
    assert "dvc_out/models/ad_fc-int8.tflite" in changed and "dvc_out/float/ad_fc.keras" in changed
    assert not any("dscnn" in path for path in changed)
    # back to the committed study: DVC restores the seed-0 artifacts from its cache, nothing reruns
    _git(root, env, "checkout", "--", "params.yaml", "dvc.lock")
    _dvc(root, env, "checkout")
    assert _lock_outs(root) == before
    assert _ran(_dvc(root, env, "repro")) == set()


@pytest.mark.slow
def test_exp_run_benches_the_selected_entry_with_dvc_digests(study):
    root, env, _ = study
    out = _dvc(root, env, "exp", "run", "-S", "board=qemu_m55", "-S", "model=dscnn", *FAST_BENCH)
    assert _ran(out) == {"bench"}  # params.yaml recomposed from conf/: only the bench's parameters changed
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["board"]["name"] == "qemu_m55" and params["bench"]["windows"] == 2
    run = _mlflow_runs(root)[0]
    tags, outs = run.data.tags, _lock_outs(root)
    assert run.info.status == "FINISHED" and tags["board"] == "qemu_m55" and tags["model"] == "dscnn"
    assert tags["dvc.model_md5"] == outs["dvc_out/models/dscnn-int8.tflite"]
    assert tags["dvc.binary_md5"] == outs["dvc_out/compiled/qemu_m55/dscnn-int8"]
    assert tags["dvc.binary_md5"].endswith(".dir") and tags["dvc.experiment"]
    elf = root / "dvc_out/compiled/qemu_m55/dscnn-int8/app.elf"
    assert tags["digest.firmware"] == hashlib.sha256(elf.read_bytes()).hexdigest()  # it ran the tracked ELF
    assert tags["source.latency"] == "emulated" and run.data.metrics["validation/max_abs_diff_lsb"] == 0
    metrics = yaml.safe_load((root / "dvc_bench.json").read_text())
    assert metrics["mlflow_run_id"] == run.info.run_id


@pytest.mark.slow
def test_push_then_pull_into_a_clean_clone(study, tmp_path):
    root, env, _ = study
    remote = tmp_path / "remote"
    _dvc(root, env, "remote", "add", "-d", "store", str(remote))
    _git(root, env, "add", "-A")
    _git(root, env, "commit", "-qm", "remote", "--allow-empty")
    _dvc(root, env, "push")
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(root), str(clone)], tmp_path, env, timeout=60)
    assert not (clone / "dvc_out").exists()
    _dvc(clone, _env(clone, tmp_path / "unused_cache"), "pull")
    outs = _lock_outs(clone)
    assert outs == _lock_outs(root) and len(outs) == 9  # 8 study outputs + the bench metrics (in git)
    for path in outs:
        src, dst = root / path, clone / path
        files = sorted(p.relative_to(src) for p in src.rglob("*")) if src.is_dir() else [Path()]
        for rel in files:
            assert (dst / rel).read_bytes() == (src / rel).read_bytes(), path
    status = _dvc(clone, _env(clone, tmp_path / "unused_cache"), "status")
    assert "up to date" in status
