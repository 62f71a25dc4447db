"""How much a warm cache saves: the nine-model host sweep, cold then warm.

    .venv/bin/python bench/cached_sweep.py [--models simplenet,resnet,...] [--out bench/results/cached_sweep.json]

Runs `python -m unpu -m model=...` twice in a fresh directory with a fresh cache and reports the
wall time of each run, the speed-up, and how many conversions each run performed (counted from
its log). The first run converts every model with TensorFlow; the second must convert none.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ZOO = "simplenet,resnet,nas,autoencoder,yolov1,mobilenet,dscnn,resnet8,ad_fc"


def sweep(cwd: Path, models: str, cache: Path) -> dict:
    env = {**os.environ, "UNPU_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "unpu", "-m", f"model={models}", "bench.windows=3",
                          "bench.iterations=5"], cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - t0
    log = out.stdout + out.stderr
    if out.returncode != 0:
        raise SystemExit(f"sweep failed (exit {out.returncode}):\n{log[-3000:]}")
    return {"seconds": round(seconds, 2), "conversions": log.count("(TensorFlow)"),
            "quantized_cache_hits": log.count("cache hit: quantized")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=ZOO)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unpu-bench-") as tmp:
        cwd = Path(tmp)
        cold = sweep(cwd, args.models, cwd / "cache")
        warm = sweep(cwd, args.models, cwd / "cache")
    result = {"models": args.models.split(","), "cold": cold, "warm": warm,
              "speedup": round(cold["seconds"] / warm["seconds"], 2)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
