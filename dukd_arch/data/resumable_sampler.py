"""Training data order and augmentation randomness that a resumed run can reproduce exactly.

BasicSR restarts an interrupted epoch from its first batch, and its ``worker_init_fn`` reseeds every
worker identically at each epoch start, so which random crop/flip a sample gets depends on which worker
loads it and on how many batches that worker loaded before. Here:

* ``ResumableSampler`` is BasicSR's ``EnlargedSampler`` (same per-epoch permutation, same split over
  ranks) that can start an epoch part-way (``resume_at``) and hands out ``(index, position, seed)``;
* ``SeededDataset`` runs each ``__getitem__`` with python ``random``, numpy and torch seeded from that
  per-sample seed (derived from ``manual_seed``, the epoch and the sample's global position), then puts
  the process's generators back. A sample's augmentation is therefore the same whatever the number of
  workers, the worker that loads it, or where the run was resumed; and loading data never moves the
  training process's own random streams.
"""
import random

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from basicsr.data.data_sampler import EnlargedSampler

POSITION_KEY = 'sample_position'  # added to every training sample: this rank's position in the epoch


def sample_seed(seed: int, epoch: int, position: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1, np.uint64)[0] >> 1)


class ResumableSampler(EnlargedSampler):
    """EnlargedSampler that yields ``(index, local_position, sample_seed)`` and can skip into an epoch."""

    def __init__(self, dataset, num_replicas, rank, ratio=1, seed=0):
        super().__init__(dataset, num_replicas, rank, ratio)
        self.seed = int(seed)
        self.resume_epoch, self.resume_skip = None, 0

    def resume_at(self, epoch: int, samples_done: int) -> None:
        """Epoch ``epoch`` starts after this rank's first ``samples_done`` samples (already trained on)."""
        self.resume_epoch, self.resume_skip = int(epoch), int(samples_done)

    def __iter__(self):
        indices = list(super().__iter__())
        # tied to the epoch rather than one-shot: DataLoader iterators may be created more than once
        # for the same epoch (basicsr's prefetcher makes one at construction and one at reset)
        start = self.resume_skip if self.epoch == self.resume_epoch else 0
        for pos in range(start, len(indices)):
            global_pos = pos * self.num_replicas + self.rank
            yield indices[pos], pos, sample_seed(self.seed, self.epoch, global_pos)


class SeededDataset(Dataset):
    """Wraps a training dataset so each sample is drawn under its own seed (see the module docstring)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):  # .opt, .paths, ... of the wrapped dataset
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key):
        if not isinstance(key, tuple):  # plain index (e.g. a user-built loader): no seeding
            return self.dataset[key]
        index, position, seed = key
        if get_worker_info() is not None:  # a loader worker: its generators serve nothing else
            item = self._seeded_item(index, seed)
        else:  # the training process itself (num_worker_per_gpu: 0): leave its random streams untouched
            py_state, np_state = random.getstate(), np.random.get_state()
            with torch.random.fork_rng(devices=[]):
                try:
                    item = self._seeded_item(index, seed)
                finally:
                    random.setstate(py_state)
                    np.random.set_state(np_state)
        item[POSITION_KEY] = position
        return item

    def _seeded_item(self, index, seed):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed would also reseed the GPUs
        return self.dataset[index]
