"""DistributedDataParallel (gloo, 2 CPU processes) over a memory-saving sequence gives single-process gradients."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from tests.core.stacks import coupling_stack, relative_error


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return coupling_stack(3, 4).double()


def _batch() -> torch.Tensor:
    return torch.randn(4, 4, 6, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))


def _rank_main(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model = DistributedDataParallel(_model())
        shard = _batch().chunk(world_size)[rank]
        # DDP averages gradients over ranks; scale so the sum matches the single-process loss.
        (model(shard).square().sum() * world_size).backward()
        torch.save([p.grad for p in model.parameters()], Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gradients_equal_single_process(tmp_path: Path) -> None:
    mp.spawn(_rank_main, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    model = _model()
    model(_batch()).square().sum().backward()
    expected = [p.grad for p in model.parameters()]
    for rank in range(2):
        grads = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert relative_error(grads, expected) <= 1e-10
