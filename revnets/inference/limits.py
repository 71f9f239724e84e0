"""Limits on the arguments of a run, checked before any work."""

from __future__ import annotations

import numpy as np

from revnets.errors import InputError

MAX_SEED = 2**63 - 1
"""The largest seed: every generator a run seeds (torch, NumPy's ``SeedSequence``) takes 0 to 2**63 - 1."""


def check_seed(seed: int) -> None:
    """Check a random seed: a whole number from 0 to :data:`MAX_SEED`.

    Raises:
        InputError: another value.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"the seed must be a whole number from 0 to 2**63 - 1, got {seed!r}.")
