"""Compute the teacher's output on every training LR image once (the teacher-label store).

    python -m dukd_arch.teacher_labels -opt OPTIONS.yml [--out DIR] [--tile N] [--device cuda] [--bf16]

Runs ``network_t`` (weights from ``path.pretrain_network_t``) in eval mode under no_grad over every LR
image of ``datasets.train`` (disk or LMDB, the pairs the training dataset finds) and writes 16-bit PNGs,
or an LMDB in BasicSR's layout when ``--out`` ends in ``.lmdb``, plus ``manifest.json`` (format in
``data/label_store.py``). ``--out`` defaults to ``datasets.train.dataroot_teacher``. Then training with
that key uses the stored labels for the real-pair KD term (docs/teacher_labels.md).

Resumable: a re-run skips finished labels and rewrites missing, truncated or wrong-sized ones, and those
whose LR image changed (the manifest keeps the SHA-256 of the LR each label was computed from). Each label is
written atomically (a temporary file renamed over the target; an LMDB transaction).
``--tile`` bounds memory on large images; tiles overlap by ``--tile-overlap`` LR pixels, and the top-left
2 x 2 tiles of the first tiled image (where tiles meet) are checked to match an untiled run within 1/65535 (the
label's own precision).
"""
import argparse
import copy
import hashlib
import json
import os
import sys
import time
from os import path as osp

import torch

from .devices import command_device
from .ops import forward_padded, tiled_forward, tiling_error
from .data.label_store import (MAX_16BIT, VERSION, LabelStoreError, encode_label, image_size, is_lmdb, label_key,
                                lmdb_meta_sizes, loaded_param_key, manifest_path, plain, png_file_status, png_size,
                                stored_param_key, teacher_checkpoint, write_manifest)
from .io.shipped import sha256_file
from .training.precision import autocast
from .archs.teacher import build_teacher, probe_scale, window_multiple

TILE_TOLERANCE = 1 / MAX_16BIT
PROGRESS_SECONDS = 60  # how often an unfinished manifest records the labels written so far
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def training_pairs(opt: dict):
    """The training dataset's pairs (its own pairing rules: folders, meta_info, LMDB) and its io options."""
    from basicsr.data import build_dataset

    if 'train' not in (opt.get('datasets') or {}):
        raise ValueError('the options file has no `datasets: train:` section, so there are no training images.')
    dataset_opt = copy.deepcopy(dict(opt['datasets']['train']))
    dataset_opt.pop('dataroot_teacher', None)  # the store being built is not read here
    dataset_opt.update(phase='train', scale=opt['scale'])
    dataset = build_dataset(dataset_opt)
    paths = getattr(dataset, 'paths', None)
    if not paths or not isinstance(paths[0], dict) or 'lq_path' not in paths[0]:
        raise ValueError(f"datasets.train.type {dataset_opt.get('type')} has no stored LR images (real-world "
                         'training synthesises its LR on the fly): teacher labels apply to paired bicubic data only.')
    return dataset


class PngStore:
    """A folder of ``<key>.png``."""

    def __init__(self, root: str, compression: int):
        self.root, self.compression = root, compression
        os.makedirs(root, exist_ok=True)

    def path(self, key):
        return osp.join(self.root, f'{key}.png')

    def done(self, key, size) -> bool:
        found, complete = png_file_status(self.path(key))
        return complete and found == tuple(size)

    def put(self, key, content: bytes):
        path = self.path(key)
        tmp = f'{path}.{os.getpid()}.tmp'
        with open(tmp, 'wb') as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def sync(self):
        pass  # each label is fsynced as it is written

    def finish(self, images):
        pass


class LmdbStore:
    """An LMDB in BasicSR's layout (``data.mdb`` + ``meta_info.txt``); one transaction per label."""

    def __init__(self, root: str, compression: int, images):
        import lmdb
        self.root, self.compression = root, compression
        raw = sum(h * w * 3 * 2 for h, w in (im['label_size'] for im in images))
        self.env = lmdb.open(root, map_size=int(raw * 1.5) + (64 << 20))

    def done(self, key, size) -> bool:
        with self.env.begin() as txn:
            value = txn.get(key.encode('ascii'))
        return value is not None and png_size(bytes(value[:24])) == tuple(size)

    def put(self, key, content: bytes):
        with self.env.begin(write=True) as txn:
            txn.put(key.encode('ascii'), content)

    def sync(self):
        self.env.sync()

    def finish(self, images):
        self.env.sync()
        lines = [f"{im['key']}.png ({im['label_size'][0]},{im['label_size'][1]},3) {self.compression}\n"
                 for im in images]
        tmp = osp.join(self.root, f'meta_info.txt.{os.getpid()}.tmp')
        with open(tmp, 'w') as f:
            f.writelines(lines)
        os.replace(tmp, osp.join(self.root, 'meta_info.txt'))
        self.env.close()


def _header(opt: dict, fmt: str, precision: str, ckpt: str) -> dict:
    return {
        'version': VERSION, 'format': fmt, 'scale': int(opt['scale']), 'dtype': 'uint16', 'channel_order': 'BGR',
        'teacher': {'checkpoint': ckpt, 'sha256': sha256_file(ckpt), 'network_t': plain(opt['network_t']),
                    'param_key_t': (opt.get('path') or {}).get('param_key_t')},
        'loaded_param_key': loaded_param_key(opt, ckpt),
        'precision': precision,
    }


def _check_out(out: str, dataset) -> None:
    """``--out`` must not be (or sit inside) the training images' folders, and must not be a folder of images that
    is not a store: labels written there would overwrite, or be mistaken for, the training data."""
    target = osp.realpath(out)
    for option, root in (('dataroot_lq', dataset.lq_folder), ('dataroot_gt', dataset.gt_folder)):
        root = osp.realpath(root)
        if target == root or target.startswith(root + os.sep):
            raise LabelStoreError(f'--out {out!r} is inside datasets.train.{option} ({root}): the labels would '
                                  'overwrite or mix with the training images. Give the store a folder of its own, '
                                  'e.g. beside the LR folder.')
    if osp.isdir(out) and not osp.isfile(manifest_path(out)):
        foreign = [f for f in os.listdir(out) if f.lower().endswith(IMAGE_SUFFIXES) or f == 'data.mdb']
        if foreign:
            raise LabelStoreError(f'--out {out!r} holds {len(foreign)} images (e.g. {foreign[0]}) but no '
                                  'manifest.json, so it is not a teacher-label store: choose an empty or new folder.')


def _previous_manifest(out: str, header: dict) -> dict:
    """The manifest of an existing store in ``out`` ({} when none), which must come from the same teacher, scale,
    format and precision."""
    path = manifest_path(out)
    if not osp.isfile(path):
        return {}
    try:  # complete or interrupted alike: its header, and which LR each finished label came from
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError) as err:
        raise LabelStoreError(f'{path} cannot be read ({err}); delete {out!r} to rebuild the store.') from err
    for key in ('format', 'scale', 'precision', 'teacher'):
        same = _same_teacher(old, header) if key == 'teacher' else old.get(key) == header[key]
        if not same:
            raise LabelStoreError(f'{manifest_path(out)}: the store there was made with another {key} '
                                  f'({old.get(key)!r} vs now {header[key]!r}). Choose another --out, or delete '
                                  f'{out!r} to rebuild it.')
    return old


def _same_teacher(old: dict, header: dict) -> bool:
    a, b = old.get('teacher') or {}, header['teacher']
    return (a.get('sha256') == b['sha256'] and plain(a.get('network_t')) == b['network_t']
            and stored_param_key(old, b['checkpoint']) == header['loaded_param_key'])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dukd_arch.teacher_labels', description=__doc__.split('\n\n')[0])
    parser.add_argument('-opt', required=True, help='training options file (network_t, path.pretrain_network_t, '
                        'datasets.train)')
    parser.add_argument('--out', help='store folder (default: datasets.train.dataroot_teacher); ".lmdb": LMDB')
    parser.add_argument('--tile', type=int, default=None, help='LR tile size (default: whole images)')
    parser.add_argument('--tile-overlap', type=int, default=32, help='LR pixels of context around each tile')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: the accelerator if any)')
    parser.add_argument('--bf16', action='store_true', help='teacher under bf16 autocast (labels in 16-bit anyway)')
    parser.add_argument('--compression', type=int, default=0, help='PNG compression level 0-9 (default 0: fastest '
                        'to decode; 9: a smaller store that decodes slower; docs/teacher_labels.md)')
    args = parser.parse_args(argv)
    if args.tile is not None and args.tile < 1:
        parser.error(f'--tile {args.tile}: give the LR tile size in pixels (1 or more), or leave it out')
    if args.tile_overlap < 0:
        parser.error(f'--tile-overlap {args.tile_overlap}: must be 0 or more')
    if not 0 <= args.compression <= 9:
        parser.error(f'--compression {args.compression}: PNG compression levels are 0-9')
    import yaml
    try:
        return build_labels(args)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as err:  # LabelStoreError is a ValueError
        print(f'error: {err}', file=sys.stderr)
        return 2


def build_labels(args) -> int:
    """The teacher's output on every training LR image into the store (resuming one that is there)."""
    from tqdm import tqdm

    from basicsr.utils import FileClient, imfrombytes, img2tensor

    import dukd_arch  # noqa: F401  (registers archs and datasets)
    from .options.file import load_options

    opt = load_options(args.opt)
    out = args.out or (opt.get('datasets', {}).get('train') or {}).get('dataroot_teacher')
    if not out:
        raise ValueError('give --out, or set datasets.train.dataroot_teacher in the options file')
    out = out.rstrip('/')
    device = command_device(args.device)
    if not isinstance(opt.get('scale'), int):
        raise ValueError(f'{args.opt}: `scale:` (the SR factor) is missing or not a whole number')
    scale = opt['scale']
    ckpt = teacher_checkpoint(opt)
    if ckpt is None:
        raise ValueError('path.pretrain_network_t is not set: there is no trained teacher to label with.')
    teacher = build_teacher(opt, device)
    found = probe_scale(teacher, device)
    if found != scale:
        raise ValueError(f'the teacher (network_t) upscales x{found} but `scale: {scale}` is set; fix one of them.')

    dataset = training_pairs(opt)
    lmdb_source = dataset.io_backend_opt['type'] == 'lmdb'
    lq_sizes = lmdb_meta_sizes(dataset.lq_folder) if lmdb_source else None
    images, seen = [], {}
    for pair in dataset.paths:
        key = label_key(pair['lq_path'], lmdb_source)
        if key in seen:
            raise ValueError(f"two training LR images share the label key {key!r}: {seen[key]} and {pair['lq_path']}; "
                             'rename one (labels are named by the LR file stem).')
        seen[key] = pair['lq_path']
        h, w = lq_sizes[key] if lmdb_source else image_size(pair['lq_path'])
        images.append({'key': key, 'lq': pair['lq_path'], 'lr_size': [h, w], 'label_size': [h * scale, w * scale]})

    fmt = 'lmdb' if is_lmdb(out) else 'png16'
    _check_out(out, dataset)
    header = _header(opt, fmt, 'bf16' if args.bf16 else 'fp32', ckpt)
    header.update(tile=args.tile, tile_overlap=args.tile_overlap if args.tile else None, lq_root=dataset.lq_folder)
    previous = {im['key']: im.get('lq_sha256') for im in _previous_manifest(out, header).get('images', [])}
    os.makedirs(out, exist_ok=True)
    store = LmdbStore(out, args.compression, images) if fmt == 'lmdb' else PngStore(out, args.compression)

    io_opt = copy.deepcopy(dataset.io_backend_opt)
    client = FileClient(io_opt.pop('type'), **io_opt)
    # A finished label is kept only when it was computed from the LR image there now (same SHA-256); an entry's
    # hash is set only once its label is written, so an interrupted manifest never vouches for a stale label.
    for im in tqdm(images, desc='hashing the LR images', unit='img', file=sys.stdout, leave=False):
        digest = hashlib.sha256(client.get(im['lq'], 'lq')).hexdigest()
        keep = previous.get(im['key']) == digest and store.done(im['key'], im['label_size'])
        im['lq_sha256'], im['_digest'] = digest if keep else None, digest
    public = lambda: [{k: v for k, v in im.items() if k != '_digest'} for im in images]  # noqa: E731
    write_manifest(out, {**header, 'images': public(), 'complete': False})
    multiple = window_multiple(teacher)
    dtype = torch.bfloat16 if args.bf16 else None

    def run(x):
        with autocast(device, dtype):
            return forward_padded(teacher, x, multiple, scale).float()

    start, written, checked = time.perf_counter(), 0, args.tile is None
    saved = start
    with torch.no_grad():
        for im in tqdm(images, desc=f'teacher labels -> {out}', unit='img', file=sys.stdout):
            if im['lq_sha256'] is not None:
                continue
            lq = img2tensor(imfrombytes(client.get(im['lq'], 'lq'), float32=True), bgr2rgb=True, float32=True)
            x = lq[None].to(device)
            if not checked and max(x.shape[-2:]) > args.tile:
                err = tiling_error(run, x, scale, args.tile, args.tile_overlap)
                if err > TILE_TOLERANCE:
                    raise ValueError(f"tiled and untiled teacher outputs differ by {err:.2e} (> 1/65535) on "
                                     f"{im['lq']}: raise --tile-overlap (it must cover the receptive field) or "
                                     '--tile, or run without --tile. Networks with global operations never tile '
                                     'exactly.')
                checked = True
            y = tiled_forward(run, x, scale, args.tile, args.tile_overlap)[0]
            store.put(im['key'], encode_label(y, args.compression))
            im['lq_sha256'] = im['_digest']
            written += 1
            if time.perf_counter() - saved > PROGRESS_SECONDS:
                store.sync()  # the labels are on disk before the manifest says so
                write_manifest(out, {**header, 'images': public(), 'complete': False})
                saved = time.perf_counter()
    store.finish(images)
    seconds = time.perf_counter() - start
    write_manifest(out, {**header, 'images': public(), 'complete': True})
    size = sum(osp.getsize(osp.join(out, f)) for f in os.listdir(out) if osp.isfile(osp.join(out, f)))
    print(f'{len(images)} teacher labels in {out} ({written} computed now, {len(images) - written} already there; '
          f'{seconds:.1f} s on {device}, store {size / 2**20:.1f} MiB).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
