"""The code generator against LiteRT and TFLite Micro, for every zoo model (issue 3's table).

    .venv/bin/python bench/codegen_table.py [--models a,b] [--quants int8,int8_per_tensor]
                                             [--inputs 20] [--cache .unpu_cache] [--out FILE.md]

For each model × quantization: the quantized model (through the same cached pipeline stage as
`python -m unpu`), generated C built natively and compared with LiteRT BUILTIN_REF on N seeded
random inputs, our static arena vs the minimum TFLM arena (bisection, as the host board does),
the constant data (weights, biases, multipliers) and the host-compiled .text of model.c.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ZOO = "simplenet,resnet,nas,autoencoder,yolov1,mobilenet,dscnn,resnet8,ad_fc"


def quantized(model: str, quant: str, cache_dir: Path):
    from hydra import compose, initialize_config_dir

    from unpu.cache import Cache
    from unpu.steps import quantized_model

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("config", overrides=[f"model={model}", f"quant={quant}", f"cache.dir={cache_dir}"])
    return quantized_model(cfg, Cache(cache_dir))


def row(model: str, quant: str, cache_dir: Path, inputs: int) -> str:
    from unpu.boards.host import min_arena
    from unpu.codegen.verify import verify

    q = quantized(model, quant, cache_dir)
    data = q.path.read_bytes()
    result = verify(data, n_inputs=inputs)
    tflm = min_arena(q.path, 16 * len(data) + (1 << 20)).hi
    diff = int(result.max_abs_diff) if result.max_abs_diff.is_integer() else result.max_abs_diff
    return (f"| {model} | {quant} | {diff} | {result.arena_bytes:,} | {tflm:,} | {result.arena_bytes / tflm:.2f} "
            f"| {result.weights_bytes:,} | {result.code_bytes:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=ZOO)
    parser.add_argument("--quants", default="int8,int8_per_tensor")
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=REPO / ".unpu_cache")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [f"inputs per model: {args.inputs} (seeded random, full int8 range); reference: LiteRT BUILTIN_REF",
             "", "| model | quant | max abs diff (LSB) | our arena B | TFLM arena B | ratio | constants B | model.c .text B |",
             "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for model in args.models.split(","):
        for quant in args.quants.split(","):
            lines.append(row(model, quant, args.cache.resolve(), args.inputs))
            print(lines[-1], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
