"""Data of the gain study (docs/gain_protocol.md): who sees which photographs.

Two photo sources, split by whole photographs and fixed before any run:

* scikit-image's colour photos (pip-installed): the demo's six training photos, cut into sub-images
  exactly as ``make demo`` does (``datasets/demo/train``). Students see all six, two or one of them
  (``datasets/demo/train`` and its ``subsets/{two,one}`` LMDBs, ``dukd_arch.demo.data.SUBSETS``).
* Debian's ``mate-backgrounds`` nature photographs (``scripts/fetch_photos.py``), reduced by 2 with
  MATLAB bicubic (their JPEG blocks shrink below one pixel, as DIV2K-style clean HR):
  six go to the teacher's training set only, two are the validation split (settings and convergence
  are chosen there), four are the held-out test split (scored once per run, after the protocol commit).

The teacher trains on the six demo photos plus its six nature photos, like a public teacher trained on
more data than the user's own students see. Layout under ``root`` (default ``datasets/gain``)::

    teacher/{HR,LR_bicubic_X4}.lmdb        teacher's training sub-images (both sources)
    val/{HR,LR_bicubic/X4}/<photo>.png     test/{HR,LR_bicubic/X4}/<photo>.png
    manifest.json                          settings and file lists; a matching one means "already built"
"""
import json
import os
import shutil
from os import path as osp
from typing import Dict, List

import cv2
import numpy as np
import torch

from dukd_arch.demo.data import DEFAULTS, build_demo_set
from dukd_arch.data.sr_data import bicubic_downsample, extract_subimages, make_lmdb, modcrop, write_image
from dukd_arch.ops import matlab_imresize

NATURE_TEACHER = ('Aqua', 'Blinds', 'FreshFlower', 'Garden', 'GreenMeadow', 'Storm')
NATURE_VAL = ('RainDrops', 'TwoWings')
NATURE_TEST = ('Dune', 'LadyBird', 'Wood', 'YellowFlower')
NATURE_REDUCE = 2
NATURE_MAX_PER_PHOTO = 40
VERSION = 1



def load_nature_photo(photos_dir: str, name: str) -> np.ndarray:
    """BGR uint8 photo reduced by ``NATURE_REDUCE`` with MATLAB bicubic, cropped to a multiple of the scale."""
    path = osp.join(photos_dir, f'{name}.jpg')
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'{path} is missing or unreadable; run `python scripts/fetch_photos.py` first.')
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).double()
    small = matlab_imresize(t, 1 / NATURE_REDUCE).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    return modcrop(np.ascontiguousarray(small), DEFAULTS['scale'])


def _settings(photos_dir: str) -> dict:
    return dict(version=VERSION, demo=dict(DEFAULTS), nature_teacher=list(NATURE_TEACHER),
                nature_val=list(NATURE_VAL), nature_test=list(NATURE_TEST),
                nature_reduce=NATURE_REDUCE, nature_max_per_photo=NATURE_MAX_PER_PHOTO,
                photos_sha=_photo_sums(photos_dir))


def _photo_sums(photos_dir: str) -> Dict[str, str]:
    path = osp.join(photos_dir, 'SHA256SUMS')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found; run `python scripts/fetch_photos.py` first.')
    with open(path) as f:
        return {n: h for h, n in (line.split() for line in f if line.strip())}


def _complete(root: str, manifest: dict) -> bool:
    for lmdb_dir in manifest['lmdb']:
        if not osp.isfile(osp.join(root, lmdb_dir, 'meta_info.txt')):
            return False
    for split in ('val', 'test'):
        for name in manifest['files'][split]:
            for sub in ('HR', 'LR_bicubic/X4'):
                if not osp.isfile(osp.join(root, split, sub, name)):
                    return False
    return True


def build_gain_set(root: str = 'datasets/gain', photos_dir: str = 'datasets/photos/mate_nature',
                   demo_root: str = 'datasets/demo', force: bool = False, verbose: bool = True) -> dict:
    """Build (or reuse) the study's data under ``root``; returns the manifest. Deterministic."""
    scale = DEFAULTS['scale']
    settings = _settings(photos_dir)
    manifest_path = osp.join(root, 'manifest.json')
    if not force and osp.isfile(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
        if old.get('settings') == settings and _complete(root, old):
            if verbose:
                print(f'[gain data] {root} is up to date; --force rebuilds it.')
            return old
    demo = build_demo_set(demo_root, verbose=verbose)
    for sub in ('teacher', 'val', 'test', 'nature_sub'):
        shutil.rmtree(osp.join(root, sub), ignore_errors=True)

    # teacher-only nature sub-images, written beside the demo's so one LMDB can hold both
    nature_dir = osp.join(root, 'nature_sub')
    nature_files: List[str] = []
    for name in NATURE_TEACHER:
        hr_img = load_nature_photo(photos_dir, name)
        subs = extract_subimages(hr_img, DEFAULTS['crop_size'], DEFAULTS['step'], DEFAULTS['thresh'],
                                 DEFAULTS['min_std'], NATURE_MAX_PER_PHOTO)
        for (index, hr), lr in zip(subs, bicubic_downsample([s for _, s in subs], scale)):
            fname = f'{name}_s{index:03d}.png'
            write_image(osp.join(nature_dir, 'HR', fname), hr)
            write_image(osp.join(nature_dir, 'LR', fname), lr)
            nature_files.append(fname)
        if verbose:
            print(f'[gain data] teacher-only {name:12s} {hr_img.shape[1]}x{hr_img.shape[0]} -> {len(subs)} sub-images')

    demo_files = demo['files']['train']
    lr_sub = f'LR_bicubic/X{scale}'
    files = {'teacher': demo_files + nature_files}
    lmdbs = []

    def lmdb_pair(name: str, sources: List[tuple]):
        """LMDBs ``root/name/{HR,LR_bicubic_X4}.lmdb`` from (folder_hr, folder_lr, file names) sources."""
        staging = osp.join(root, name, '_staging')
        for hr_dir, lr_dir, names in sources:
            for n in names:
                for src, sub in ((hr_dir, 'HR'), (lr_dir, 'LR')):
                    os.makedirs(osp.join(staging, sub), exist_ok=True)
                    shutil.copyfile(osp.join(src, n), osp.join(staging, sub, n))
        all_names = [n for _, _, names in sources for n in names]
        for sub, lmdb_name in (('HR', 'HR.lmdb'), ('LR', f'LR_bicubic_X{scale}.lmdb')):
            make_lmdb(osp.join(staging, sub), osp.join(root, name, lmdb_name), all_names, overwrite=True, quiet=True)
            lmdbs.append(osp.join(name, lmdb_name))
        shutil.rmtree(staging)
        if verbose:
            print(f'[gain data] {name}: {len(all_names)} sub-images')

    demo_hr, demo_lr = osp.join(demo_root, 'train', 'HR'), osp.join(demo_root, 'train', lr_sub)
    lmdb_pair('teacher', [(demo_hr, demo_lr, demo_files),
                          (osp.join(nature_dir, 'HR'), osp.join(nature_dir, 'LR'), nature_files)])
    shutil.rmtree(nature_dir)

    for split, photos in (('val', NATURE_VAL), ('test', NATURE_TEST)):
        files[split] = []
        for name in photos:
            hr = load_nature_photo(photos_dir, name)
            lr, = bicubic_downsample([hr], scale)
            write_image(osp.join(root, split, 'HR', f'{name}.png'), hr)
            write_image(osp.join(root, split, lr_sub, f'{name}.png'), lr)
            files[split].append(f'{name}.png')
            if verbose:
                print(f'[gain data] {split:5s} {name:12s} HR {hr.shape[1]}x{hr.shape[0]}')
    manifest = dict(settings=settings, files=files, lmdb=lmdbs)
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest
