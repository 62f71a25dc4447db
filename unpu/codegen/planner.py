"""Static memory plan: every activation tensor gets an offset in one arena.

Lifetime of a tensor = [first op that writes it, last op that reads it] (the model input starts
at op 0, the model output lives until the end). RESHAPE outputs alias their input (same bytes,
no copy): the two share one buffer whose lifetime is the union. Buffers are then placed
greedy-by-size, first-fit (like TFLite Micro's GreedyMemoryPlanner): largest first, each at the
lowest 16-byte aligned offset that does not overlap a placed buffer whose lifetime intersects.
An operator's inputs and outputs are live at the same step, so no kernel writes over its input.

The model input and output live in the arena too; `model_run` copies them in and out, and
`model_input()`/`model_output()` expose them for zero-copy use. Constant tensors are never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unpu.codegen.reader import Graph

ALIGN = 16


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class Buffer:
    tensors: list[int]  # tensors sharing this buffer (a RESHAPE chain)
    size: int
    first: int
    last: int
    offset: int = -1


@dataclass
class Plan:
    arena_size: int
    offsets: dict[int, int]  # tensor index -> byte offset in the arena
    buffers: list[Buffer] = field(default_factory=list)

    def overlaps(self) -> list[tuple[int, int]]:
        """Pairs of buffers that overlap in both time and space (must be empty)."""
        bad = []
        for i, a in enumerate(self.buffers):
            for b in self.buffers[i + 1:]:
                if a.first <= b.last and b.first <= a.last and \
                        a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                    bad.append((a.tensors[0], b.tensors[0]))
        return bad


def lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    """tensor -> (first op index, last op index); inputs start at 0, outputs end at the last op."""
    n = len(graph.ops)
    first: dict[int, int] = {i: 0 for i in graph.inputs}
    last: dict[int, int] = {i: max(n - 1, 0) for i in graph.outputs}
    for op in graph.ops:
        for i in op.outputs:
            first.setdefault(i, op.index)
            last[i] = max(last.get(i, op.index), op.index)
        for i in op.inputs:
            if i >= 0 and not graph.tensors[i].const:
                first.setdefault(i, 0)
                last[i] = max(last.get(i, op.index), op.index)
    return {i: (first[i], last[i]) for i in first if not graph.tensors[i].const}


def plan_memory(graph: Graph) -> Plan:
    life = lifetimes(graph)
    # union-find over RESHAPE aliases
    parent = {i: i for i in life}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for op in graph.ops:
        if op.alias is not None:
            out, inp = op.alias
            parent[root(out)] = root(inp)
    groups: dict[int, list[int]] = {}
    for i in sorted(life):
        groups.setdefault(root(i), []).append(i)
    buffers = []
    for members in groups.values():
        size = max(graph.tensors[i].nbytes for i in members)
        buffers.append(Buffer(members, _align(size), min(life[i][0] for i in members), max(life[i][1] for i in members)))
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, b.tensors[0])):
        live = sorted((p for p in placed if p.first <= buf.last and buf.first <= p.last), key=lambda p: p.offset)
        offset = 0
        for p in live:
            if offset + buf.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        buf.offset = offset
        placed.append(buf)
    arena = max((b.offset + b.size for b in buffers), default=0)
    offsets = {i: b.offset for b in buffers for i in b.tensors}
    return Plan(_align(arena), offsets, buffers)
