#!/usr/bin/env python
"""Benchmark the reversible engine: memory and time of one training step of a stack of couplings.

Five ways to train the same stack of additive couplings, all on identical ``f`` / ``g``
(:class:`revnets.blocks.ResidualFunction`, built from one seed in every process):

- ``revnets``: :class:`revnets.core.ReversibleSequence` with ``form="reversible"``;
- ``plain``: the same modules under ordinary autograd (``form="plain"``);
- ``checkpoint``: plain with ``torch.utils.checkpoint`` around each block (``form="checkpointed"``);
- ``memcnn``: ``memcnn.InvertibleModuleWrapper(memcnn.AdditiveCoupling(f, g))`` per block (memcnn 1.5.2);
- ``revtorch``: ``revtorch.ReversibleSequence`` of ``revtorch.ReversibleBlock(f, g)`` (RevTorch 0.2.4).

Every stack sits behind a learnable per-channel gain, so that, as inside a network, its input is an
intermediate tensor of the graph rather than a leaf.

Each (method, depth) runs in a fresh process, and the methods take turns: ``--rounds`` rounds, each running
every method once in a rotated order, so that a slow spell of a shared machine hits them alike. In its
process a configuration's first training step (forward, loss, backward) gives the peak resident memory
(:func:`revnets.core.memory.step_peak_bytes`) and the gradients; it is also the warm-up for the timed
steps; one more step gives the allocated peak (:func:`revnets.core.memory.allocated_peak_bytes`, the same in
every run) and a last forward the bytes saved for backward (:func:`revnets.core.memory.saved_bytes`).
Gradients are compared with plain autograd in float64 on the same weights and input, so the column shows
each float32 method's rounding, plain autograd's included.

Usage:
    python scripts/benchmark_engine.py                # 1x32x32x32x32, depths 4 8 16 32, 5 steps, 1 round
    python scripts/benchmark_engine.py --quick        # tiny sizes, for a demo; never writes docs
    python scripts/benchmark_engine.py --write-docs   # also update docs/BENCHMARKS.md and the plot
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import import_module
from itertools import chain
from pathlib import Path
from types import ModuleType

import torch
from benchmark_docs import MALLOC_ENV, cpu_name, logical_cores, track_live_tensors, write_section
from torch import Tensor, nn
from tqdm import tqdm

from revnets.blocks import ResidualFunction
from revnets.core import AdditiveCoupling, Form, ReversibleSequence
from revnets.core.memory import allocated_peak_bytes, in_fresh_process, saved_bytes, step_peak_bytes

METHODS = ("revnets", "plain", "checkpoint", "memcnn", "revtorch")
REFERENCE = "plain"
MARKERS = {"revnets": "o", "plain": "s", "checkpoint": "^", "memcnn": "D", "revtorch": "v"}
# memcnn and RevTorch keep their tensors as attributes of the autograd context, which
# saved_tensors_hooks cannot see: saved_bytes would read 0 for them.
HOOK_VISIBLE = ("revnets", "plain", "checkpoint")
EXTERNAL_PACKAGES = {"memcnn": "memcnn==1.5.2", "revtorch": "revtorch==0.2.4"}
REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "BENCHMARKS.md"
FIGURE = REPO_ROOT / "docs" / "figures" / "engine_memory_time.png"
HEADING = "## Engine: coupling stacks"
MIB = 2**20
# Peak memories this close count as equal: the resident set moves by pages and small heap allocations.
MEMORY_TIE = 0.01


@dataclass(frozen=True)
class Config:
    """One measurement: a method, a stack depth and everything else fixed across methods."""

    method: str
    depth: int
    shape: tuple[int, ...]
    device: str
    threads: int
    repeats: int
    seed: int
    dtype: str = "float32"


@dataclass
class Measurement:
    """What one configuration gave; ``failure`` is set (and the figures are None) when it did not run."""

    method: str
    depth: int
    saved_bytes: int | None = None
    allocated_bytes: int | None = None
    peak_bytes: int | None = None
    step_seconds: float | None = None
    grad_error: float | None = None
    failure: str | None = None
    steps: int = 0


def import_external(name: str) -> ModuleType:
    """Import memcnn or revtorch without memcnn's FutureWarning about ``torch.cuda.amp.custom_fwd``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return import_module(name)


def unavailable_methods(methods: list[str]) -> dict[str, str]:
    """The external methods among ``methods`` that cannot be imported, with the reason."""
    reasons = {}
    for method in methods:
        if method not in EXTERNAL_PACKAGES:
            continue
        try:
            import_external(method)
        except Exception as error:  # any import failure means the comparison is skipped, not the run
            reasons[method] = f"{EXTERNAL_PACKAGES[method]} does not import ({type(error).__name__}: {error})"
    return reasons


def residual_pairs(depth: int, channels: int, spatial_dims: int, seed: int) -> list[tuple[nn.Module, nn.Module]]:
    """``depth`` pairs ``(f, g)`` of ``ResidualFunction`` on ``channels // 2`` channels, the same for one seed."""
    torch.manual_seed(seed)
    half = channels // 2
    return [
        (ResidualFunction(spatial_dims, half, norm="group"), ResidualFunction(spatial_dims, half, norm="group"))
        for _ in range(depth)
    ]


class ChannelGain(nn.Module):
    """``x * gain`` with one learnable gain per channel: ``(B, C, *spatial) -> (B, C, *spatial)``.

    Args:
        channels: ``C``.
        spatial_dims: number of spatial axes.
    """

    def __init__(self, channels: int, spatial_dims: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, channels, *([1] * spatial_dims)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gain


def build_stack(method: str, pairs: list[tuple[nn.Module, nn.Module]]) -> nn.Module:
    """The stack of couplings over ``pairs`` as ``method`` trains it.

    memcnn's wrapper frees the storage of each block's input after the forward (``keep_input=False``,
    its default) and rebuilds it in backward.
    """
    if method in ("revnets", "plain", "checkpoint"):
        blocks = [AdditiveCoupling(f, g) for f, g in pairs]
        form = {"revnets": Form.REVERSIBLE, "plain": Form.PLAIN, "checkpoint": Form.CHECKPOINTED}[method]
        return ReversibleSequence(*blocks, form=form)
    if method == "memcnn":
        memcnn = import_external("memcnn")
        return nn.Sequential(
            *(
                memcnn.InvertibleModuleWrapper(memcnn.AdditiveCoupling(f, g), keep_input=False)
                for f, g in pairs
            )
        )
    if method == "revtorch":
        revtorch = import_external("revtorch")
        return revtorch.ReversibleSequence(nn.ModuleList(revtorch.ReversibleBlock(f, g) for f, g in pairs))
    raise ValueError(f"method must be one of {METHODS}, got {method!r}.")


def training_step(model: nn.Module, x: Tensor) -> None:
    """Forward, mean-square loss, ``loss.backward()``: gradients land in ``.grad`` for every method.

    ``.backward()`` rather than ``torch.autograd.grad``: memcnn refuses the latter and RevTorch
    accumulates parameter gradients only as a side effect of nested ``.backward()`` calls.
    """
    model.zero_grad(set_to_none=True)
    x.grad = None
    model(x).square().mean().backward()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock times cover the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(config: Config) -> dict[str, object]:
    """Peak memories, gradients, step times and saved bytes of one configuration (run in a fresh process)."""
    torch.set_num_threads(config.threads)
    warnings.filterwarnings("ignore", message="TypedStorage is deprecated")  # memcnn frees inputs through .storage()
    device = torch.device(config.device)
    dtype = getattr(torch, config.dtype)
    pairs = residual_pairs(config.depth, config.shape[1], len(config.shape) - 2, config.seed)
    stem = ChannelGain(config.shape[1], len(config.shape) - 2)
    model = nn.Sequential(stem, build_stack(config.method, pairs)).to(device, dtype)
    x = torch.randn(config.shape, generator=torch.Generator().manual_seed(config.seed)).to(device, dtype)
    x.requires_grad_(True)

    peak = step_peak_bytes(lambda: training_step(model, x), device)
    params = chain(stem.parameters(), *(chain(f.parameters(), g.parameters()) for f, g in pairs))
    # numpy arrays travel back by value; tensors would be shared through file descriptors of this process
    grads = [t.grad.detach().cpu().double().numpy().copy() for t in (x, *params)]

    seconds = []
    for _ in range(config.repeats):
        synchronize(device)
        start = time.perf_counter()
        training_step(model, x)
        synchronize(device)
        seconds.append(time.perf_counter() - start)

    if config.dtype == "float64":  # the gradient reference: nothing else is measured
        return {"peak": peak, "allocated": None, "seconds": seconds, "saved": None, "grads": grads}
    allocated = allocated_peak_bytes(lambda: training_step(model, x)) if device.type == "cpu" else None
    saved = saved_bytes(model, x) if config.method in HOOK_VISIBLE else None
    return {"peak": peak, "allocated": allocated, "seconds": seconds, "saved": saved, "grads": grads}


def relative_error(a: list[Tensor], b: list[Tensor]) -> float:
    """Largest over the tensors of ``max|a - b| / max|b|``."""
    return max(((u - v).abs().max() / v.abs().max().clamp_min(1e-30)).item() for u, v in zip(a, b))


def run_configs(configs: list[Config], timeout: float) -> list[Measurement]:
    """Measure each configuration in its own process; one Measurement per (method, depth) over all rounds.

    Gradients are compared with the float64 configuration of the same depth, which must come first. Peaks
    and step times are medians over the rounds' processes and steps.
    """
    track_live_tensors()
    reference: dict[int, list[Tensor]] = {}
    results: dict[tuple[str, int], list[dict[str, object]]] = {}
    failures: dict[tuple[str, int], str] = {}
    progress = tqdm(configs, desc="configurations", unit="config")
    for config in progress:
        progress.set_postfix(method=config.method, depth=config.depth, dtype=config.dtype)
        key = (config.method, config.depth)
        try:
            result = in_fresh_process(measure, config, timeout=timeout)
        except (RuntimeError, TimeoutError) as error:
            if config.dtype == "float32":
                failures.setdefault(key, str(error))
            continue
        grads = [torch.from_numpy(g) for g in result["grads"]]
        if config.dtype == "float64":
            reference[config.depth] = grads
            continue
        result["grad_error"] = relative_error(grads, reference[config.depth]) if config.depth in reference else None
        results.setdefault(key, []).append(result)
    measurements = []
    for method, depth in dict.fromkeys((c.method, c.depth) for c in configs if c.dtype == "float32"):
        runs = results.get((method, depth))
        if not runs:
            measurements.append(Measurement(method, depth, failure=failures.get((method, depth), "no result")))
            continue
        seconds = [s for run in runs for s in run["seconds"]]
        measurements.append(Measurement(
            method, depth, runs[0]["saved"], runs[0]["allocated"],
            int(statistics.median(run["peak"] for run in runs)),
            statistics.median(seconds) if seconds else None, runs[0]["grad_error"], steps=len(seconds),
        ))
    return measurements


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MIB:,.0f}"


def markdown_table(measurements: list[Measurement]) -> str:
    """One row per (depth, method), with the time relative to plain autograd and to RevTorch at that depth."""
    def times(method: str) -> dict[int, float]:
        return {m.depth: m.step_seconds for m in measurements if m.method == method and m.step_seconds}

    plain_time, revtorch_time = times(REFERENCE), times("revtorch")
    lines = [
        "| depth | method | saved for backward (MiB) | allocated peak (MiB) | peak resident (MiB) | step time (s) "
        "| time / plain | time / RevTorch | max rel. grad error vs float64 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measurements:
        if m.failure is not None:
            lines.append(f"| {m.depth} | {m.method} | failed: {m.failure} | | | | | | |")
            continue

        def ratio(base: dict[int, float], m: Measurement = m) -> str:
            return f"{m.step_seconds / base[m.depth]:.2f}" if m.step_seconds and m.depth in base else "n/a"

        time_text = "n/a" if m.step_seconds is None else f"{m.step_seconds:.2f}"
        error = "n/a" if m.grad_error is None else f"{m.grad_error:.1e}"
        lines.append(
            f"| {m.depth} | {m.method} | {_mib(m.saved_bytes)} | {_mib(m.allocated_bytes)} | {_mib(m.peak_bytes)} "
            f"| {time_text} | {ratio(plain_time)} | {ratio(revtorch_time)} | {error} |"
        )
    return "\n".join(lines)


def _by_depth(measurements: list[Measurement], method: str) -> dict[int, Measurement]:
    return {m.depth: m for m in measurements if m.method == method and m.failure is None}


def _worst_ratio(ours: dict[int, Measurement], theirs: dict[int, Measurement], field: str) -> tuple[float, int] | None:
    """The largest ``ours / theirs`` of ``field`` over the depths both have, and its depth."""
    ratios = [
        (getattr(ours[d], field) / getattr(theirs[d], field), d)
        for d in sorted(ours.keys() & theirs.keys())
        if getattr(ours[d], field) and getattr(theirs[d], field)
    ]
    return max(ratios) if ratios else None


def target_checks(measurements: list[Measurement], shared: bool = False) -> list[str]:
    """The project's targets for the engine, each as 'met' / 'MISSED' / 'not measured' with its figures."""
    ours = _by_depth(measurements, "revnets")
    if not ours:
        return ["- revnets was not measured: no target can be checked."]
    depths = sorted(ours)
    checks = []
    growth = ours[depths[-1]].peak_bytes / ours[depths[0]].peak_bytes
    saved = {ours[d].saved_bytes for d in depths}
    flat = growth <= 1.10 and len(saved) == 1
    checks.append(
        f"- Memory flat in depth (peak grows <= 10 % from {depths[0]} to {depths[-1]} blocks, saved bytes constant): "
        f"{'met' if flat else 'MISSED'}: peak x{growth:.2f}, saved {', '.join(_mib(s) for s in sorted(saved))} MiB."
    )
    timing = " (shared cores, upper bound)" if shared else ""
    rules = [
        (f"Step time <= 1.3x plain autograd{timing}", "plain", "step_seconds", 1.3),
        (f"Step time <= 1.05x RevTorch{timing}", "revtorch", "step_seconds", 1.05),
        (f"Step time no worse than memcnn{timing}", "memcnn", "step_seconds", 1.0),
        ("Less peak resident memory than checkpointing", "checkpoint", "peak_bytes", 1.0),
        ("Peak resident memory no worse than memcnn", "memcnn", "peak_bytes", 1.0),
        ("Peak resident memory no worse than RevTorch", "revtorch", "peak_bytes", 1.0),
        ("Allocated peak no worse than memcnn", "memcnn", "allocated_bytes", 1.0),
        ("Allocated peak no worse than RevTorch", "revtorch", "allocated_bytes", 1.0),
    ]
    for name, other, field, bound in rules:
        worst = _worst_ratio(ours, _by_depth(measurements, other), field)
        if worst is None:
            checks.append(f"- {name}: not measured.")
            continue
        ratio, depth = worst
        verdict = "met" if (ratio < bound if other == "checkpoint" else ratio <= bound) else "MISSED"
        if field == "peak_bytes" and other != "checkpoint" and verdict == "MISSED" and ratio <= 1 + MEMORY_TIE:
            verdict = f"met (equal within {MEMORY_TIE:.0%})"
        checks.append(f"- {name}: {verdict}: worst revnets / {other} = {ratio:.3f} (at {depth} blocks).")
    return checks


def machine_description(device: str, threads: int) -> str:
    """The machine in one line: CPU, cores, torch version and threads, and the GPU when used."""
    text = f"{cpu_name()}, {logical_cores()} logical cores, torch {torch.__version__}, torch.set_num_threads({threads})"
    if device == "cuda":
        text += f", GPU {torch.cuda.get_device_name()}"
    return text


def docs_section(command: str, machine: str, args: argparse.Namespace, table: str, checks: list[str],
                 skipped: dict[str, str]) -> str:
    """The markdown section for ``docs/BENCHMARKS.md``, from its heading to its last line."""
    shape = "x".join(map(str, args.shape))
    where = "GPU memory (`torch.cuda.max_memory_allocated`)" if args.device == "cuda" else (
        "process peak resident set (`VmHWM`) over the resident set before the step, one fresh process per row, "
        f"run with `{' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}` so that every allocation of 128 KiB "
        "or more is returned to the system when freed and the resident set follows the live tensors"
    )
    threads = f"torch.set_num_threads({args.threads}) in each process" + (
        f" on {logical_cores()} cores shared with other jobs: a second OpenMP thread waits at every barrier for a "
        "descheduled peer, which made steps slower than one thread"
        if args.device == "cpu" and args.threads < logical_cores() and args.shared
        else ""
    )
    skipped_lines = [f"- {method} skipped: {reason}" for method, reason in skipped.items()]
    return "\n".join([
        HEADING,
        "",
        f"Training one step (forward, mean-square loss, backward) of a stack of `AdditiveCoupling` blocks on a "
        f"{shape} float32 input on {args.device}; `f` and `g` are `ResidualFunction(norm=\"group\")`, identical "
        f"weights for every method (built from seed {args.seed} in each process; the gradient column confirms it).",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine}",
        f"- Peak resident memory: {where}; median over the rounds; it includes the parameter gradients and the "
        "input gradient.",
        "- Allocated peak: `revnets.core.memory.allocated_peak_bytes` of one step (the profiler's allocation and "
        "free events: every tensor and workspace with its exact size, touched or not; the same in every run).",
        f"- Step time: median of {args.repeats} steps per process over {args.rounds} round(s) after a warm-up step "
        f"(the one whose peak is measured), {threads}. Methods take turns in each round, each in a fresh process."
        + (" **Shared cores, upper bound**: other jobs ran on the cores at the same time." if args.shared else ""),
        "- Gradient error: the largest `max|g - g64| / max|g64|` over the input gradient, the gain and every "
        "parameter, against plain autograd in float64 on the same weights and input: plain float32 shows the "
        "rounding any float32 method has.",
        "- Saved for backward: `revnets.core.memory.saved_bytes` of the forward. memcnn and RevTorch keep their "
        "tensors as attributes of the autograd context, which `saved_tensors_hooks` cannot see (n/a); their peak "
        "column shows what they hold.",
        "- Every stack sits behind a learnable per-channel gain, so that its input is an intermediate tensor "
        "of the graph as in a network. (With a leaf input that requires grad, memcnn 1.5.2 returns twice the "
        "input gradient: its backward sets `.grad` on the input and also returns the gradient, which autograd "
        "accumulates; parameter gradients are right.)",
        "- memcnn: `InvertibleModuleWrapper(memcnn.AdditiveCoupling(f, g), keep_input=False)` per block; in "
        "backward it inverts each block and then recomputes its forward under autograd. RevTorch: "
        "`ReversibleSequence([ReversibleBlock(f, g), ...])`; it sets parameter gradients as a side effect of "
        "nested `.backward()` calls, so every method is driven by `loss.backward()` and compared on `.grad` "
        "(input gradient, gain and every parameter of `f` and `g`).",
        *skipped_lines,
        "",
        table,
        "",
        f"Targets for `revnets` (worst ratio over the depths; peak memories within {MEMORY_TIE:.0%} count as equal):",
        "",
        *checks,
        "",
        f"![peak memory and step time against depth](figures/{FIGURE.name})",
        "",
    ])


def plot(measurements: list[Measurement], path: Path, title: str) -> None:
    """Peak memory and step time against depth, one line per method, on log axes (ratios are offsets), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    figure, (memory_axis, time_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in METHODS:
        rows = sorted(_by_depth(measurements, method).items())
        if not rows:
            continue
        depths = [d for d, _ in rows]
        style = {"linewidth": 2.8, "zorder": 3} if method == "revnets" else {"linewidth": 1.5}
        style.update(marker=MARKERS[method], label=method)
        memory_axis.plot(depths, [m.peak_bytes / 2**30 for _, m in rows], **style)
        time_axis.plot(depths, [m.step_seconds for _, m in rows], **style)
    all_depths = sorted({m.depth for m in measurements})
    for axis, label in ((memory_axis, "peak memory of one step (GiB)"), (time_axis, "step time (s, median)")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(all_depths, [str(d) for d in all_depths])
        axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("coupling blocks")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    memory_axis.legend()
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line, with ``--quick`` expanded into its sizes; exits with a one-line reason on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[1, 32, 32, 32, 32],
                        help="input shape B C *spatial (C even; 2 or 3 spatial sizes)")
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16, 32], help="coupling blocks per stack")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=5, help="timed steps after the warm-up step, per process")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds in which every method runs once in its own process, in rotated order")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the float64 gradient reference (and the gradient column)")
    parser.add_argument("--shared", action="store_true",
                        help="say in the docs that other jobs shared the machine (timings are upper bounds)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch.set_num_threads in every process; 1 where other jobs share the cores, whose "
                             "OpenMP barriers otherwise wait for descheduled threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per configuration")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (1x8x16x16x16, depths 2 4, 1 timed step) for a demo")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS.relative_to(REPO_ROOT)} and the plot")
    args = parser.parse_args(argv)
    if args.quick and args.write_docs:
        parser.error("--quick is a demo and never writes docs; drop --write-docs.")
    if args.quick:
        args.shape, args.depths, args.repeats = [1, 8, 16, 16, 16], [2, 4], 1
    if len(args.shape) not in (4, 5) or args.shape[1] % 2:
        parser.error(f"--shape must be B C plus 2 or 3 spatial sizes with C even, got {args.shape}.")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was given but torch sees no CUDA device.")
    return args


def configurations(args: argparse.Namespace, methods: list[str]) -> list[Config]:
    """Per depth: the float64 reference, then ``args.rounds`` rounds of every method, rotated each round."""
    def config(method: str, depth: int, **changes: object) -> Config:
        fields = dict(shape=tuple(args.shape), device=args.device, threads=args.threads, repeats=args.repeats,
                      seed=args.seed) | changes
        return Config(method, depth, **fields)

    configs = []
    for depth in args.depths:
        if not args.no_reference:
            configs.append(config(REFERENCE, depth, dtype="float64", repeats=0))
        for round_index in range(args.rounds):
            shift = round_index % len(methods)
            configs.extend(config(method, depth) for method in methods[shift:] + methods[:shift])
    return configs


def main(argv: list[str] | None = None) -> int:
    """Measure every configuration, print the table and the targets, and write the docs if asked."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    skipped = unavailable_methods(args.methods)
    for method, reason in skipped.items():
        print(f"skipping {method}: {reason}", file=sys.stderr)
    methods = [m for m in args.methods if m not in skipped]
    machine = machine_description(args.device, args.threads)
    print(f"machine: {machine}")

    measurements = run_configs(configurations(args, methods), args.timeout)
    table = markdown_table(measurements)
    checks = target_checks(measurements, args.shared)
    print(table, "", *checks, sep="\n")

    if args.write_docs:
        command = shlex.join(["python", "scripts/benchmark_engine.py", *argv])
        write_section(DOCS, HEADING, docs_section(command, machine, args, table, checks, skipped))
        shape = "x".join(map(str, args.shape))
        plot(measurements, FIGURE, f"Coupling stacks, input {shape}, {args.device}\n{machine}")
        print(f"wrote {DOCS} and {FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
