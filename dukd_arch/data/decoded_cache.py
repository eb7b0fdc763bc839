"""Decoded training images kept in memory (``datasets.train.decoded_cache_mib``).

Decoding is most of a small student's data time: in gain study v2 (this 2-core CPU) a 480x480 PNG sub-image
from LMDB takes about 4.5 ms and its 16-bit teacher label about 7 ms, so a batch of 16 spends about 0.2 s
decoding before the step starts. The cache keeps each image as decoded (uint8, or uint16 for labels) the
first time it is read, until its budget is full; later images are decoded every time. Each loader process
(every data-loader worker, every DDP rank) holds its own cache, and workers are rebuilt each epoch unless
``persistent_workers: true``.

Cached arrays are read-only: BasicSR's ``augment`` flips in place, and a flip on a cached image would
corrupt every later patch cut from it. Callers copy (crop, then convert to float) before augmenting.
"""
from typing import Callable, Dict, Hashable

import numpy as np

MIB = 1 << 20


class DecodedImageCache:
    """Decoded images by key, up to ``max_mib`` MiB; counts hits and misses."""

    def __init__(self, max_mib: float):
        if not max_mib > 0:
            raise ValueError(f'decoded_cache_mib must be > 0, got {max_mib!r}')
        self.budget = int(max_mib * MIB)
        self.used = 0
        self.images: Dict[Hashable, np.ndarray] = {}
        self.hits = self.misses = 0

    def get(self, key: Hashable, decode: Callable[[], np.ndarray]) -> np.ndarray:
        """The image under ``key``, decoded by ``decode()`` on a miss and kept while the budget allows."""
        img = self.images.get(key)
        if img is not None:
            self.hits += 1
            return img
        self.misses += 1
        img = decode()
        if img is None:  # undecodable: the dataset names the file (data/bad_images.py)
            return img
        img.flags.writeable = False  # cached or not, so that a stray in-place write fails the same way
        if self.used + img.nbytes <= self.budget:
            self.images[key] = img
            self.used += img.nbytes
        return img
