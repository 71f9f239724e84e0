"""The model tests run on one thread: their tensors are tiny, and on a shared 2-core machine OpenMP
threads waiting for each other make them many times slower than a single thread."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
