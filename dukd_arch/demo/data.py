"""A small x4 SR set built offline from the colour photographs scikit-image ships in ``skimage/data``.

Whole photographs are split into train and held-out (never crops of one photo on both sides), so the
held-out PSNR measures generalisation. HR = photo cropped to a multiple of the scale; LR = MATLAB
bicubic of HR rounded to uint8, exactly how DIV2K / Set5 LR images are made. Train photos are cut
into sub-images like basicsr's ``extract_subimages`` (small files read fast), near-flat ones dropped.

Layout (a normal BasicSR paired folder, plus an LMDB of the train split)::

    <root>/train/HR/<photo>_s###.png          <root>/train/LR_bicubic/X4/<photo>_s###.png
    <root>/train/HR.lmdb, LR_bicubic_X4.lmdb  (keys = file stems, basicsr meta_info.txt)
    <root>/train/subsets/{two,one}/HR.lmdb, LR_bicubic_X4.lmdb   (the sub-images of SUBSETS' photos only)
    <root>/val/HR/<photo>.png                 <root>/val/LR_bicubic/X4/<photo>.png
    <root>/manifest.json                      (settings + file list; a matching one means "already built")
"""
import json
import os
import shutil
from os import path as osp
from typing import Callable, Dict, List, Optional

import numpy as np

from ..data.sr_data import bicubic_downsample, extract_subimages, make_lmdb, modcrop, write_image

# Fixed split of whole photographs. Only loaders whose file ships inside the package (no pooch download).
TRAIN_PHOTOS = ('astronaut', 'rocket', 'immunohistochemistry', 'hubble_deep_field', 'retina', 'motorcycle_left')
HELDOUT_PHOTOS = ('chelsea', 'coffee')
# Data-scarce training sets (the gain study's "two" and "one" photo regimes), as extra LMDBs of the train split.
SUBSETS = {'two': ('rocket', 'astronaut'), 'one': ('rocket',)}
DEFAULTS = dict(scale=4, crop_size=192, step=144, thresh=48, min_std=12.0, max_per_photo=20)
MANIFEST_VERSION = 2


def _loader(name: str) -> Callable[[], np.ndarray]:
    import skimage.data as skd
    if name == 'motorcycle_left':
        return lambda: skd.stereo_motorcycle()[0]
    fn = getattr(skd, name, None)
    if fn is None:
        raise KeyError(f'skimage.data has no photo {name!r}')
    return fn


def load_photo(name: str) -> np.ndarray:
    """RGB uint8 photo from skimage.data; raises if it is missing, needs a download, or is not colour."""
    img = np.asarray(_loader(name)())
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'skimage.data.{name} is not an RGB uint8 photo (shape {img.shape}, {img.dtype}).')
    if np.abs(img.astype(np.int16) - img[..., :1]).max() == 0:
        raise ValueError(f'skimage.data.{name} is grey stored as RGB.')
    return img


def available_photos(names) -> Dict[str, np.ndarray]:
    """The photos that load offline; the ones that do not are reported and skipped."""
    out = {}
    for name in names:
        try:
            out[name] = load_photo(name)
        except Exception as err:  # noqa: BLE001 (old skimage, pooch-only files: skip, say why)
            print(f'[demo data] skipping skimage.data.{name}: {type(err).__name__}: {err}')
    return out


def _settings(scale, crop_size, step, thresh, min_std, max_per_photo, train_photos, heldout_photos):
    if crop_size % scale:
        raise ValueError(f'crop_size {crop_size} must be a multiple of the scale {scale}.')
    shared = set(train_photos) & set(heldout_photos)
    if shared:
        raise ValueError(f'Photos {sorted(shared)} are in both the train and the held-out split.')
    return dict(version=MANIFEST_VERSION, scale=scale, crop_size=crop_size, step=step, thresh=thresh,
                min_std=min_std, max_per_photo=max_per_photo, train_photos=list(train_photos),
                heldout_photos=list(heldout_photos),
                subsets={k: list(v) for k, v in SUBSETS.items() if set(v) <= set(train_photos)})


def read_manifest(root: str) -> Optional[dict]:
    path = osp.join(root, 'manifest.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _complete(root: str, manifest: dict) -> bool:
    lr_dir = f"LR_bicubic/X{manifest['settings']['scale']}"
    for split in ('train', 'val'):
        for name in manifest['files'][split]:
            for sub in ('HR', lr_dir):
                if not osp.isfile(osp.join(root, split, sub, name)):
                    return False
    return all(osp.isfile(osp.join(root, 'train', d, 'meta_info.txt')) for d in manifest['lmdb'])


def build_demo_set(root: str = 'datasets/demo', scale: int = DEFAULTS['scale'],
                   crop_size: int = DEFAULTS['crop_size'], step: int = DEFAULTS['step'],
                   thresh: int = DEFAULTS['thresh'], min_std: float = DEFAULTS['min_std'],
                   max_per_photo: int = DEFAULTS['max_per_photo'], lmdb: bool = True, force: bool = False,
                   verbose: bool = True, train_photos=TRAIN_PHOTOS, heldout_photos=HELDOUT_PHOTOS) -> dict:
    """Build (or reuse) the demo set under ``root``; returns the manifest. Deterministic: no randomness."""
    settings = _settings(scale, crop_size, step, thresh, min_std, max_per_photo, train_photos, heldout_photos)
    old = read_manifest(root)
    if not force and old is not None and old.get('settings') == settings and (old['lmdb'] or not lmdb) \
            and _complete(root, old):
        if verbose:
            print(f"[demo data] {root} is up to date ({len(old['files']['train'])} train sub-images, "
                  f"{len(old['files']['val'])} held-out photos); --force rebuilds it.")
        return old
    for split in ('train', 'val'):
        shutil.rmtree(osp.join(root, split), ignore_errors=True)
    lr_sub = osp.join('LR_bicubic', f'X{scale}')

    files: Dict[str, List[str]] = {'train': [], 'val': []}
    photos = available_photos(train_photos)
    if not photos:
        raise RuntimeError('None of the training photos loads from skimage.data; is scikit-image installed?')
    for name, rgb in photos.items():
        bgr = modcrop(np.ascontiguousarray(rgb[..., ::-1]), scale)
        subs = extract_subimages(bgr, crop_size, step, thresh, min_std, max_per_photo)
        lrs = bicubic_downsample([s for _, s in subs], scale)
        for (index, hr), lr in zip(subs, lrs):
            fname = f'{name}_s{index:03d}.png'
            write_image(osp.join(root, 'train', 'HR', fname), hr)
            write_image(osp.join(root, 'train', lr_sub, fname), lr)
            files['train'].append(fname)
        if verbose:
            print(f'[demo data] train  {name:22s} {rgb.shape[1]}x{rgb.shape[0]} -> {len(subs)} sub-images')

    held = available_photos(heldout_photos)
    if not held:
        raise RuntimeError('None of the held-out photos loads from skimage.data.')
    for name, rgb in held.items():
        hr = modcrop(np.ascontiguousarray(rgb[..., ::-1]), scale)
        lr, = bicubic_downsample([hr], scale)
        fname = f'{name}.png'
        write_image(osp.join(root, 'val', 'HR', fname), hr)
        write_image(osp.join(root, 'val', lr_sub, fname), lr)
        files['val'].append(fname)
        if verbose:
            print(f'[demo data] held-out {name:20s} HR {hr.shape[1]}x{hr.shape[0]}, LR {lr.shape[1]}x{lr.shape[0]}')

    lmdbs = []
    if lmdb:
        for sub, lmdb_name in (('HR', 'HR.lmdb'), (lr_sub, f'LR_bicubic_X{scale}.lmdb')):
            make_lmdb(osp.join(root, 'train', sub), osp.join(root, 'train', lmdb_name), files['train'],
                      overwrite=True, quiet=True)
            lmdbs.append(lmdb_name)
            if verbose:
                print(f'[demo data] wrote {osp.join(root, "train", lmdb_name)}')
        for subset, photos in settings['subsets'].items():
            names = [n for n in files['train'] if n.rsplit('_s', 1)[0] in photos]
            for sub, lmdb_name in (('HR', 'HR.lmdb'), (lr_sub, f'LR_bicubic_X{scale}.lmdb')):
                rel = osp.join('subsets', subset, lmdb_name)
                os.makedirs(osp.join(root, 'train', 'subsets', subset), exist_ok=True)
                make_lmdb(osp.join(root, 'train', sub), osp.join(root, 'train', rel), names, overwrite=True,
                          quiet=True)
                lmdbs.append(rel)
            if verbose:
                print(f'[demo data] wrote {osp.join(root, "train", "subsets", subset)} ({len(names)} sub-images)')
    manifest = dict(settings=settings, files=files, lmdb=lmdbs)
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest
