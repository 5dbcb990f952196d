"""Independent random streams derived from one seed, so every piece of a result can be redrawn alone.

A data set is drawn in chunks (one class, a few hundred samples at a time). Each chunk gets its own
``torch.Generator`` whose seed is derived from the run's seed and the chunk's name through NumPy's
``SeedSequence`` (a hash designed for this): chunks are statistically independent, the same seed
always gives the same numbers, and changing one class or one chunk leaves the others untouched.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed for the stream named ``keys`` under ``seed`` (strings are hashed with CRC-32)."""
    words = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return ((int(state[0]) << 32) | int(state[1])) >> 1


def generator(seed: int, *keys: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded for the stream named ``keys`` under ``seed``."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same seed gives the same numbers on the CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Fork torch's global generator and seed it: reproducible draws that leave the caller's RNG untouched."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
