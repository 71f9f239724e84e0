#!/usr/bin/env python
"""Count the work of one training step of each engine: operators, copies, allocations and Python calls.

The same stacks as ``scripts/benchmark_engine.py`` (identical ``f`` / ``g`` behind a learnable gain), but
counted instead of timed, so the figures are the same on a busy machine: per method, in a fresh process,
after a warm-up step, one step under ``torch.profiler`` gives the operator counts, the bytes written by
``copy_`` and ``cat`` and the allocations of at least 128 KiB (count and MiB), and one step under
``cProfile`` the number of Python function calls.

Usage:
    python scripts/profile_engine.py --shape 1 16 24 24 24 --depth 4
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import sys
import warnings
from collections import Counter

import torch
from benchmark_engine import METHODS, ChannelGain, build_stack, residual_pairs, training_step
from torch import nn

from revnets.core.memory import in_fresh_process

OPS = (
    "aten::convolution", "aten::convolution_backward", "aten::native_group_norm", "aten::cat", "aten::copy_",
    "aten::add", "aten::sub", "aten::empty", "aten::empty_like",
)
LARGE = 128 * 1024


def count(method: str, depth: int, shape: tuple[int, ...]) -> dict[str, float]:
    """Operator counts, bytes copied, large allocations (count, MiB) and Python calls of one step of ``method``."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    pairs = residual_pairs(depth, shape[1], len(shape) - 2, seed=0)
    model = nn.Sequential(ChannelGain(shape[1], len(shape) - 2), build_stack(method, pairs))
    x = torch.randn(shape, requires_grad=True)
    training_step(model, x)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True) as profiler:
        training_step(model, x)
    ops = Counter({e.key: e.count for e in profiler.key_averages()})
    result = {op: ops[op] for op in OPS}
    # copy_ writes its destination (first input); cat's inputs are not recorded, but it allocates its output
    copied = sum(math.prod(e.input_shapes[0]) * x.element_size() for e in profiler.events() if e.name == "aten::copy_")
    copied += sum(e.cpu_memory_usage for e in profiler.events() if e.name == "aten::cat")
    result["copy_ + cat MiB"] = round(copied / 2**20, 1)
    pending = list(profiler.profiler.kineto_results.experimental_event_tree())
    while pending:
        node = pending.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.alloc_size >= LARGE:
            result["large allocations"] = result.get("large allocations", 0) + 1
            result["large MiB"] = result.get("large MiB", 0) + node.extra_fields.alloc_size
        pending.extend(node.children)
    result["large MiB"] = round(result.get("large MiB", 0) / 2**20)
    calls = cProfile.Profile()
    calls.runcall(training_step, model, x)
    result["Python calls"] = pstats.Stats(calls).total_calls  # type: ignore[attr-defined]
    return result


def main(argv: list[str] | None = None) -> int:
    """Print one markdown row per method."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[1, 16, 24, 24, 24], help="B C *spatial (C even)")
    parser.add_argument("--depth", type=int, default=4, help="coupling blocks")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["revnets", "revtorch", "memcnn", "plain"])
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    rows = {m: in_fresh_process(count, m, args.depth, tuple(args.shape)) for m in args.methods}
    columns = list(next(iter(rows.values())))
    print(f"shape {'x'.join(map(str, args.shape))}, {args.depth} blocks, one step after a warm-up step")
    print("| method | " + " | ".join(c.removeprefix("aten::") for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for method, row in rows.items():
        print(f"| {method} | " + " | ".join(str(row.get(c, 0)) for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
