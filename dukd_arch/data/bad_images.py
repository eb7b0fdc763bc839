"""Unreadable, truncated or mismatched training images: reported by path, then fatal or skipped.

``datasets.train.bad_images: error`` (default) stops at the first bad pair with its file names;
``skip`` logs each bad file once (per loader process) and serves the next usable pair instead.
"""
import logging
from typing import Callable, Optional

import cv2
import numpy as np

POLICIES = ('error', 'skip')
logger = logging.getLogger('basicsr')


class BadImageError(ValueError):
    """A training pair that cannot be used; ``path`` is the offending file."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


def unreadable_reason(file_client, path: str, client_key: str) -> Optional[str]:
    """Why ``path`` cannot be decoded as an image, or None when it decodes."""
    try:
        content = file_client.get(path, client_key)
    except (OSError, KeyError) as err:
        return f'cannot be read ({err})'
    if not content:
        return 'is empty'
    if cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED) is None:
        return 'cannot be decoded (truncated, corrupt or not an image)'
    return None


def parse_policy(opt: dict) -> str:
    policy = opt.get('bad_images', 'error')
    if policy not in POLICIES:
        raise ValueError(f"datasets.{opt.get('name')}.bad_images must be one of {POLICIES}, got {policy!r}")
    return policy


class BadImageSkipper:
    """Calls ``load(index)``; on a BadImageError logs the file once and tries the next index."""

    def __init__(self, size: int):
        self.size = size
        self.reported = set()

    def __call__(self, load: Callable[[int], dict], index: int) -> dict:
        for offset in range(self.size):
            try:
                return load((index + offset) % self.size)
            except BadImageError as err:
                if err.path not in self.reported:
                    self.reported.add(err.path)
                    logger.warning(f'{err} -- skipped (datasets.train.bad_images: skip)')
        raise RuntimeError(f'none of the {self.size} training pairs could be read (see the warnings above)')
