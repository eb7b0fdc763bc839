"""Preparing super-resolution training / test data the way the benchmarks were made.

Thin layer over BasicSR: bicubic LR uses our batched MATLAB ``imresize`` (``dukd_arch.ops``, the operator
zoom-out also uses), LMDBs are written by ``basicsr.utils.lmdb_util.make_lmdb_from_imgs``. Images are
uint8 HxWxC arrays in OpenCV's BGR order on disk; the bicubic kernel is channel-agnostic.
"""
import contextlib
import os
import shutil
from os import path as osp
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..ops import matlab_imresize, matlab_imresize_uint8

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.PNG', '.JPG', '.JPEG', '.BMP')


def list_images(folder: str) -> List[str]:
    """Sorted image file names (not paths) directly inside ``folder``; a clear error when there are none."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Image folder {folder!r} does not exist.')
    names = sorted(n for n in os.listdir(folder) if n.endswith(IMG_EXTENSIONS) and osp.isfile(osp.join(folder, n)))
    if not names:
        raise FileNotFoundError(f'No images ({", ".join(IMG_EXTENSIONS[:5])}, ...) in {folder!r}.')
    return names


def read_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f'Cannot read image {path!r} (missing, or not an image OpenCV can decode).')
    if img.dtype != np.uint8:
        raise ValueError(f'{path!r} is {img.dtype}; only 8-bit images are supported here.')
    return img


def write_image(path: str, img: np.ndarray) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, img):
        raise OSError(f'Cannot write image {path!r}.')


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom / right so height and width are multiples of ``scale`` (how benchmark HR is made)."""
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(lr, scale, 'bicubic')`` of a uint8 image, rounded to uint8: the baseline SR tables list."""
    up = matlab_imresize(torch.from_numpy(lr).permute(2, 0, 1).double(), scale)
    return up.round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def bicubic_downsample(images: Sequence[np.ndarray], scale: int) -> List[np.ndarray]:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')`` of uint8 images, bit-exact (``matlab_imresize_uint8``).

    Images of equal size run as one batch. Each image must already be a multiple of ``scale``
    (``modcrop``) so that LR x scale == HR exactly.
    """
    out: List[Optional[np.ndarray]] = [None] * len(images)
    groups = {}
    for i, img in enumerate(images):
        if img.dtype != np.uint8:
            raise ValueError(f'bicubic_downsample expects uint8 images, got {img.dtype}.')
        if img.shape[0] % scale or img.shape[1] % scale:
            raise ValueError(f'Image {i} is {img.shape[1]}x{img.shape[0]}, not a multiple of scale {scale}: '
                             f'modcrop it first.')
        groups.setdefault(img.shape, []).append(i)
    for idx in groups.values():
        batch = np.stack([images[i] for i in idx])  # N H W [C]
        t = torch.from_numpy(batch).to(torch.float64)
        t = t.unsqueeze(-1) if t.dim() == 3 else t
        lr = matlab_imresize_uint8(t.permute(0, 3, 1, 2), 1.0 / scale).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for j, i in enumerate(idx):
            out[i] = lr[j] if images[i].ndim == 3 else lr[j, ..., 0]
    return out  # type: ignore[return-value]


def crop_positions(length: int, crop: int, step: int, thresh: int) -> List[int]:
    """Start offsets of basicsr's ``extract_subimages``: a grid with ``step``, plus a last crop flush with
    the border when more than ``thresh`` pixels would otherwise be lost."""
    if length < crop:
        return []
    starts = list(range(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > thresh:
        starts.append(length - crop)
    return starts


def extract_subimages(img: np.ndarray, crop: int, step: int, thresh: int = 0, min_std: float = 0.0,
                      max_count: Optional[int] = None) -> List[Tuple[int, np.ndarray]]:
    """Square crops of ``img`` as (index, crop), numbered ``1..`` in row-major order like basicsr's script.

    ``min_std`` > 0 drops near-flat crops (e.g. black sky, scanner background) that teach nothing;
    ``max_count`` keeps only the most textured ones (highest std; deterministic), so one large photo does
    not dominate a small set. Indices stay those of the full grid so names are stable whatever is dropped.
    """
    out = []
    index = 0
    for top in crop_positions(img.shape[0], crop, step, thresh):
        for left in crop_positions(img.shape[1], crop, step, thresh):
            index += 1
            patch = img[top:top + crop, left:left + crop]
            if min_std > 0 and float(patch.std()) < min_std:
                continue
            out.append((index, np.ascontiguousarray(patch)))
    if max_count is not None and len(out) > max_count:
        stds = np.array([float(p.std()) for _, p in out])
        keep = sorted(np.argsort(-stds, kind='stable')[:max_count].tolist())
        out = [out[i] for i in keep]
    return out


def make_lmdb(folder: str, lmdb_path: str, names: Optional[Iterable[str]] = None, overwrite: bool = False,
              quiet: bool = False) -> str:
    """LMDB of the images in ``folder`` (keys = file stems) with basicsr's ``meta_info.txt``.

    ``quiet`` silences basicsr's per-image progress lines.
    """
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    if not lmdb_path.endswith('.lmdb'):
        raise ValueError(f'LMDB path must end with ".lmdb" (BasicSR checks it): {lmdb_path!r}')
    if osp.exists(lmdb_path):
        if not overwrite:
            raise FileExistsError(f'{lmdb_path!r} exists; remove it or overwrite it (--overwrite).')
        if not osp.isdir(lmdb_path):
            raise FileExistsError(f'{lmdb_path!r} is a file, not an LMDB folder; remove it or choose another path.')
        shutil.rmtree(lmdb_path)
    names = sorted(names) if names is not None else list_images(folder)
    keys = [osp.splitext(n)[0] for n in names]
    if len(set(keys)) != len(keys):
        raise ValueError(f'Two images in {folder!r} share a file stem; LMDB keys must be unique.')
    from PIL import Image
    for name in names:  # BasicSR would stop on a cv2.error naming no file
        try:
            with Image.open(osp.join(folder, name)) as im:
                im.size
        except Exception as err:  # noqa: BLE001 (PIL raises many kinds)
            raise ValueError(f'{osp.join(folder, name)!r} is not a readable image ({err}); remove or replace it.')
    # BasicSR sizes the map from the first image alone, too small for small images (MDB_MAP_FULL); the map
    # is only reserved address space, so a generous floor costs nothing
    map_size = max(1 << 30, 20 * sum(osp.getsize(osp.join(folder, n)) for n in names))
    try:
        with contextlib.ExitStack() as stack:
            if quiet:
                null = stack.enter_context(open(os.devnull, 'w'))
                stack.enter_context(contextlib.redirect_stdout(null))
                stack.enter_context(contextlib.redirect_stderr(null))
            make_lmdb_from_imgs(folder, lmdb_path, names, keys, multiprocessing_read=False, map_size=map_size)
    except BaseException:
        shutil.rmtree(lmdb_path, ignore_errors=True)  # never leave a half-written LMDB under the real name
        raise
    return lmdb_path
