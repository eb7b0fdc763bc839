"""Unreadable, truncated or mismatched training images: reported by path, then fatal or skipped.

``datasets.train.bad_images: error`` (default) stops at the first bad pair with its file names;
``skip`` logs each bad file once (per loader process) and serves the next usable pair instead.
"""
import io
import logging
from typing import Callable, Optional

import cv2
import numpy as np

from .pair_folders import dataset_option

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


def checked_pair(dataset, index: int, load: Callable[[int], dict]) -> dict:
    """``load(index)`` of a paired dataset (BasicSR's PairedImageDataset and ours), every failure naming its files.

    An image that does not decode, a pair BasicSR's crop rejects (too small for the patch, sizes off) and a
    pair whose sizes do not match the scale all raise ``BadImageError`` with the paths (BasicSR raised an
    ``AttributeError`` on ``None`` or printed no file). In validation BasicSR crops the HR image to scale x
    LR, meant for benchmark images whose size is not a multiple of the scale; an LR image smaller than that
    rounding (another scale, a wrong file) is refused instead of silently scored on a cut-off HR image.
    """
    paths = dataset.paths[index]
    try:
        item = load(index)
    except BadImageError:
        raise
    except Exception as err:
        lmdb = 'db_paths' in getattr(dataset, 'io_backend_opt', {})  # BasicSR's lmdb mode: paths are keys
        for key in ('gt', 'lq') if dataset.file_client is not None else ():
            reason = unreadable_reason(dataset.file_client, paths[f'{key}_path'], key)
            if reason:
                where = f" in the LMDB {dataset.opt[f'dataroot_{key}']}" if lmdb else ''
                raise BadImageError(f"bad image {paths[f'{key}_path']}{where}: {reason}", paths[f'{key}_path']) from err
        if isinstance(err, ValueError):
            where = f" in the LMDBs {dataset.opt['dataroot_lq']} / {dataset.opt['dataroot_gt']}" if lmdb else ''
            raise BadImageError(f"bad LR/HR pair {paths['lq_path']} / {paths['gt_path']}{where}: {_reason(err)}",
                                paths['lq_path']) from err
        raise
    scale = dataset.opt['scale']
    (lq_h, lq_w), (gt_h, gt_w) = item['lq'].shape[-2:], item['gt'].shape[-2:]
    if dataset.opt['phase'] != 'train':  # the HR size before BasicSR's crop
        gt_h, gt_w = _image_size(dataset.file_client.get(paths['gt_path'], 'gt'))
        gt_h, gt_w = gt_h // scale * scale, gt_w // scale * scale
    if (gt_h, gt_w) != (lq_h * scale, lq_w * scale):
        raise BadImageError(f"bad LR/HR pair: {paths['gt_path']} is {gt_h}x{gt_w} but {paths['lq_path']} is "
                            f"{lq_h}x{lq_w} at scale {scale}; regenerate the LR images (datasets/README.md) or "
                            'fix the folders.', paths['lq_path'])
    return item


def _reason(err: ValueError) -> str:
    """The error's text; BasicSR's crop passes its sentence as two arguments, which ``str`` shows as a tuple."""
    parts = err.args
    return ''.join(parts) if len(parts) > 1 and all(isinstance(p, str) for p in parts) else str(err)


def _image_size(content: bytes):
    """(height, width) of an encoded image: from its header (PIL), else by decoding it (formats only cv2 reads)."""
    from PIL import Image
    try:
        width, height = Image.open(io.BytesIO(content)).size
        return height, width
    except Exception:  # noqa: BLE001 (PIL does not know every format cv2 decodes)
        return cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2]


def parse_policy(opt: dict) -> str:
    policy = opt.get('bad_images', 'error')
    if policy not in POLICIES:
        raise ValueError(f"{dataset_option(opt, 'bad_images')}: must be one of {POLICIES}, got {policy!r}")
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
