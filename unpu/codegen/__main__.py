"""python -m unpu.codegen MODEL.tflite OUT_DIR          write model.h, model.c, model.json
python -m unpu.codegen --verify MODEL.tflite [--inputs N]   build natively, compare with LiteRT

Exit status: 0 ok, 1 output mismatch (or build failure), 2 the model cannot be generated
(CodegenError, printed as one line)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unpu.codegen import CodegenError, generate
from unpu.codegen.verify import BuildError, verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unpu.codegen", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="quantized .tflite")
    parser.add_argument("out_dir", type=Path, nargs="?", help="output directory (not with --verify)")
    parser.add_argument("--verify", action="store_true", help="build natively and compare with LiteRT BUILTIN_REF")
    parser.add_argument("--inputs", type=int, default=20, help="random inputs for --verify (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        data = args.model.read_bytes()
    except OSError as exc:
        print(f"{args.model}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        if args.verify:
            try:
                result = verify(data, n_inputs=args.inputs, seed=args.seed)
            except BuildError as exc:
                print(f"{args.model.name}: build failed: {exc}", file=sys.stderr)
                return 1
            print(f"{args.model.name}: {result.summary()}")
            return 0 if result.ok else 1
        if args.out_dir is None:
            parser.error("OUT_DIR is required without --verify")
        report = generate(data, args.out_dir, name=args.model.stem)
        print(f"{args.model.name}: wrote {args.out_dir}/model.c, model.h, model.json; {len(report['ops'])} ops, "
              f"arena {report['arena_bytes']} B, weights {report['weights_bytes']} B")
        return 0
    except CodegenError as exc:
        print(f"{args.model.name}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
