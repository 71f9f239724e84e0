#!/usr/bin/env python
"""Benchmark the segmentation networks: memory and time of one training step, and what fits in a budget.

For each network (``InvResUNet``, ``RevMBConvUNet``) in each form (``reversible`` = memory-saving
backward, InvRes also ``full`` = fully invertible resampling, ``plain`` = the twin under ordinary autograd,
``checkpointed`` = ``torch.utils.checkpoint`` per coupling) at its default configuration:

1. a training step (forward, cross-entropy over 3 classes, backward) on a ``1 x 4 x S^3`` input for every
   cube size ``S`` of ``--sizes``: bytes saved for backward, peak memory and time;
2. for a memory budget (``--budget-mib``, default the peak of each network's plain twin at
   ``--budget-size``), the largest cube (a multiple of 16), the most couplings per level and the widest
   channel multiplier (steps of 0.5) each form can train within it.

Every measured step runs in a fresh process (:func:`revnets.core.memory.in_fresh_process`): one warm-up
step (which pays for oneDNN's kernel creation and the first heap growth), ``malloc_trim``, then the
measured step (:func:`revnets.core.memory.step_peak_bytes`). Probes of the budget search are stopped as soon
as the resident set passes the budget.

Usage:
    python scripts/benchmark_models.py                       # sizes 64 96 128, budget = plain at 96^3
    python scripts/benchmark_models.py --sizes 32 48 64 --budget-size 48 --write-docs
"""

from __future__ import annotations

import argparse
import ctypes
import inspect
import os
import pickle
import platform
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from benchmark_docs import MALLOC_ENV, cpu_name, logical_cores, track_live_tensors, write_section

from revnets.core import Form
from revnets.core.memory import in_fresh_process, saved_bytes, step_peak_bytes
from revnets.models.catalog import MODELS, build, forms_of

NETS = ("invres", "revmbconv")
FORMS = {
    net: {
        **{form.value: {"name": net, "form": form} for form in forms_of(net)},
        **({"full": {"name": "invres-full", "form": Form.REVERSIBLE}} if net == "invres" else {}),
    }
    for net in NETS
}
"""Each network's columns: its three forms, and for InvRes also the fully invertible variant (catalog names)."""
REFERENCE = "plain"
IN_CHANNELS, OUT_CHANNELS = 4, 3
BASE_WIDTH = 16  # channels of the finest level at multiplier 1; each level doubles it
CUBE_STEP = 16
WIDTH_STEP = 0.5
OVER_BUDGET = 77  # exit code of a probe stopped by its watchdog
REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "BENCHMARKS.md"
FIGURE = REPO_ROOT / "docs" / "figures" / "models_memory.png"
HEADING = "## Models: InvRes and RevMBConv U-Nets"
MIB = 2**20


@dataclass(frozen=True)
class Config:
    """One training step to measure: a network, a form, a cube size, a width multiplier and a depth."""

    net: str
    form: str
    size: int
    width: float = 1.0
    blocks: int | None = None  # None: the network's default

    @property
    def depth(self) -> int:
        """Couplings per level: ``blocks`` or the network's default."""
        return self.blocks or inspect.signature(MODELS[self.net]).parameters["blocks"].default

    def build(self) -> torch.nn.Module:
        channels = tuple(int(BASE_WIDTH * self.width) * 2**level for level in range(4))
        depth = {} if self.blocks is None else {"blocks": self.blocks}
        column = FORMS[self.net][self.form]
        return build(column["name"], column["form"], 3, IN_CHANNELS, OUT_CHANNELS, channels=channels, **depth)


@dataclass(frozen=True)
class Measurement:
    config: Config
    peak: int | None  # bytes; None when stopped above the limit
    seconds: float | None = None
    saved: int | None = None


def _resident_bytes() -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) * 1024


class Watchdog:
    """Ends the process with exit code ``OVER_BUDGET`` once its resident set grows more than ``limit`` bytes
    past the baseline: a probe that cannot fit stops early instead of finishing its step."""

    def __init__(self) -> None:
        self.limit: int | None = None
        self.baseline = _resident_bytes()
        threading.Thread(target=self._watch, daemon=True).start()

    def watch(self, limit: int | None) -> None:
        """From now on, allow ``limit`` bytes (None: any amount) over the current resident set."""
        self.baseline = _resident_bytes()
        self.limit = limit

    def _watch(self) -> None:
        while True:
            limit = self.limit  # one read: watch() may set it to None between a check and its use
            if limit is not None and _resident_bytes() - self.baseline > limit:
                os._exit(OVER_BUDGET)
            time.sleep(0.005)


def measure(config: Config, threads: int, limit: int | None, with_saved: bool) -> Measurement:
    """Warm-up step, then the measured step (peak and time) and optionally the bytes saved for backward.

    Runs inside a fresh process. ``limit`` bounds the measured step's peak; the warm-up step, which also
    creates kernels and grows the heap, may take a quarter (at least 128 MiB) more. Past either the process
    ends (exit code ``OVER_BUDGET``).
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = config.build()
    x = torch.randn(1, IN_CHANNELS, *[config.size] * 3)
    target = torch.randint(0, OUT_CHANNELS, (1, *[config.size] * 3))
    peak, seconds, saved = measure_step(model, x, target, limit, with_saved)
    return Measurement(config, peak, seconds, saved)


def measure_step(
    model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, limit: int | None, with_saved: bool
) -> tuple[int, float, int | None]:
    """Peak bytes and seconds of one cross-entropy training step of ``model`` after a warm-up step, and
    optionally the bytes saved for backward; past ``limit`` (a quarter more for the warm-up) the process ends
    with ``OVER_BUDGET``."""

    def loss() -> torch.Tensor:
        return F.cross_entropy(model(x), target)

    def step() -> None:
        loss().backward()

    watchdog = Watchdog()
    watchdog.watch(None if limit is None else limit + max(limit // 4, 128 * MIB))
    step()
    model.zero_grad(set_to_none=True)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    watchdog.watch(limit)
    start = time.perf_counter()
    peak = step_peak_bytes(step)
    seconds = time.perf_counter() - start
    watchdog.watch(None)
    if with_saved:
        model.zero_grad(set_to_none=True)
    return peak, seconds, saved_bytes(loss) if with_saved else None


class Runner:
    """Runs configurations in fresh processes, each at most once per limit it could not meet."""

    def __init__(self, threads: int, limit: int, log: Callable[[str], None]) -> None:
        self.threads = threads
        self.limit = limit
        self.log = log
        self.done: dict[Config, tuple[Measurement, int]] = {}

    def run(self, config: Config, limit: int | None = None, with_saved: bool = False) -> Measurement:
        """Measure ``config``; ``peak`` is None if it went past ``limit`` (default: the memory limit)."""
        limit = self.limit if limit is None else min(limit, self.limit)
        if config in self.done:
            known, known_limit = self.done[config]
            if (known.peak is not None or limit <= known_limit) and (known.saved is not None or not with_saved):
                return known
        start = time.perf_counter()
        try:
            result = in_fresh_process(measure, config, self.threads, limit, with_saved)
        except RuntimeError as error:
            if f"exit code {OVER_BUDGET}" not in str(error):
                raise
            result = Measurement(config, None)
        self.done[config] = (result, limit)
        peak = f"stopped over {limit / MIB:.0f} MiB" if result.peak is None else f"peak {result.peak / MIB:.0f} MiB"
        self.log(f"{config}: {peak} ({time.perf_counter() - start:.0f} s)")
        return result


def largest_fitting(candidates: Sequence, fits: Callable[[object], bool], first: Sequence[int]) -> object | None:
    """The last candidate that ``fits``, assuming fitting is monotone (true up to some index, then false).

    Probes the indices ``first`` (a known fit, a prediction, a cap ...) where still undecided, then gallops
    up (steps 1, 2, 4, ...) while nothing is known not to fit, then bisects. None if no candidate fits.
    """
    low, high = -1, len(candidates)  # candidates[low] fits, candidates[high] does not (virtual ends)
    pending, step = list(first), 1
    while high - low > 1:
        if pending:
            index = pending.pop(0)
            if not low < index < high:
                continue
        elif high == len(candidates):
            index, step = min(low + step, high - 1), step * 2
        else:
            index = (low + high) // 2
        if fits(candidates[index]):
            low = index
        else:
            high = index
    return candidates[low] if low >= 0 else None


def _of_form(measurements: list[Measurement], net: str, form: str) -> list[Measurement]:
    return [m for m in measurements if (m.config.net, m.config.form) == (net, form)]


def predicted_cube(measurements: list[Measurement], net: str, form: str, budget: int) -> float | None:
    """The cube size whose peak a least-squares line ``peak = a + b * size**3`` through the step table's
    measurements of this form puts at the budget (None with fewer than two sizes)."""
    points = [(m.config.size**3, m.peak) for m in _of_form(measurements, net, form) if m.peak]
    if len(points) < 2:
        return None
    volumes, peaks = zip(*points)
    mean_v, mean_p = sum(volumes) / len(volumes), sum(peaks) / len(peaks)
    slope = sum((v - mean_v) * (p - mean_p) for v, p in points) / sum((v - mean_v) ** 2 for v in volumes)
    intercept = mean_p - slope * mean_v
    return max(budget - intercept, 0) ** (1 / 3) / slope ** (1 / 3) if slope > 0 else None


@dataclass(frozen=True)
class BudgetResult:
    net: str
    form: str
    budget: int
    cube: Measurement | None
    blocks: Measurement | None
    width: Measurement | None
    capped: tuple[str, ...]  # searches whose largest candidate fitted


def budget_search(
    runner: Runner, measurements: list[Measurement], net: str, form: str, budget: int, args: argparse.Namespace
) -> BudgetResult:
    """Largest cube, most blocks per level and widest multiplier of ``net`` in ``form`` within ``budget``.

    Each search first probes the budget's own configuration, then a likely boundary: the cube predicted
    from the step table, one block more and the most blocks, half a width step more and the widest.
    """
    reference = Config(net, form, args.budget_size)
    default_blocks = reference.depth

    def search(candidates: list, make: Callable[[object], Config], first: list[int]) -> Measurement | None:
        def fits(value: object) -> bool:
            peak = runner.run(make(value), limit=budget).peak
            return peak is not None and peak <= budget

        best = largest_fitting(candidates, fits, first)
        return None if best is None else runner.done[make(best)][0]

    cubes = list(range(CUBE_STEP, args.max_cube + 1, CUBE_STEP))
    blocks = list(range(1, args.max_blocks + 1))
    widths = [1 + WIDTH_STEP * i for i in range(int((args.max_width - 1) / WIDTH_STEP) + 1)]
    start = cubes.index(args.budget_size)
    guess = predicted_cube(measurements, net, form, budget)
    guess_index = max((i for i, c in enumerate(cubes) if guess and c <= guess), default=start)
    cube = search(cubes, lambda s: replace(reference, size=s), [start, guess_index, guess_index + 1])
    start = blocks.index(default_blocks)
    depth = search(
        blocks,
        lambda n: replace(reference, blocks=None if n == default_blocks else n),
        [start, start + 1, len(blocks) - 1],
    )
    width = search(widths, lambda w: replace(reference, width=w), [0, 1, len(widths) - 1])
    capped = tuple(
        name
        for name, found, last in (
            ("cube", cube and cube.config.size, cubes[-1]),
            ("blocks", depth and depth.config.depth, blocks[-1]),
            ("width", width and width.config.width, widths[-1]),
        )
        if found == last
    )
    return BudgetResult(net, form, budget, cube, depth, width, capped)


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:,.0f}"


def step_table(measurements: list[Measurement]) -> str:
    rows = [
        "| network | form | cube | saved for backward (MiB) | saved / plain | peak (MiB) | peak / plain | step (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    plain = {(m.config.net, m.config.size): m for m in measurements if m.config.form == REFERENCE}
    for m in measurements:
        ref = plain.get((m.config.net, m.config.size))

        def ratio(ours: int | None, theirs: int | None) -> str:
            return "-" if ours is None or not theirs else f"{ours / theirs:.2f}"

        peak = _mib(m.peak) if m.peak is not None else "> limit"
        seconds = "-" if m.seconds is None else f"{m.seconds:.1f}"
        rows.append(
            f"| {m.config.net} | {m.config.form} | {m.config.size}^3 | {_mib(m.saved)} | "
            f"{ratio(m.saved, ref and ref.saved)} | {peak} | {ratio(m.peak, ref and ref.peak)} | {seconds} |"
        )
    return "\n".join(rows)


def budget_table(results: list[BudgetResult]) -> str:
    rows = [
        "| network | form | budget (MiB) | largest cube | volume / plain's | most blocks per level "
        "| widest width multiplier |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    plain = {r.net: r for r in results if r.form == REFERENCE}
    for r in results:
        def cell(found: Measurement | None, value: str, name: str) -> str:
            if found is None:
                return "none"
            return f"{'>= ' if name in r.capped else ''}{value} ({_mib(found.peak)} MiB)"

        ref = plain.get(r.net)
        volume = "-"
        if r.cube is not None and ref is not None and ref.cube is not None:
            volume = f"{(r.cube.config.size / ref.cube.config.size) ** 3:.1f}x"
        rows.append(
            f"| {r.net} | {r.form} | {_mib(r.budget)} | "
            f"{cell(r.cube, f'{r.cube.config.size}^3' if r.cube else '', 'cube')} | {volume} | "
            f"{cell(r.blocks, str(r.blocks.config.depth) if r.blocks else '', 'blocks')} | "
            f"{cell(r.width, f'{r.width.config.width:g}x' if r.width else '', 'width')} |"
        )
    return "\n".join(rows)


def target_checks(measurements: list[Measurement], results: list[BudgetResult], default_size: int) -> list[str]:
    """The issue's targets, each with the measured figure and whether it is met."""
    lines = []
    plain = {(m.config.net, m.config.size): m for m in measurements if m.config.form == REFERENCE}
    for m in measurements:
        ref = plain.get((m.config.net, m.config.size))
        if m.config.form in ("reversible", "full") and m.config.size == default_size and ref and m.peak and ref.peak:
            ratio = m.peak / ref.peak
            saved = f", saved for backward {m.saved / ref.saved:.2f}x" if m.saved and ref.saved else ""
            verdict = "met" if ratio <= 0.33 else "NOT met"
            lines.append(
                f"- {m.config.net} {m.config.form} at {default_size}^3: peak {ratio:.2f}x plain (target <= 0.33x: "
                f"{verdict}){saved}."
            )
    ref_cube = {r.net: r.cube for r in results if r.form == REFERENCE}
    for r in results:
        ref = ref_cube.get(r.net)
        if r.form in ("reversible", "full") and r.cube and ref:
            volume = (r.cube.config.size / ref.config.size) ** 3
            verdict = "met" if volume >= 4 else "NOT met"
            capped = " (the search's largest cube: a lower bound)" if "cube" in r.capped else ""
            lines.append(
                f"- {r.net} {r.form}: {r.cube.config.size}^3 in the budget, {volume:.1f}x the plain twin's volume "
                f"(target >= 4x: {verdict}){capped}."
            )
    return lines


def machine_description(threads: int) -> str:
    cores = logical_cores()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu_name()}, {cores} logical cores, {memory:.0f} GiB RAM, Python {platform.python_version()}, "
        f"torch {torch.__version__}, torch.set_num_threads({threads})"
    )


def plot(measurements: list[Measurement], results: list[BudgetResult], path: Path) -> None:
    """Peak memory against cube size per network and form (lines), each network's budget (dashed) and the
    largest cube each form trains within it (stars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = list(dict.fromkeys(m.config.net for m in measurements))
    fig, axes = plt.subplots(1, len(nets), figsize=(6 * len(nets), 4.5), squeeze=False)
    for ax, net in zip(axes[0], nets):
        for form in FORMS[net]:
            points = {m.config.size: m.peak / MIB for m in _of_form(measurements, net, form) if m.peak}
            largest = [r.cube for r in results if (r.net, r.form) == (net, form) and r.cube is not None and r.cube.peak]
            points.update((m.config.size, m.peak / MIB) for m in largest)
            if points:
                (line,) = ax.plot(*zip(*sorted(points.items())), marker="o", label=form)
                for m in largest:
                    ax.plot(m.config.size, m.peak / MIB, marker="*", markersize=14, color=line.get_color())
        for r in results:
            if r.net == net and r.form == REFERENCE:
                ax.axhline(r.budget / MIB, color="grey", linestyle="--", label="budget")
        ax.set_title(f"{net}: training step peak memory")
        ax.set_xlabel("cube size S (input 1 x 4 x S^3)")
        ax.set_ylabel("peak memory (MiB)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def docs_section(
    command: str, args: argparse.Namespace, steps: str, budget: str, checks: list[str], minutes: float
) -> str:
    """The markdown section for the benchmarks page, from its heading to its last line."""
    grid_note = (
        ""
        if args.sizes == [64, 96, 128] and args.budget_size == 96
        else f" This run used a reduced grid (sizes {', '.join(map(str, args.sizes))}, budget from the plain twin at "
        f"{args.budget_size}^3) so that it finishes in about {minutes:.0f} minutes on this CPU; the defaults are "
        "sizes 64, 96, 128 and the plain twin at 96^3."
    )
    return "\n".join(
        [
            HEADING,
            "",
            "One training step (forward, cross-entropy over 3 classes, backward) of `InvResUNet` and `RevMBConvUNet` "
            "at their default configuration (widths 16-32-64-128, InvRes 3 and RevMBConv 2 couplings per level in "
            "encoder and decoder, group norm) on a 1 x 4 x S^3 float32 input on CPU, in each form: `reversible` "
            "(memory-saving backward), `full` (InvRes with invertible squeeze resampling), `plain` (the twin under "
            "ordinary autograd, same weights) and `checkpointed` (`torch.utils.checkpoint` per coupling)."
            + grid_note,
            "",
            "What decides the reversible forms' peak is not the couplings (each level keeps only its sequence's "
            "output) but the layers outside them and the backward's transients, so the networks keep those few: "
            "decoder levels are reversible sequences too, skips are merged by addition (partial) or by "
            "concatenating the unsqueezed half (full) instead of concatenation plus convolution, the stem and 1x1 "
            "head are the only full-resolution layers outside the sequences, and the default depth (3 InvRes / 2 "
            "MBConv couplings per level) makes the couplings dominate the plain twin.",
            "",
            f"- Command: `{command}`",
            f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine_description(args.threads)}",
            "- Peak memory: process peak resident set (`VmHWM`) over the resident set before the step "
            "(`revnets.core.memory.step_peak_bytes`), one fresh process per row, measured on the second step after "
            f"`malloc_trim`, run with `{' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}`. The first step of a "
            "process also pays for oneDNN's kernel creation and the first heap growth (about 100 MiB more for InvRes "
            "at 64^3 in a 2-thread trial); "
            "with glibc's default dynamic mmap threshold, freed blocks below 32 MiB stay resident and the "
            "recomputing backward's many short-lived buffers fragment the heap, which made the reversible step's "
            "resident peak about 3x its live tensors (InvRes, 64^3, 2 threads: 459 MiB reversible against 868 MiB "
            "plain, a 0.53 ratio). The figures below follow the live tensors (they agree with `torch.profiler`'s "
            "memory events to within 1 MiB at 64^3 and 3 MiB at 48^3).",
            "- CPU convolution backends: for a batch of one, PyTorch runs a non-grouped 3D convolution with a kernel "
            "at most 3 wide through im2col (`Slow3d`) instead of oneDNN when `C * D * H <= 20480`, e.g. the "
            "8-channel halves inside the finest couplings at 32^3 and 48^3. Its column buffer (27 C values per voxel) "
            "is a transient that every form pays once at a time, so it weighs most on the reversible forms: that is "
            "why their ratios at 32^3 and 48^3 are higher than at 64^3, and why their peak at 64^3 is no higher than "
            "at 48^3. From 64^3 on every 3x3x3 convolution of the default networks runs on oneDNN (on one thread, "
            "1x1x1 convolutions always take the native path).",
            "- Saved for backward: `revnets.core.memory.saved_bytes` of the forward and loss.",
            "- Step time: the measured step. The machine was shared with other jobs, so timings are noisy.",
            "- Budget search: cubes in steps of 16, couplings per level (the same at every level) and width "
            f"multipliers in steps of {WIDTH_STEP:g}, each a fresh-process probe stopped as soon as it passed the "
            f"budget; searched up to {args.max_cube}^3, {args.max_blocks} blocks and {args.max_width:g}x width "
            "(a '>=' marks a result at that cap). The blocks and width searches use the budget's cube size.",
            "",
            steps,
            "",
            budget,
            "",
            "Targets (default configuration):",
            "",
            *checks,
            "",
            f"![peak memory against cube size; stars: the largest cube within the budget](figures/{FIGURE.name})",
            "",
        ]
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", choices=list(NETS), default=list(NETS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96, 128], help="cube sizes of the step table")
    parser.add_argument("--budget-size", type=int, default=96, help="budget = peak of the plain twin at this cube")
    parser.add_argument("--budget-mib", type=float, help="a fixed budget in MiB instead (same for both networks)")
    parser.add_argument("--max-cube", type=int, default=256)
    parser.add_argument("--max-blocks", type=int, default=16)
    parser.add_argument("--max-width", type=float, default=4.0)
    parser.add_argument("--no-budget", action="store_true", help="only the step table")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each process")
    parser.add_argument(
        "--memory-limit-mib", type=float, help="stop any step above this (default: 80%% of available memory)"
    )
    parser.add_argument("--write-docs", action="store_true", help="write the section of --docs and its plot")
    parser.add_argument("--docs", type=Path, default=DOCS, help="markdown file to write (the figure goes to figures/)")
    parser.add_argument("--save", help="pickle the measurements to this file")
    parser.add_argument("--load", help="skip measuring: use the measurements pickled by --save (same grid args)")
    parser.add_argument("--command", help="with --load: the command that measured, for the docs")
    args = parser.parse_args(argv)
    if args.budget_size % CUBE_STEP:
        parser.error(f"--budget-size must be a multiple of {CUBE_STEP}, got {args.budget_size}.")
    return args


def available_bytes() -> int:
    match = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return int(match.group(1)) * 1024


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    track_live_tensors()
    started = time.perf_counter()
    if args.load:
        with open(args.load, "rb") as file:
            measurements, results, minutes = pickle.load(file)
    else:
        limit = int(args.memory_limit_mib * MIB) if args.memory_limit_mib else int(0.8 * available_bytes())
        runner = Runner(
            args.threads, limit, lambda line: print(f"[{time.perf_counter() - started:6.0f} s] {line}", flush=True)
        )
        measurements = [
            runner.run(Config(net, form, size), with_saved=True)
            for net in args.nets
            for size in args.sizes
            for form in FORMS[net]
        ]
        results = []
        if not args.no_budget:
            for net in args.nets:
                if args.budget_mib:
                    budget = int(args.budget_mib * MIB)
                else:
                    budget = runner.run(Config(net, REFERENCE, args.budget_size)).peak
                results += [budget_search(runner, measurements, net, form, budget, args) for form in FORMS[net]]
        minutes = (time.perf_counter() - started) / 60
        if args.save:
            with open(args.save, "wb") as file:
                pickle.dump((measurements, results, minutes), file)

    steps, budget_text = step_table(measurements), budget_table(results)
    default_size = 64 if 64 in args.sizes else args.sizes[0]
    checks = target_checks(measurements, results, default_size)
    print(steps, "", budget_text, "", *checks, sep="\n")
    if args.write_docs:
        command = args.command or "python " + shlex.join([os.path.relpath(sys.argv[0], REPO_ROOT), *sys.argv[1:]])
        figure = args.docs.parent / "figures" / FIGURE.name
        plot(measurements, results, figure)
        write_section(args.docs, HEADING, docs_section(command, args, steps, budget_text, checks, minutes))
        print(f"wrote {args.docs} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
