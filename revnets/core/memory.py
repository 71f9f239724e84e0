"""Measuring memory: bytes autograd saves for backward, and the peak of one training step.

``saved_bytes`` is deterministic and device-independent: it is what tests compare. ``allocated_peak_bytes``
is the high-water mark of the bytes tensors occupy during a step on CPU, deterministic too (it counts
allocations, not pages): the planner fits and tests on it; ``live_at_allocated_peak`` lists what is live at
that peak and which operators allocated it. ``step_peak_bytes`` is what users feel: CUDA's
allocator high-water mark on a GPU; on CPU the process's resident-set high-water mark, reset through
``/proc/self/clear_refs`` just before the step (Linux only). CPU figures are only meaningful in a fresh
process (:func:`in_fresh_process`), where no earlier work left freed but still resident memory behind.
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def saved_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Bytes of the distinct storages autograd saves for backward while ``fn(*args, **kwargs)`` runs.

    Tensors are counted through ``torch.autograd.graph.saved_tensors_hooks``; views of one storage
    (and a tensor saved by several operations) count once, with the full size of their storage.
    Parameters saved by layers count too: they are the same for the forms being compared.
    """
    storages: dict[tuple[torch.device, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[(t.device, storage.data_ptr())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args, **kwargs)
    del out
    return sum(storages.values())


@dataclass(frozen=True)
class Allocation:
    """One block of memory allocated on CPU during a step: its size and the operators that allocated it,
    outermost first (e.g. ``("ConvolutionBackward0", "aten::convolution_backward", "aten::empty")``)."""

    nbytes: int
    operators: tuple[str, ...]


def _allocation_events(step: Callable[[], Any]) -> list[tuple[int, int, int, tuple[str, ...]]]:
    """``(time in ns, bytes, address, operator stack)`` of every CPU allocation (positive bytes) and free
    (negative bytes) during ``step()``, in time order, from ``torch.profiler``."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    events = []
    pending: list[tuple[Any, tuple[str, ...]]] = [
        (node, ()) for node in profiler.profiler.kineto_results.experimental_event_tree()
    ]
    while pending:
        node, stack = pending.pop()
        if node.tag == _EventType.Allocation:
            fields = node.extra_fields
            if fields.device.type == "cpu":
                events.append((node.start_time_ns, fields.alloc_size, fields.ptr, stack))
            continue
        pending.extend((child, (*stack, node.name)) for child in node.children)
    return sorted(events, key=lambda event: (event[0], event[1]))


def allocated_peak_bytes(step: Callable[[], Any]) -> int:
    """Peak of the bytes allocated on CPU during ``step()`` above what was allocated when it started.

    Read from the allocation and free events of ``torch.profiler`` (``profile_memory=True``): every tensor
    and workspace counts with its exact size, whether or not its pages were touched, and the figure is the
    same in every run of the same step. Memory allocated before the step and freed during it is not
    subtracted (the profiler does not know its size), so the peak is never underestimated.
    """
    return live_at_allocated_peak(step)[0]


def live_at_allocated_peak(step: Callable[[], Any]) -> tuple[int, list[Allocation]]:
    """:func:`allocated_peak_bytes` of ``step()`` and the allocations made during the step that are live at
    that peak, largest first: where a step's memory goes when it is highest."""
    events = _allocation_events(step)
    current = peak = 0
    peak_index = -1
    for index, (_, size, _, _) in enumerate(events):
        current += size
        if current > peak:
            peak, peak_index = current, index
    live: dict[int, Allocation] = {}
    for _, size, address, stack in events[: peak_index + 1]:
        if size > 0:
            live[address] = Allocation(size, stack)
        else:
            live.pop(address, None)
    return peak, sorted(live.values(), key=lambda allocation: -allocation.nbytes)


def _read_status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} line: CPU peak memory needs Linux.")
    return int(match.group(1))


def step_peak_bytes(step: Callable[[], Any], device: torch.device | str = "cpu") -> int:
    """Peak memory that ``step()`` (e.g. forward + backward of one batch) adds over what was in use before.

    Args:
        step: the work to measure; its return value is dropped before the measure ends.
        device: where the tensors live. ``cuda`` uses ``torch.cuda.max_memory_allocated``; ``cpu`` uses
            the process's resident-set high-water mark (``VmHWM``) minus its resident set before the step.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu":
        raise ValueError(f"step_peak_bytes supports cpu and cuda devices, got {device}.")
    Path("/proc/self/clear_refs").write_text("5")
    before = _read_status_kib("VmRSS")
    step()
    return (_read_status_kib("VmHWM") - before) * 1024


def _call_and_send(connection: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        connection.send(("ok", fn(*args)))
    except BaseException as error:  # sent to the parent, which re-raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


def in_fresh_process(fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
    """Run the picklable ``fn(*args)`` in a new (spawned) Python process and return its result.

    CPU peak-memory measures need this: a process's resident set keeps pages that earlier work freed.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_call_and_send, args=(send, fn, args))
    process.start()
    send.close()
    if not receive.poll(timeout):
        process.kill()
        process.join()
        raise TimeoutError(f"{getattr(fn, '__name__', fn)} did not finish within {timeout} s.")
    try:
        status, value = receive.recv()
    except EOFError:
        process.join()
        raise RuntimeError(
            f"{getattr(fn, '__name__', fn)} died in its process (exit code {process.exitcode}), e.g. out of memory."
        ) from None
    process.join()
    if status == "error":
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} failed in its process: {value}")
    return value
