"""Paired training data with the teacher's precomputed output (``datasets.train.dataroot_teacher``).

The label of each training pair (the teacher's output on the whole LR image, ``label_store.py``)
is cropped, flipped and rotated together with the HR patch, by the same BasicSR helpers and the same
random draws, and goes into the batch as ``teacher``. The random stream is the one PairedImageDataset
uses, so a run with the store sees exactly the patches a run without it sees.

The whole store is checked when the dataset is built, before the first iteration: manifest, scale, a
label for every training image, every label's size against its HR image, and (on up to ``LR_CHECKS`` images
spread over the set) that the LR image is the one the label was computed from (its SHA-256 in the manifest).

The same loader serves ``decoded_cache_mib`` (``decoded_cache.py``), with or without labels.
"""
import hashlib
import logging
import os
from os import path as osp

import numpy as np

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, img2tensor, imfrombytes
from basicsr.utils.registry import DATASET_REGISTRY

from .bad_images import BadImageError, BadImageSkipper, checked_pair, parse_policy
from .decoded_cache import DecodedImageCache
from .label_store import (BUILD_COMMAND, LabelStoreError, decode_label, image_size, is_lmdb, label_key,
                          label_to_float, lmdb_meta_sizes, png_file_status, read_manifest)
from .pair_folders import dataset_option

OPTION = 'datasets.train.dataroot_teacher'
LR_CHECKS = 64  # LR images hashed at start-up: catches a swapped or regenerated LR set without reading all of it


class TeacherLabels:
    """Reads the labels of one store; ``check`` validates it against a dataset's pairs."""

    def __init__(self, root: str):
        self.root = root
        self.lmdb = is_lmdb(root)
        self.manifest = read_manifest(root, OPTION)
        fmt = 'lmdb' if self.lmdb else 'png16'
        if self.manifest['format'] != fmt:
            raise LabelStoreError(f"{OPTION}: {root!r} holds a {self.manifest['format']} store but its name says "
                                  f'{fmt} (LMDB folders end in .lmdb). Rename it back or rebuild it.')
        self.client = None

    def path(self, key: str) -> str:
        return f'{self.root}:{key}' if self.lmdb else osp.join(self.root, f'{key}.png')

    def check(self, dataset: PairedImageDataset) -> int:
        """Every pair has a complete label of its HR size, at the dataset's scale; returns the label count."""
        scale = int(dataset.opt['scale'])
        if int(self.manifest['scale']) != scale:
            raise LabelStoreError(f"{OPTION}: {self.root!r} holds x{self.manifest['scale']} labels but the dataset "
                                  f'has `scale: {scale}`. Point it at x{scale} labels, or build them with '
                                  f'`{BUILD_COMMAND}` and another --out.')
        lmdb_source = dataset.lmdb_source
        label_sizes = lmdb_meta_sizes(self.root) if self.lmdb else None
        hr_sizes = lmdb_meta_sizes(dataset.gt_folder) if lmdb_source else None
        missing, wrong = [], []
        for pair in dataset.paths:
            key = label_key(pair['lq_path'], lmdb_source)
            if self.lmdb:
                size, complete = label_sizes.get(key), key in label_sizes
            else:
                size, complete = png_file_status(self.path(key))
            if size is None or not complete:
                missing.append((pair['lq_path'], self.path(key), size is not None))
                continue
            hr = hr_sizes[pair['gt_path']] if lmdb_source else image_size(pair['gt_path'])
            if tuple(size) != tuple(hr):
                wrong.append((self.path(key), size, pair['gt_path'], hr))
        if missing:
            lq, label, truncated = missing[0]
            what = 'is truncated' if truncated else 'is missing'
            raise LabelStoreError(f'{OPTION}: {len(missing)} of {len(dataset.paths)} training images have no usable '
                                  f'teacher label, e.g. {lq}: {label} {what}. Run `{BUILD_COMMAND}` (it adds '
                                  'missing labels and rewrites damaged ones).')
        if wrong:
            label, size, gt, hr = wrong[0]
            raise LabelStoreError(f'{OPTION}: {len(wrong)} teacher labels are not the size of their HR image, e.g. '
                                  f'{label} is {size[0]}x{size[1]} but {gt} is {hr[0]}x{hr[1]}: the labels were made '
                                  f'from other LR images. Rebuild them with `{BUILD_COMMAND}` and a new --out.')
        self._check_lr_images(dataset)
        return len(dataset.paths)

    def _check_lr_images(self, dataset: PairedImageDataset) -> None:
        """The labels were computed from these LR images: same names and sizes are not enough (a regenerated
        or swapped LR set has both)."""
        made_from = {im['key']: im.get('lq_sha256') for im in self.manifest['images']}
        if not any(made_from.values()):
            logging.getLogger('basicsr').warning(
                f'{OPTION}: {self.root!r} was built by an older dukd that did not record which LR images its labels '
                f'come from, so that cannot be checked. Rebuilding it (`{BUILD_COMMAND}`) adds the record.')
            return
        paths = dataset.paths
        step = max(1, len(paths) / LR_CHECKS)
        sample = sorted({paths[int(i * step)]['lq_path'] for i in range(min(LR_CHECKS, len(paths)))})
        env = None
        if dataset.lmdb_source:
            import lmdb
            env = lmdb.open(dataset.lq_folder, readonly=True, lock=False, readahead=False, meminit=False)
        try:
            for lq_path in sample:
                if env is not None:
                    with env.begin(write=False) as txn:
                        content = txn.get(lq_path.encode('ascii'))
                else:
                    with open(lq_path, 'rb') as f:
                        content = f.read()
                key = label_key(lq_path, dataset.lmdb_source)
                if content is None or hashlib.sha256(content).hexdigest() != made_from.get(key):
                    raise LabelStoreError(
                        f'{OPTION}: the teacher label {self.path(key)} was computed from another LR image than '
                        f'{lq_path} (the LR files were changed or swapped after the labels were built). Rebuild the '
                        f'labels: `{BUILD_COMMAND}` recomputes those whose LR changed.')
        finally:
            if env is not None:
                env.close()

    def load(self, lq_path: str, lmdb_source: bool):
        """The label of the pair whose LR is ``lq_path``: HWC BGR uint16 (``label_to_float`` scales it)."""
        key = label_key(lq_path, lmdb_source)
        try:
            if self.lmdb:
                if self.client is None:  # opened lazily: on the loader worker that uses it
                    self.client = FileClient('lmdb', db_paths=[self.root], client_keys=['teacher'])
                content = self.client.get(key, 'teacher')
            else:
                with open(self.path(key), 'rb') as f:
                    content = f.read()
            return decode_label(content, self.path(key))
        except (OSError, LabelStoreError) as err:
            raise BadImageError(f'bad teacher label {self.path(key)}: {err}', self.path(key)) from err


class TrainingPairMixin:
    """For a PairedImageDataset subclass: call ``_init_training_pairs()`` after ``__init__`` and load pairs with
    ``_paired_item(index)``. It adds ``dataroot_teacher`` (the stored teacher label rides along with the HR
    patch), ``decoded_cache_mib`` (decoded images kept in memory, ``decoded_cache.py``) and ``bad_images``
    (``load_checked`` stops at, or skips, a bad pair: ``bad_images.py``); with none, an item is
    PairedImageDataset's own."""

    loads_teacher_labels = True

    def _init_training_pairs(self):
        self.teacher_labels = self.decoded_cache = None
        root, cache_mib = self.opt.get('dataroot_teacher'), self.opt.get('decoded_cache_mib')
        for key, value in (('dataroot_teacher', root), ('decoded_cache_mib', cache_mib)):
            if value is None:
                continue
            if self.opt['phase'] != 'train':
                raise ValueError(f'{dataset_option(self.opt, key)}: serves the training set only; remove the key '
                                 'here.')
            if self.mean is not None or self.std is not None or self.opt.get('color') == 'y':
                why = ('teacher labels are the teacher output on the plain RGB image' if key == 'dataroot_teacher'
                       else 'the cached loader reads plain RGB images')
                raise ValueError(f'{dataset_option(self.opt, key)} cannot be combined with mean/std or color: y '
                                 f'({why}); remove one of them.')
        self.lmdb_source = self.io_backend_opt['type'] == 'lmdb'
        if cache_mib is not None:
            try:
                self.decoded_cache = DecodedImageCache(float(cache_mib))
            except (TypeError, ValueError):
                raise ValueError(f'{dataset_option(self.opt, "decoded_cache_mib")}: expected a size in MiB > 0, '
                                 f'got {cache_mib!r}; remove the key to decode every image each time.') from None
        if root is not None:
            self.teacher_labels = TeacherLabels(os.fspath(root))
            self.teacher_label_count = self.teacher_labels.check(self)
        self._skipper = BadImageSkipper(len(self.paths)) if parse_policy(self.opt) == 'skip' else None

    def load_checked(self, load, index):
        """``load(index)``, where ``load`` raises BadImageError naming a bad file: the error stops the run, or
        with ``bad_images: skip`` the pair is logged once and the next one is loaded."""
        return load(index) if self._skipper is None else self._skipper(load, index)

    def _decoded(self, key, decode):
        return decode() if self.decoded_cache is None else self.decoded_cache.get(key, decode)

    def _image(self, path: str, client_key: str):
        """An LR or HR image as decoded (HWC BGR uint8), as BasicSR's ``imfrombytes`` reads it."""
        return self._decoded((client_key, path), lambda: imfrombytes(self.file_client.get(path, client_key)))

    def _paired_item(self, index):
        if self.teacher_labels is None and self.decoded_cache is None:
            return PairedImageDataset.__getitem__(self, index)
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        paths = self.paths[index]
        gt_path, lq_path = paths['gt_path'], paths['lq_path']
        gts, lq = [self._image(gt_path, 'gt')], self._image(lq_path, 'lq')
        if self.teacher_labels is not None:
            label = self._decoded(('teacher', lq_path), lambda: self.teacher_labels.load(lq_path, self.lmdb_source))
            if label.shape != gts[0].shape:
                where = self.teacher_labels.path(label_key(lq_path, self.lmdb_source))
                raise BadImageError(f'teacher label {where} is {label.shape} but {gt_path} is {gts[0].shape}: the '
                                    f'store no longer matches the data; rebuild it with `{BUILD_COMMAND}`.', where)
            gts.append(label)
        # PairedImageDataset's crop and augmentation, with the label riding along: the same random draws. The
        # crop comes before the float conversion (the same values, without converting the whole image), and
        # the conversion copies, so augment's in-place flips never touch a decoded (cached) image.
        gts, lq = paired_random_crop(gts, lq, self.opt['gt_size'], self.opt['scale'], gt_path)
        gts = gts if isinstance(gts, list) else [gts]
        imgs = [to_float(gts[0]), to_float(lq)] + [label_to_float(t) for t in gts[1:]]
        imgs = img2tensor(augment(imgs, self.opt['use_hflip'], self.opt['use_rot']), bgr2rgb=True, float32=True)
        item = {'lq': imgs[1], 'gt': imgs[0], 'lq_path': lq_path, 'gt_path': gt_path}
        if self.teacher_labels is not None:
            item['teacher'] = imgs[2]
        return item


def to_float(img):
    """uint8 as float32 in [0, 1], as BasicSR's ``imfrombytes(..., float32=True)`` computes it."""
    return img.astype(np.float32) / 255.


@DATASET_REGISTRY.register()
class TeacherLabelPairedImageDataset(TrainingPairMixin, PairedImageDataset):
    """BasicSR's PairedImageDataset plus ``dataroot_teacher`` and ``decoded_cache_mib``: for output-KD runs."""

    def __init__(self, opt):
        super().__init__(opt)
        self._init_training_pairs()

    def __getitem__(self, index):
        return self.load_checked(lambda i: checked_pair(self, i, self._paired_item), index)
