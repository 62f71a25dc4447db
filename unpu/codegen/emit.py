"""C text for a lowered graph: model.h, model.c and a JSON report.

Emitted API (model.h):

    #define MODEL_ARENA_SIZE    bytes of the one RAM arena (activations, model input and output)
    #define MODEL_INPUT_SIZE    bytes of the input tensor   (MODEL_INPUT_ELEMENTS elements)
    #define MODEL_OUTPUT_SIZE   bytes of the output tensor  (MODEL_OUTPUT_ELEMENTS elements)
    #define MODEL_INPUT_IS_FLOAT / MODEL_OUTPUT_IS_FLOAT   0 for int8 tensors, 1 for float32
    #define MODEL_INPUT_SCALE, MODEL_INPUT_ZERO_POINT, MODEL_OUTPUT_SCALE, MODEL_OUTPUT_ZERO_POINT
            quantization of the int8 input/output (for float I/O: of the int8 tensor right after
            the QUANTIZE / right before the DEQUANTIZE, for information)
    #define MODEL_WEIGHTS_SIZE  bytes of constant data in model.c (flash), MODEL_NUM_OPS
    typedef int8_t|float model_input_t, model_output_t;
    int model_run(const model_input_t *input, model_output_t *output);   copy in, invoke, copy out
    model_input_t *model_input(void);  const model_output_t *model_output(void);   in the arena
    int model_invoke(void);            runs the operators on the arena (input already there)
    extern const char *const model_op_names[MODEL_NUM_OPS];

model.c overridable macros: UNPU_ARENA_ATTR (default __attribute__((aligned(16))), e.g. add a
section for a port's linker script), UNPU_WEIGHTS_ATTR (same, for constant arrays),
UNPU_OP_BEGIN(index, name) / UNPU_OP_END(index, name) around every kernel call (profiling marks).

The parameter structs are filled from the kernel API header (firmware/kernels/unpu_kernels.h):
its struct fields are read, every field must be known to the generator, and an operator whose
TFLite semantics need a field the header does not have fails at generation time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unpu.codegen.planner import Plan
from unpu.codegen.reader import Arg, CodegenError, ConstArray, Graph, Shape4

REPO = Path(__file__).resolve().parents[2]
KERNELS_DIR = REPO / "firmware" / "kernels"
HEADER = "unpu_kernels.h"

_CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t", "float32": "float",
          "uint8": "uint8_t"}
_CSIZE = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8, "float": 4, "double": 8,
          "unpu_shape4_t": 16}


@dataclass
class Sources:
    header: str
    source: str
    report: dict[str, Any]


def header_structs(header_text: str) -> dict[str, list[str]]:
    """Field names of every `typedef struct {...} name;` in the kernel header, in order."""
    text = re.sub(r"/\*.*?\*/", "", header_text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    structs: dict[str, list[str]] = {}
    for body, name in re.findall(r"typedef\s+struct\s*\w*\s*\{(.*?)\}\s*(\w+)\s*;", text, flags=re.S):
        fields: list[str] = []
        for decl in body.split(";"):
            decl = decl.strip()
            if not decl:
                continue
            # "const int32_t *multiplier" / "int32_t a, b, c" / "int32_t before[4]"
            head = re.match(r"^((?:const\s+)?[\w]+(?:\s+const)?)\s+(.*)$", decl, flags=re.S)
            if not head:
                continue
            for declarator in head.group(2).split(","):
                m = re.search(r"(\w+)\s*(\[[^\]]*\])?\s*$", declarator.strip())
                if m:
                    fields.append(m.group(1))
        structs[name] = fields
    return structs


def _fmt_float(v: float) -> str:
    v = float(np.float32(v))
    if not math.isfinite(v):
        raise CodegenError(f"non-finite constant {v}")
    s = f"{v:.9g}"
    return s + ("f" if ("." in s or "e" in s) else ".0f")


def _fmt_double(v: float) -> str:
    if not math.isfinite(v):
        raise CodegenError(f"non-finite constant {v}")
    s = repr(float(v))
    return s if ("." in s or "e" in s) else s + ".0"


def _fmt_values(ctype: str, values, per_line: int = 24) -> str:
    if ctype == "float":
        items = [_fmt_float(v) for v in values]
    elif ctype == "double":
        items = [_fmt_double(v) for v in values]
    elif ctype == "unpu_shape4_t":
        items = [_fmt_shape(v) for v in values]
        per_line = 4
    else:
        items = [str(int(v)) for v in values]
    if not items:
        items = ["0"]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "{\n    " + ",\n    ".join(lines) + "\n}"


def _fmt_shape(s: Shape4) -> str:
    return f"{{{s.n}, {s.h}, {s.w}, {s.c}}}"


class _Emitter:
    def __init__(self, graph: Graph, plan: Plan, structs: dict[str, list[str]], name: str) -> None:
        self.g, self.plan, self.structs, self.name = graph, plan, structs, name
        self.consts: list[str] = []  # C definitions of constant arrays and structs
        self.const_bytes = 0
        self.tensor_bytes = 0
        self.emitted_tensors: set[int] = set()

    # -- constants ------------------------------------------------------------------------------
    def const_array(self, cname: str, arr: ConstArray) -> str:
        n = max(len(arr.values), 1)
        self.consts.append(f"static const {arr.ctype} {cname}[{n}] UNPU_WEIGHTS_ATTR = {_fmt_values(arr.ctype, arr.values)};")
        self.const_bytes += n * _CSIZE[arr.ctype]
        return cname

    def tensor_expr(self, index: int) -> str:
        t = self.g.tensors[index]
        ctype = _CTYPE.get(t.dtype)
        if ctype is None:
            raise CodegenError(f"tensor {index} has type {t.dtype}, which the generator cannot emit")
        if t.const:
            cname = f"unpu_t{index}"
            if index not in self.emitted_tensors:
                self.emitted_tensors.add(index)
                values = t.data.reshape(-1).tolist()
                self.consts.append(f"/* tensor {index}: {t.name} {list(t.shape)} {t.dtype} */\n"
                                   f"static const {ctype} {cname}[{max(len(values), 1)}] UNPU_WEIGHTS_ATTR = "
                                   f"{_fmt_values(ctype, values)};")
                self.const_bytes += t.nbytes
                self.tensor_bytes += t.nbytes
            return cname
        offset = self.plan.offsets[index]
        return f"(({ctype} *)(unpu_arena + {offset}))"

    # -- one operator -----------------------------------------------------------------------------
    def op_lines(self, op) -> list[str]:
        label = f'{op.index}, "{op.name}"'
        if op.call is None:
            out, inp = op.alias
            return [f"    /* op {op.index} {op.name}: tensor {out} aliases tensor {inp} at offset "
                    f"{self.plan.offsets[inp]} (no code) */"]
        call = op.call
        args: list[str] = []
        pre: list[str] = []
        if call.struct is not None:
            args.append(f"&op{op.index}_params")
            self.consts.append(self.params_struct(op.index, call.struct, call.params, op))
        for arg in call.args:
            args.append(self.arg_expr(op.index, arg, pre))
        invoke = f"{call.kernel}({', '.join(args)});"
        if pre:  # local declarations (concatenation's input pointer array) need their own block
            return ([f"    UNPU_OP_BEGIN({label});", "    {"] + [f"        {d}" for d in pre] +
                    [f"        {invoke}", "    }", f"    UNPU_OP_END({label});"])
        return [f"    UNPU_OP_BEGIN({label});", f"    {invoke}", f"    UNPU_OP_END({label});"]

    def arg_expr(self, index: int, arg: Arg, pre: list[str]) -> str:
        if arg.kind == "tensor":
            return self.tensor_expr(arg.value)
        if arg.kind == "null":
            return "NULL"
        if arg.kind == "literal":
            return arg.value
        if arg.kind == "tensors":
            items = ", ".join(self.tensor_expr(i) for i in arg.value)
            pre.append(f"const int8_t *const op{index}_inputs[{len(arg.value)}] = {{{items}}};")
            return f"op{index}_inputs"
        raise CodegenError(f"unknown argument kind {arg.kind}")

    def params_struct(self, index: int, struct: str, params: dict[str, Any], op) -> str:
        fields = self.structs.get(struct)
        if fields is None:
            raise CodegenError(f"the kernel header has no struct {struct} (needed by operator {index} {op.name})")
        needs = params.get("__needs__", {})
        for key, why in needs.items():
            if key not in fields:
                raise CodegenError(f"operator {index} {op.name} {why}; the kernel library has no such variant "
                                   f"({struct} has no field '{key}')")
        inits = []
        for f in fields:
            if f not in params:
                raise CodegenError(f"the generator does not know how to fill {struct}.{f} (operator {index} {op.name})")
            inits.append(f"    .{f} = {self.value(index, f, params[f])},")
        return f"static const {struct} op{index}_params = {{\n" + "\n".join(inits) + "\n};"

    def value(self, index: int, fname: str, v: Any) -> str:
        if isinstance(v, ConstArray):
            return self.const_array(f"op{index}_{fname}", v)
        if isinstance(v, Shape4):
            return _fmt_shape(v)
        if isinstance(v, bool):
            return str(int(v))
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return _fmt_float(v)
        if isinstance(v, (list, tuple)):
            return "{" + ", ".join(str(int(x)) for x in v) + "}"
        if v is None:
            return "NULL"
        raise CodegenError(f"cannot emit value {v!r} for field {fname}")


def emit_c(graph: Graph, plan: Plan, name: str = "model", kernels_dir: Path | None = None) -> Sources:
    header_path = Path(kernels_dir or KERNELS_DIR) / HEADER
    structs = header_structs(header_path.read_text())
    em = _Emitter(graph, plan, structs, name)
    t = graph.tensors
    inp, out = t[graph.inputs[0]], t[graph.outputs[0]]
    body: list[str] = []
    for op in graph.ops:
        body.extend(em.op_lines(op))
    in_q = _io_quant(graph, inp.index, True)
    out_q = _io_quant(graph, out.index, False)
    in_ct, out_ct = _CTYPE[inp.dtype], _CTYPE[out.dtype]
    guard = "UNPU_MODEL_H"
    header = f"""/* Generated by unpu.codegen from {name}. Do not edit.
 * {len(graph.ops)} operators, arena {plan.arena_size} B, constants {em.const_bytes} B.
 * input  {inp.describe()} ({inp.name})
 * output {out.describe()} ({out.name})
 */
#ifndef {guard}
#define {guard}

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define MODEL_ARENA_SIZE {plan.arena_size}
#define MODEL_INPUT_SIZE {inp.nbytes}
#define MODEL_OUTPUT_SIZE {out.nbytes}
#define MODEL_INPUT_ELEMENTS {inp.size}
#define MODEL_OUTPUT_ELEMENTS {out.size}
#define MODEL_INPUT_IS_FLOAT {int(inp.dtype == 'float32')}
#define MODEL_OUTPUT_IS_FLOAT {int(out.dtype == 'float32')}
#define MODEL_INPUT_SCALE {_fmt_float(in_q[0])}
#define MODEL_INPUT_ZERO_POINT {in_q[1]}
#define MODEL_OUTPUT_SCALE {_fmt_float(out_q[0])}
#define MODEL_OUTPUT_ZERO_POINT {out_q[1]}
#define MODEL_WEIGHTS_SIZE {em.const_bytes}
#define MODEL_NUM_OPS {len(graph.ops)}

typedef {in_ct} model_input_t;
typedef {out_ct} model_output_t;

/* Copy the input into the arena, run every operator, copy the output out. Returns 0. */
int model_run(const model_input_t *input, model_output_t *output);
/* The input and output tensors inside the arena (for zero-copy use with model_invoke). */
model_input_t *model_input(void);
const model_output_t *model_output(void);
/* Run the operators on the arena; the input must already be in model_input(). Returns 0. */
int model_invoke(void);
/* Operator names, for profiling reports (index = UNPU_OP_BEGIN's index). */
extern const char *const model_op_names[MODEL_NUM_OPS > 0 ? MODEL_NUM_OPS : 1];

#ifdef __cplusplus
}}
#endif
#endif /* {guard} */
"""
    names = ", ".join(f'"{op.name}"' for op in graph.ops) or '""'
    source = f"""/* Generated by unpu.codegen from {name}. Do not edit. */
#include <stddef.h>
#include <string.h>

#include "model.h"
#include "unpu_kernels.h"

#ifndef UNPU_ARENA_ATTR
#define UNPU_ARENA_ATTR __attribute__((aligned(16)))
#endif
#ifndef UNPU_WEIGHTS_ATTR
#define UNPU_WEIGHTS_ATTR __attribute__((aligned(16)))
#endif
#ifndef UNPU_OP_BEGIN
#define UNPU_OP_BEGIN(index, name)
#endif
#ifndef UNPU_OP_END
#define UNPU_OP_END(index, name)
#endif

static uint8_t unpu_arena[MODEL_ARENA_SIZE > 0 ? MODEL_ARENA_SIZE : 16] UNPU_ARENA_ATTR;

const char *const model_op_names[MODEL_NUM_OPS > 0 ? MODEL_NUM_OPS : 1] = {{{names}}};

{chr(10).join(em.consts)}

model_input_t *model_input(void) {{ return (model_input_t *)(unpu_arena + {plan.offsets[inp.index]}); }}

const model_output_t *model_output(void) {{ return (const model_output_t *)(unpu_arena + {plan.offsets[out.index]}); }}

int model_invoke(void) {{
{chr(10).join(body)}
    return 0;
}}

int model_run(const model_input_t *input, model_output_t *output) {{
    int rc;
    memcpy(unpu_arena + {plan.offsets[inp.index]}, input, MODEL_INPUT_SIZE);
    rc = model_invoke();
    memcpy(output, unpu_arena + {plan.offsets[out.index]}, MODEL_OUTPUT_SIZE);
    return rc;
}}
"""
    life = {i: (b.first, b.last) for b in plan.buffers for i in b.tensors}
    report = {
        "model": name,
        "arena_bytes": plan.arena_size,
        "weights_bytes": em.const_bytes,
        "constant_tensor_bytes": em.tensor_bytes,
        "macs": sum(op.macs for op in graph.ops),
        "input": _io_report(inp, plan, in_q),
        "output": _io_report(out, plan, out_q),
        "ops": [{"index": op.index, "op": op.name, "kernel": op.call.kernel if op.call else None, "macs": op.macs,
                 "inputs": op.inputs, "outputs": op.outputs} for op in graph.ops],
        "tensors": [{"index": i, "name": t[i].name, "shape": list(t[i].shape), "dtype": t[i].dtype,
                     "offset": plan.offsets[i], "bytes": t[i].nbytes, "first_op": life[i][0], "last_op": life[i][1]}
                    for i in sorted(plan.offsets)],
    }
    return Sources(header, source, report)


def _io_quant(graph: Graph, index: int, is_input: bool) -> tuple[float, int]:
    t = graph.tensors[index]
    if t.dtype != "float32":
        return t.scale, t.zero_point
    for op in graph.ops:  # the int8 tensor after QUANTIZE / before DEQUANTIZE
        if is_input and op.name == "QUANTIZE" and op.inputs[0] == index:
            q = graph.tensors[op.outputs[0]]
            return q.scale, q.zero_point
        if not is_input and op.name == "DEQUANTIZE" and op.outputs[0] == index:
            q = graph.tensors[op.inputs[0]]
            return q.scale, q.zero_point
    return 1.0, 0


def _io_report(t, plan: Plan, q: tuple[float, int]) -> dict[str, Any]:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "bytes": t.nbytes, "offset": plan.offsets[t.index],
            "scale": q[0], "zero_point": q[1]}
