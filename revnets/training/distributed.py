"""Process-group set-up for ``multi_gpu_train.json`` under ``torchrun``: one process per GPU (nccl) or per CPU
worker (gloo). ``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist

BACKENDS = ("nccl", "gloo")


def default_backend() -> str:
    """``"nccl"`` when CUDA is available, else ``"gloo"``."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def local_device(backend: str) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` with nccl, the CPU with gloo."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "nccl":
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def init_distributed(backend: str) -> None:
    """Join the process group (once), with nccl bind this process to its GPU, and on ranks other than 0 log
    only warnings and errors (rank 0 logs for all).

    Raises:
        RuntimeError: not started by ``torchrun`` (``RANK`` / ``WORLD_SIZE`` missing from the environment).
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError("multi_gpu_train.json must be run under torchrun (RANK and WORLD_SIZE are not set).")
    device = local_device(backend)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if dist.get_rank() > 0:
        logging.disable(logging.INFO)  # every logger, also those with their own level (MONAI's StatsHandler)


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0 and in a single process: the one that writes checkpoints, logs and histories."""
    return rank() == 0


def finish_distributed() -> None:
    """Wait for every rank, then leave the process group (if one was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
