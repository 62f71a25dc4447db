"""DVC stage entry points (dvc.yaml, docs/dvc.md): `python -m unpu.dvc_stages STAGE ...`.

    float    --model M --out F            unpu.steps.float_model        -> the Keras model
    quantize --model M --quant Q --out F  unpu.steps.quantized_model    -> the quantized .tflite
    compile  --board B --model M --quant Q --out DIR   the board adapter's build (Vela, C codegen + gcc)
    bench    --model-file F --binary DIR --out JSON    unpu.pipeline.run_job, recorded in MLflow
    params   [OVERRIDE ...]               compose conf/ into params.yaml exactly as `dvc exp run -S` does

Every stage calls the pipeline's own function, which builds into (or finds in) unpu's content-addressed
cache, and copies the artifact out to where DVC tracks it. A stage's job config is conf/ composed
for its board × model × quant, with that entry's overrides from `study:` (study.models.M ...) and the
study-wide sections (dataset, bench, meter, tracking) from params.yaml: the same function makes the
config of the artifacts and of the bench, so the bench measures exactly the artifacts DVC tracks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from unpu import config_dir, steps
from unpu.boards.base import adapter_class, make_board
from unpu.cache import Cache, file_digest
from unpu.errors import UnpuError
from unpu.pipeline import JobFailed, UsageError, build_context, run_job

log = logging.getLogger("unpu")

PARAMS = Path("params.yaml")
LOCK = Path("dvc.lock")
CONFIG_NAME = "dvc_config"  # conf/dvc_config.yaml: conf/config.yaml minus what only a running Hydra app resolves
GROUPS = ("board", "model", "quant")
STUDY_WIDE = ("dataset", "bench", "meter", "tracking")


class StageError(Exception):
    """The stage cannot run as configured (one line for the user)."""


# -- configuration ----------------------------------------------------------------------------------

def compose_job(board: str | None, model: str, quant: str | None) -> DictConfig:
    """conf/ composed for board × model × quant, as `python -m unpu` would (None: conf/dvc_config.yaml's default)."""
    overrides = [f"{group}={name}" for group, name in zip(GROUPS, (board, model, quant)) if name]
    with initialize_config_dir(version_base="1.3", config_dir=config_dir()):
        return compose(CONFIG_NAME, overrides=overrides)


def job_config(params: DictConfig, board: str | None, model: str, quant: str | None) -> DictConfig:
    """The job config of one study entry: conf/ + the entry's study overrides + params.yaml's study-wide sections."""
    cfg = compose_job(board, model, quant)
    study = params.study
    for group, name in zip(GROUPS, (board, model, quant)):
        if name is None:
            continue
        entries = study.get(f"{group}s") or {}
        if name not in entries:
            raise StageError(f"{group} '{name}' is not in study.{group}s ({', '.join(entries)}): "
                             f"add it in conf/config.yaml (study:) and recompose params.yaml")
        cfg[group] = OmegaConf.merge(cfg[group], entries[name] or {})
    for section in STUDY_WIDE:
        cfg[section] = params[section]
    return _machine_local(cfg)


def _machine_local(cfg: DictConfig) -> DictConfig:
    """Where the cache and MLflow live is this machine's business, not a parameter: resolve them here."""
    # DVC_ROOT: the user's repository, also for a queued experiment running in a temporary copy
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    cfg.cache.dir = os.environ.get("UNPU_CACHE_DIR") or str(root / str(cfg.cache.dir))
    uri = str(cfg.tracking.uri)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        cfg.tracking.uri = f"sqlite:///{root / uri[len('sqlite:///'):]}"
    return cfg


def load_params(path: Path = PARAMS) -> DictConfig:
    if not path.exists():
        raise StageError(f"{path} not found: run `python -m unpu.dvc_stages params` (or `dvc exp run -S ...`)")
    return OmegaConf.load(path)


def write_params(overrides: list[str], path: Path = PARAMS) -> None:
    """params.yaml from conf/, with DVC's own Hydra composition (what `dvc exp run -S` writes)."""
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(str(path), config_dir(), None, CONFIG_NAME, str(Path.cwd()), overrides)


# -- stages -----------------------------------------------------------------------------------------

def _cache(cfg: DictConfig) -> Cache:
    return Cache(str(cfg.cache.dir))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)  # no copy2: DVC outputs should not carry the cache entry's mtime
    log.info("%s -> %s", src, dst)


def float_stage(params: DictConfig, model: str, out: Path) -> None:
    cfg = job_config(params, None, model, None)
    _copy(steps.float_model(cfg, _cache(cfg)).file("model.keras"), out)


def quantize_stage(params: DictConfig, model: str, quant: str, out: Path) -> None:
    cfg = job_config(params, None, model, quant)
    _copy(steps.quantized_model(cfg, _cache(cfg)).path, out)


def compile_stage(params: DictConfig, board: str, model: str, quant: str, out: Path) -> None:
    """The board's compiled binary (Vela's optimised model, or the QEMU firmware ELF) and its build report."""
    cfg = job_config(params, board, model, quant)
    if adapter_class(cfg.board) is None:
        raise StageError(f"board '{board}' has no adapter (support: {cfg.board.support})")
    workdir = Path("outputs") / "dvc" / f"compile_{board}_{model}_{quant}"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        adapter = make_board(cfg.board, build_context(cfg))
        adapter.check_environment()
        quantized = steps.quantized_model(cfg, _cache(cfg))
        adapter.preflight(quantized)
        firmware = adapter.build(quantized, workdir)
    except UnpuError as exc:
        raise StageError(f"compile {board}/{model}/{quant}: {exc}") from None
    if out.exists():
        shutil.rmtree(out)
    _copy(firmware.image, out / firmware.image.name)
    report = {"board": board, "model": model, "quant": quant, "image": firmware.image.name,
              "sha256": firmware.digest, "build_id": firmware.build_id, "model_sha256": quantized.digest,
              "metrics": firmware.metrics, "tags": {k: str(v) for k, v in firmware.tags.items()
                                                    if not k.startswith("cache.")}}
    (out / "build.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def lock_md5(path: Path, lock: Path = LOCK) -> str | None:
    """The md5 DVC recorded for an output in dvc.lock (a directory's ends in .dir), or None."""
    if not lock.exists():
        return None
    data = OmegaConf.to_container(OmegaConf.load(lock))
    wanted = path.as_posix().rstrip("/")
    for stage in (data.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if str(out.get("path", "")).rstrip("/") == wanted:
                return out.get("md5")
    return None


def _selected(params: DictConfig) -> tuple[str, str, str]:
    """The board × model × quant params.yaml selects for the bench; refuse values the stages would not see."""
    board, model, quant = (str(params[g].name) for g in GROUPS)
    conf = compose_job(board, model, quant)
    for group in GROUPS:
        if OmegaConf.to_container(params[group], resolve=True) != OmegaConf.to_container(conf[group], resolve=True):
            name = str(params[group].name)
            raise StageError(f"params.yaml's {group} differs from conf/{group}/{name}.yaml; the artifacts are built "
                             f"from conf/ + study.{group}s.{name}, so set per-{group} values there "
                             f"(e.g. dvc exp run -S +study.{group}s.{name}.KEY=VALUE)")
    return board, model, quant


def bench_stage(params: DictConfig, model_file: Path, binary: Path, out: Path) -> dict[str, Any]:
    """Measure the selected entry with run_job; the MLflow run carries the DVC digests of what it ran."""
    board, model, quant = _selected(params)
    cfg = job_config(params, board, model, quant)
    _require_same(steps.quantized_model(cfg, _cache(cfg)).digest, file_digest(model_file), f"model {model_file}")
    digests = {"model_md5": lock_md5(model_file), "binary_md5": lock_md5(binary),
               "model_path": model_file.as_posix(), "binary_path": binary.as_posix(),
               "experiment": os.environ.get("DVC_EXP_NAME"), "baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV")}
    OmegaConf.set_struct(cfg, False)
    cfg.dvc = {k: v for k, v in digests.items() if v}
    workdir = Path("outputs") / "dvc" / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{board}_{model}_{quant}"
    result = run_job(cfg, workdir)
    built = json.loads((binary / "build.json").read_text())["sha256"]
    _require_same(result.tags.get("digest.firmware"), built, f"binary {binary}")
    summary = {"mlflow_run_id": result.run_id, **{k: v for k, v in result.metrics.items() if "/" in k}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _require_same(ran: str | None, tracked: str, what: str) -> None:
    if ran != tracked:
        raise StageError(f"the bench would run {ran} but DVC tracks {what} with sha256 {tracked}: run `dvc repro`")


# -- command line -----------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m unpu.dvc_stages",
                                     description="One stage of the DVC study (dvc.yaml, docs/dvc.md), run by "
                                                 "unpu's own pipeline functions from the repository root.")
    sub = parser.add_subparsers(dest="stage", required=True)
    for name, keys, text in (
            ("float", ("model",), "the float Keras model (unpu.steps.float_model)"),
            ("quantize", ("model", "quant"), "the quantized .tflite (unpu.steps.quantized_model)"),
            ("compile", ("board", "model", "quant"), "the board's compiled binary (its adapter's build)")):
        stage = sub.add_parser(name, help=text)
        for key in keys:
            stage.add_argument(f"--{key}", required=True)
        stage.add_argument("--out", type=Path, required=True)
    bench = sub.add_parser("bench", help="benchmark params.yaml's board x model x quant (unpu.pipeline.run_job)")
    bench.add_argument("--model-file", type=Path, required=True)
    bench.add_argument("--binary", type=Path, required=True)
    bench.add_argument("--out", type=Path, required=True)
    params = sub.add_parser("params", help="compose conf/ into params.yaml, as `dvc exp run -S` does")
    params.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. board=qemu_m55 +study.models.dscnn.seed=1")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.stage == "params":
            write_params(args.overrides)
            return 0
        params = load_params()
        if args.stage == "float":
            float_stage(params, args.model, args.out)
        elif args.stage == "quantize":
            quantize_stage(params, args.model, args.quant, args.out)
        elif args.stage == "compile":
            compile_stage(params, args.board, args.model, args.quant, args.out)
        else:
            bench_stage(params, args.model_file, args.binary, args.out)
    except (StageError, UsageError) as exc:
        print(f"unpu.dvc_stages {args.stage}: {exc}", file=sys.stderr)
        return 2
    except JobFailed as exc:
        print(f"unpu.dvc_stages {args.stage}: run FAILED: {exc} [MLflow run {exc.run_id}]", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
