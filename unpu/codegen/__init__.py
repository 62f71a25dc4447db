"""Ahead-of-time code generator: int8 TFLite -> static C calling firmware/kernels (issue 3).

    read_model(bytes)  -> Graph     (reader.py: flatbuffer through the LiteRT schema, type checks,
                                     every derived quantization parameter computed as TFLite does)
    plan_memory(graph) -> Plan      (planner.py: tensor lifetimes -> offsets in one arena)
    emit_c(graph, plan) -> Sources  (emit.py: model.h / model.c text + JSON report)
    generate(bytes, out_dir)        writes model.h, model.c and model.json
    verify(path, n)                 (verify.py: host gcc build, compared with LiteRT BUILTIN_REF)

No TensorFlow import anywhere in this package.
"""

from __future__ import annotations

import json
from pathlib import Path

from unpu.codegen.emit import emit_c
from unpu.codegen.planner import plan_memory
from unpu.codegen.reader import CodegenError, Graph, read_model

__all__ = ["CodegenError", "Graph", "read_model", "generate", "generate_sources"]


def generate_sources(data: bytes, name: str = "model"):
    """(Sources, Graph, Plan) for a .tflite model's bytes; CodegenError if it cannot be generated."""
    graph = read_model(data)
    plan = plan_memory(graph)
    return emit_c(graph, plan, name=name), graph, plan


def generate(data: bytes, out_dir: Path, name: str = "model") -> dict:
    """Write model.h, model.c and model.json into out_dir; returns the JSON report."""
    sources, _, _ = generate_sources(data, name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.h").write_text(sources.header)
    (out_dir / "model.c").write_text(sources.source)
    (out_dir / "model.json").write_text(json.dumps(sources.report, indent=1) + "\n")
    return sources.report
