"""Memory measures: saved bytes of known graphs, CPU peak of a known allocation in a fresh process."""

from __future__ import annotations

import pytest
import torch

from revnets.core.memory import (
    allocated_peak_bytes,
    in_fresh_process,
    live_at_allocated_peak,
    saved_bytes,
    step_peak_bytes,
)


def test_saved_bytes_counts_each_storage_once() -> None:
    x = torch.randn(1000, requires_grad=True)  # 4000 bytes
    assert saved_bytes(lambda t: t * t, x) == 4000  # x saved twice, counted once
    assert saved_bytes(lambda t: t.exp(), x) == 4000  # exp saves its output
    assert saved_bytes(lambda t: (t + 1).sum(), x) == 0  # add and sum need no tensors
    with torch.no_grad():
        assert saved_bytes(lambda t: t.exp(), x) == 0


def _allocate_and_touch(megabytes: int) -> int:
    def step() -> None:
        torch.ones(megabytes * 2**20 // 4)

    return step_peak_bytes(step, "cpu")


def test_cpu_step_peak_sees_a_known_allocation() -> None:
    peak = in_fresh_process(_allocate_and_touch, 256, timeout=120)
    # A few pages of the process may leave the resident set while the step runs (other jobs press on memory).
    assert 0.99 * 256 * 2**20 <= peak <= 300 * 2**20


def _fail() -> None:
    raise ValueError("broken step")


def test_fresh_process_reports_errors() -> None:
    with pytest.raises(RuntimeError, match="ValueError: broken step"):
        in_fresh_process(_fail, timeout=120)


def test_unknown_device_is_rejected() -> None:
    with pytest.raises(ValueError, match="cpu and cuda"):
        step_peak_bytes(lambda: None, "meta")


def test_live_at_allocated_peak_names_the_tensors_and_operators_at_the_peak() -> None:
    x = torch.randn(64, 1024, requires_grad=True)
    one = x.numel() * 4

    def step() -> None:
        hidden = x.exp()
        big = torch.cat((hidden, hidden, hidden))  # three tensors of x's size at once: the largest allocation
        big.sum().backward()

    peak, live = live_at_allocated_peak(step)
    assert peak == allocated_peak_bytes(step)
    assert 4 * one <= sum(allocation.nbytes for allocation in live) <= peak
    assert live == sorted(live, key=lambda allocation: -allocation.nbytes)
    assert live[0].nbytes == 3 * one and live[0].operators[-1] == "aten::cat"
