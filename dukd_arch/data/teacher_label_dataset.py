"""Paired training data with the teacher's precomputed output (``datasets.train.dataroot_teacher``).

The label of each training pair (the teacher's output on the whole LR image, ``label_store.py``)
is cropped, flipped and rotated together with the HR patch, by the same BasicSR helpers and the same
random draws, and goes into the batch as ``teacher``. The random stream is the one PairedImageDataset
uses, so a run with the store sees exactly the patches a run without it sees.

The whole store is checked when the dataset is built, before the first iteration: manifest, scale, a
label for every training image, and every label's size against its HR image.
"""
import os
from os import path as osp

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, img2tensor, imfrombytes
from basicsr.utils.registry import DATASET_REGISTRY

from .label_store import (BUILD_COMMAND, LabelStoreError, decode_label, image_size, is_lmdb, label_key,
                                 lmdb_meta_sizes, png_file_status, read_manifest)
from .bad_images import BadImageError

OPTION = 'datasets.train.dataroot_teacher'


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
        return len(dataset.paths)

    def load(self, lq_path: str, lmdb_source: bool):
        """The label of the pair whose LR is ``lq_path``: HWC BGR float32 in [0, 1]."""
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


class TeacherLabelMixin:
    """For a PairedImageDataset subclass: call ``_init_teacher_labels()`` after ``__init__`` and load pairs
    with ``_paired_item(index)``; without ``dataroot_teacher`` that is PairedImageDataset's own item."""

    loads_teacher_labels = True

    def _init_teacher_labels(self):
        root = self.opt.get('dataroot_teacher')
        self.teacher_labels = None
        if root is None:
            return
        name = self.opt.get('name')
        if self.opt['phase'] != 'train':
            raise ValueError(f'datasets.{name}.dataroot_teacher: teacher labels serve the training set only; '
                             'remove the key here.')
        if self.mean is not None or self.std is not None or self.opt.get('color') == 'y':
            raise ValueError(f'datasets.{name}.dataroot_teacher cannot be combined with mean/std or color: y (the '
                             'labels are the teacher output on the plain RGB image); remove one of them.')
        self.lmdb_source = self.io_backend_opt['type'] == 'lmdb'
        self.teacher_labels = TeacherLabels(os.fspath(root))
        self.teacher_label_count = self.teacher_labels.check(self)

    def _paired_item(self, index):
        if self.teacher_labels is None:
            return PairedImageDataset.__getitem__(self, index)
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        paths = self.paths[index]
        gt_path, lq_path = paths['gt_path'], paths['lq_path']
        img_gt = imfrombytes(self.file_client.get(gt_path, 'gt'), float32=True)
        img_lq = imfrombytes(self.file_client.get(lq_path, 'lq'), float32=True)
        img_t = self.teacher_labels.load(lq_path, self.lmdb_source)
        if img_t.shape != img_gt.shape:
            label = self.teacher_labels.path(label_key(lq_path, self.lmdb_source))
            raise BadImageError(f'teacher label {label} is {img_t.shape} but {gt_path} is {img_gt.shape}: the '
                                f'store no longer matches the data; rebuild it with `{BUILD_COMMAND}`.', label)
        # PairedImageDataset's crop and augmentation with the label riding along: the same random draws
        (img_gt, img_t), img_lq = paired_random_crop([img_gt, img_t], img_lq, self.opt['gt_size'],
                                                     self.opt['scale'], gt_path)
        img_gt, img_lq, img_t = augment([img_gt, img_lq, img_t], self.opt['use_hflip'], self.opt['use_rot'])
        img_gt, img_lq, img_t = img2tensor([img_gt, img_lq, img_t], bgr2rgb=True, float32=True)
        return {'lq': img_lq, 'gt': img_gt, 'teacher': img_t, 'lq_path': lq_path, 'gt_path': gt_path}


@DATASET_REGISTRY.register()
class TeacherLabelPairedImageDataset(TeacherLabelMixin, PairedImageDataset):
    """BasicSR's PairedImageDataset plus ``dataroot_teacher``: for output-KD runs that need no upcycling."""

    def __init__(self, opt):
        super().__init__(opt)
        self._init_teacher_labels()

    def __getitem__(self, index):
        return self._paired_item(index)
