"""The teacher-label store: the teacher's output on every training LR image, computed once.

Layout (``datasets.train.dataroot_teacher``):

* a folder of 16-bit PNGs ``<key>.png`` (``key``: the LR file's stem, or its LMDB key), or
* an LMDB folder (name ending ``.lmdb``) in BasicSR's layout: ``data.mdb``, ``lock.mdb`` and
  ``meta_info.txt`` (``<key>.png (h,w,c) <compression>``), values are the same 16-bit PNG bytes;
* ``manifest.json`` in either: the teacher (SHA-256 of its checkpoint, ``network_t``, the key its weights
  came from: ``loaded_param_key``), the scale, the precision, the tiling, the format and every image with
  its LR and label size and ``lq_sha256``, the hash of the LR its label was computed from (null until that
  label is written). ``complete`` is false until the last label is written.

Labels are RGB outputs stored in OpenCV's BGR order like every other image, ``round(clamp(T(x), 0, 1) * 65535)``.
Built by ``python -m dukd_arch.teacher_labels``; read by the training datasets (``data/teacher_label_dataset.py``).
"""
import json
import logging
import os
import struct
import tempfile
from os import path as osp
from typing import Dict, Optional, Tuple

import cv2
import numpy as np
import torch

from ..io.checkpoint import extract_state_dict, read_checkpoint
from ..io.shipped import resolve, sha256_file

MANIFEST = 'manifest.json'
VERSION = 1
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'\x00\x00\x00\x00IEND\xaeB`\x82'  # the IEND chunk every complete PNG ends with
MAX_16BIT = 65535.0
BUILD_COMMAND = 'python -m dukd_arch.teacher_labels -opt <your options file>'


class LabelStoreError(ValueError):
    """The store cannot be used for this run; the message names the file and the fix."""


# ------------------------------------------------------------------------------------------- hashing
def teacher_checkpoint(opt: dict) -> Optional[str]:
    """The file the teacher's weights come from: ``path.pretrain_network_t``, else ``network_t.path`` (AutoTeacher);
    a shipped ``dukd:<file>`` as its path in the package."""
    return resolve((opt.get('path') or {}).get('pretrain_network_t') or (opt.get('network_t') or {}).get('path'))


def loaded_param_key(opt: dict, ckpt: str) -> Optional[str]:
    """The key of ``ckpt`` the teacher's weights come from under ``path.param_key_t`` (None auto-detects, as the
    loader does: ``params`` before ``params_ema``); '' for a bare state dict; the option itself when the file
    cannot be read here (the loader then says why)."""
    key = (opt.get('path') or {}).get('param_key_t')
    try:
        return extract_state_dict(read_checkpoint(ckpt), key, ckpt)[1]
    except (OSError, ValueError, KeyError, RuntimeError):
        return key


def stored_param_key(manifest: dict, ckpt: str) -> Optional[str]:
    """The key the store's teacher was read from. Stores from before it was recorded: their option, resolved on
    ``ckpt``, the file with the store's SHA-256 (checked first by the callers)."""
    if 'loaded_param_key' in manifest:
        return manifest['loaded_param_key']
    return loaded_param_key({'path': {'param_key_t': manifest['teacher'].get('param_key_t')}}, ckpt)


def plain(obj):
    """Options (OrderedDicts from YAML) as plain JSON values, for storing and comparing."""
    return json.loads(json.dumps(obj))


# ------------------------------------------------------------------------------------------- images
def encode_label(out: torch.Tensor, compression: int = 0) -> bytes:
    """A (3, H, W) RGB output in [0, 1] as 16-bit BGR PNG bytes."""
    arr = (out.detach().float().clamp(0, 1) * MAX_16BIT).round().to(torch.int32).cpu().numpy()
    arr = np.ascontiguousarray(arr.transpose(1, 2, 0)[..., ::-1].astype(np.uint16))
    ok, buf = cv2.imencode('.png', arr, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise OSError('OpenCV could not encode a 16-bit PNG')
    return buf.tobytes()


def decode_label(content: bytes, where: str) -> np.ndarray:
    """16-bit PNG bytes as an HWC BGR uint16 array (``label_to_float`` scales it to [0, 1])."""
    img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED) if content else None
    if img is None:
        raise LabelStoreError(f'teacher label {where} cannot be decoded (truncated or corrupt): rebuild the store '
                              f'with `{BUILD_COMMAND}` (it rewrites damaged labels).')
    if img.dtype != np.uint16:
        raise LabelStoreError(f'teacher label {where} is {img.dtype}, not 16-bit: it was not written by '
                              f'dukd_arch.teacher_labels. Rebuild the store with `{BUILD_COMMAND}`.')
    return img


def label_to_float(img: np.ndarray) -> np.ndarray:
    """A decoded label (or a crop of it) as float32 in [0, 1]."""
    return img.astype(np.float32) / MAX_16BIT


def png_size(head: bytes) -> Optional[Tuple[int, int]]:
    """(height, width) from the first 24 bytes of a PNG, or None when they are not a PNG header."""
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b'IHDR':
        return None
    width, height = struct.unpack('>II', head[16:24])
    return height, width


def png_file_status(path: str) -> Tuple[Optional[Tuple[int, int]], bool]:
    """((height, width) or None, complete) of a PNG file without decoding it: header + final IEND chunk."""
    try:
        with open(path, 'rb') as f:
            head = f.read(24)
            size = os.fstat(f.fileno()).st_size
            if size < len(PNG_END):
                return png_size(head), False
            f.seek(size - len(PNG_END))
            return png_size(head), f.read() == PNG_END
    except OSError:
        return None, False


def image_size(path: str) -> Tuple[int, int]:
    """(height, width) of an image file; PNG from its header, other formats by decoding."""
    with open(path, 'rb') as f:
        size = png_size(f.read(24))
    if size is not None:
        return size
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f'cannot read image {path}')
    return img.shape[:2]


def lmdb_meta_sizes(lmdb_root: str) -> Dict[str, Tuple[int, int]]:
    """key -> (height, width) from a BasicSR LMDB's ``meta_info.txt``."""
    sizes = {}
    with open(osp.join(lmdb_root, 'meta_info.txt')) as f:
        for line in f:
            if line.strip():
                name, shape = line.split(' ')[:2]
                h, w = shape.strip('()').split(',')[:2]
                sizes[osp.splitext(name)[0]] = (int(h), int(w))
    return sizes


def label_key(lq_path: str, lmdb_source: bool) -> str:
    """The label's key for a training pair: the LR image's LMDB key, or its file stem."""
    return lq_path if lmdb_source else osp.splitext(osp.basename(lq_path))[0]


def is_lmdb(root: str) -> bool:
    return str(root).rstrip('/').endswith('.lmdb')


# ------------------------------------------------------------------------------------------- manifest
def manifest_path(root: str) -> str:
    return osp.join(root, MANIFEST)


def write_manifest(root: str, manifest: dict) -> None:
    """Atomic: a kill mid-write leaves the previous manifest."""
    path = manifest_path(root)
    fd, tmp = tempfile.mkstemp(prefix=f'.{MANIFEST}.', suffix='.tmp', dir=root)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the store is shared like the images beside it
    with os.fdopen(fd, 'w') as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_manifest(root: str, option: str = 'datasets.train.dataroot_teacher') -> dict:
    """The store's manifest; a missing, unreadable or unfinished one is an error that says what to run."""
    path = manifest_path(root)
    if not osp.isdir(root):
        raise LabelStoreError(f'{option}: {root!r} does not exist. Build the teacher labels first: '
                              f'`{BUILD_COMMAND}` (writes them to dataroot_teacher).')
    if not osp.isfile(path):
        raise LabelStoreError(f'{option}: {root!r} has no {MANIFEST}, so nothing says which teacher made its '
                              f'labels. Build the store with `{BUILD_COMMAND}`.')
    try:
        with open(path) as f:
            manifest = json.load(f)
        missing = [k for k in ('version', 'format', 'scale', 'teacher', 'images', 'complete') if k not in manifest]
        if missing:
            raise ValueError(f'missing keys {missing}')
    except (OSError, ValueError) as err:
        raise LabelStoreError(f'{option}: {path} cannot be read ({err}). Delete {root!r} and rebuild it with '
                              f'`{BUILD_COMMAND}`.') from err
    if manifest['version'] != VERSION:
        raise LabelStoreError(f'{path} is a version-{manifest["version"]} store; this dukd reads version {VERSION}. '
                              f'Rebuild it with `{BUILD_COMMAND}`.')
    if not manifest['complete']:
        raise LabelStoreError(f'{path}: the build of its {len(manifest["images"])} labels was interrupted. Run '
                              f'`{BUILD_COMMAND}` again: it resumes where it stopped.')
    return manifest


def check_teacher(manifest: dict, root: str, opt: dict) -> None:
    """The labels were made by this run's teacher (checkpoint hash and ``network_t``) at its scale."""
    where = manifest_path(root)
    stored = manifest['teacher']
    if int(manifest['scale']) != int(opt['scale']):
        raise LabelStoreError(f'{where}: the labels were made at x{manifest["scale"]} but `scale: {opt["scale"]}` '
                              f'is set. Point dataroot_teacher at x{opt["scale"]} labels, or build them with '
                              f'`python -m dukd_arch.teacher_labels -opt <options> --out <new folder>`.')
    ckpt = teacher_checkpoint(opt)
    if ckpt is None or not osp.isfile(ckpt):
        raise LabelStoreError(f'path.pretrain_network_t ({ckpt!r}) is not a file, so the teacher labels in {root!r} '
                              'cannot be checked against it. Fix the teacher path.')
    digest = sha256_file(ckpt)
    if digest != stored['sha256']:
        raise LabelStoreError(f'{where}: the labels were made by another teacher (checkpoint {stored["checkpoint"]}, '
                              f'sha256 {stored["sha256"][:16]}...) than path.pretrain_network_t {ckpt} (sha256 '
                              f'{digest[:16]}...). Rebuild them for this teacher: `python -m dukd_arch.teacher_labels '
                              '-opt <options> --out <new folder>`, and point dataroot_teacher there.')
    if plain(stored['network_t']) != plain(opt.get('network_t')):
        raise LabelStoreError(f'{where}: the labels were made with network_t {stored["network_t"]} but the options '
                              f'say {plain(opt.get("network_t"))}. Make network_t match, or rebuild the labels '
                              'with these options.')
    used, now = stored_param_key(manifest, ckpt), loaded_param_key(opt, ckpt)
    if used != now:
        raise LabelStoreError(f'{where}: the labels were made from the weights under {used!r} in {ckpt}, but this '
                              f'run\'s teacher loads {now!r} (path.param_key_t). Set param_key_t: {used}, or rebuild '
                              'the labels with these options.')


def check_run_store(opt: dict, synthesising: bool = False) -> bool:
    """At model setup: is ``datasets.train.dataroot_teacher`` usable for this run? Logs the mode once; True when
    the real-pair KD term reads stored labels. (The dataset has checked the labels themselves.)"""
    from basicsr.utils.registry import DATASET_REGISTRY

    logger = logging.getLogger('basicsr')
    train_set = (opt.get('datasets') or {}).get('train') or {}
    root = train_set.get('dataroot_teacher')
    if root is None:
        logger.info('Real-pair KD term: live teacher (datasets.train.dataroot_teacher is not set).')
        return False
    if synthesising:
        raise LabelStoreError('datasets.train.dataroot_teacher: real-world training synthesises a new LR for every '
                              'batch on the fly, so no stored teacher output can match it. Remove the key: teacher '
                              'labels apply to paired (bicubic) training data only.')
    data_type = train_set.get('type')
    if not getattr(DATASET_REGISTRY._obj_map.get(data_type), 'loads_teacher_labels', False):
        raise LabelStoreError(f'datasets.train.type {data_type} does not read dataroot_teacher, so the labels would be '
                              'ignored: use UpcyclingPairedImageDataset, or TeacherLabelPairedImageDataset (BasicSR\'s '
                              'PairedImageDataset plus the labels).')
    manifest = read_manifest(root)
    check_teacher(manifest, root, opt)
    logger.info(f"Real-pair KD term: stored teacher labels, {len(manifest['images'])} images in {root} "
                f"({manifest['precision']}; teacher sha256 {manifest['teacher']['sha256'][:12]}). The teacher runs "
                'only for the run\'s other teacher terms, if any (zoom-in, zoom-out, feature KD).')
    return True
