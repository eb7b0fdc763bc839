"""Families 2 and 3, images and datasets: a tiny paired set (4 HR 32x32 / LR 16x16 PNG pairs, x2) with one
thing broken, read the way training and validation read it (every item of the dataset, built from options).

A broken file must be refused with its path in the message; an image that still decodes to the intended
pixels (16-bit, grey, RGBA) must give exactly them.
"""
import contextlib
import io
import os
import shutil

import cv2
import numpy as np

from basicsr.data import build_dataset
from conftest import SCALE, write_pairs
from verdict import ACCEPTED, DEFECT, Verdict, judge_error

N_PAIRS, HR_SIZE = 4, 32
DATASET_TYPES = ('UpcyclingPairedImageDataset', 'PairedImageDataset')


def _fresh_pairs(work, index):
    """A clean copy of the tiny set under ``work/<index>`` (the clean set is made once per ``work``)."""
    clean = os.path.join(work, 'clean')
    if not os.path.isdir(clean):
        write_pairs(clean, N_PAIRS, HR_SIZE, seed=0)
        for sub in ('HR', 'LR'):
            _lmdb(os.path.join(clean, sub), os.path.join(clean, f'{sub}.lmdb'))
    root = os.path.join(work, f'case{index}')
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(clean, root)
    return os.path.join(root, 'HR'), os.path.join(root, 'LR')


def dataset_options(hr, lr, dataset_type, phase, **extra):
    opt = {'name': 'fuzz', 'type': dataset_type, 'dataroot_gt': hr, 'dataroot_lq': lr, 'filename_tmpl': '{}',
           'io_backend': {'type': 'disk'}, 'phase': phase, 'scale': SCALE}
    if phase == 'train':
        opt.update(gt_size=16, use_hflip=True, use_rot=True)
    opt.update(extra)
    return opt


def read_all(opt):
    """Build the dataset from ``opt`` and read every item, as an epoch of training or a validation pass does."""
    dataset = build_dataset(opt)
    return [dataset[i] for i in range(len(dataset))]


def _gt_of(items, name):
    return next(item['gt'] for item in items if os.path.basename(item['gt_path']) == name)


# ------------------------------------------------------------------------------------------ images
def _damage_image(rng, hr, lr):
    """Break one image; returns (description, file, expected pixels of the HR image or None = must be refused)."""
    folder = rng.choice((hr, lr))
    name = f'{rng.randrange(N_PAIRS):03d}.png'
    path = os.path.join(folder, name)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    kind = rng.choice(('truncated_png', 'truncated_jpeg', 'zero_byte', 'sixteen_bit', 'grey', 'rgba',
                       'smaller_than_patch', 'size_mismatch', 'not_an_image'))
    expected = None
    if kind == 'truncated_png':
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:int(len(data) * rng.uniform(0.05, 0.95))])
    elif kind == 'truncated_jpeg':  # a JPEG under a .png name decodes the same (content decides)
        ok, data = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        data = data.tobytes()
        open(path, 'wb').write(data[:int(len(data) * rng.uniform(0.3, 0.95))])
    elif kind == 'zero_byte':
        open(path, 'wb').close()
    elif kind == 'not_an_image':
        open(path, 'wb').write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
    elif kind == 'sixteen_bit':  # cv2 reads it as 8-bit colour: the high byte, i.e. the original pixels
        cv2.imwrite(path, img.astype(np.uint16) * 257)
        expected = img
    elif kind == 'grey':
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        cv2.imwrite(path, grey)
        expected = np.repeat(grey[..., None], 3, axis=2)
    elif kind == 'rgba':
        cv2.imwrite(path, np.concatenate([img, np.full(img.shape[:2] + (1, ), 255, np.uint8)], axis=2))
        expected = img
    elif kind == 'smaller_than_patch':  # both of the pair, consistently: too small for gt_size 16
        small = 6
        cv2.imwrite(os.path.join(hr, name), cv2.resize(cv2.imread(os.path.join(hr, name)), (small, small)))
        cv2.imwrite(os.path.join(lr, name), cv2.resize(cv2.imread(os.path.join(lr, name)), (small // 2, small // 2)))
    else:  # size_mismatch: the LR image one pixel off
        lr_path = os.path.join(lr, name)
        low = cv2.imread(lr_path)
        cv2.imwrite(lr_path, cv2.resize(low, (low.shape[1] + rng.choice((-1, 1)), low.shape[0])))
        path = lr_path
    if expected is not None and folder == lr:
        expected = 'lr'  # an LR image: the HR image is unchanged; the LR pixels are checked below
    return kind, path, expected


def image_input(rng, work, index):
    hr, lr = _fresh_pairs(work, index)
    kind, path, expected = _damage_image(rng, hr, lr)
    dataset_type = rng.choice(DATASET_TYPES)
    phase = rng.choice(('train', 'val'))
    what = f'{dataset_type} ({phase}): {kind} {os.path.relpath(path, work)}'
    before = open(path, 'rb').read()
    try:
        items = read_all(dataset_options(hr, lr, dataset_type, phase))
    except Exception as err:  # noqa: BLE001
        if kind == 'smaller_than_patch' and phase == 'val':
            return Verdict('images', what, DEFECT, f'a small image is fine for validation, but: {err}')
        return judge_error('images', what, err, [os.path.basename(os.path.dirname(path)) + os.sep
                                                 + os.path.basename(path)])
    if open(path, 'rb').read() != before:
        return Verdict('images', what, DEFECT, 'the input file was changed')
    if kind == 'smaller_than_patch' and phase == 'val':
        return Verdict('images', what, ACCEPTED, 'validation takes whole images: a small one is fine')
    if expected is None:
        return Verdict('images', what, DEFECT, 'a broken image was read without an error')
    if phase == 'val':  # no crop: the decoded pixels are comparable
        name = os.path.basename(path)
        if isinstance(expected, str):
            got = next(item['lq'] for item in items if os.path.basename(item['lq_path']) == name)
            want = cv2.imread(os.path.join(work, 'clean', 'LR', name))
            expected = want if kind != 'grey' else np.repeat(cv2.cvtColor(want, cv2.COLOR_BGR2GRAY)[..., None], 3, 2)
        else:
            got = _gt_of(items, name)
        want = expected[..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255  # BGR HWC -> RGB CHW in [0, 1]
        if got.shape != want.shape or float(np.abs(got.numpy() - want).max()) > 1e-6:
            return Verdict('images', what, DEFECT, 'read without an error, but not the intended pixels')
    return Verdict('images', what, ACCEPTED, f'{kind}: cv2 decodes it to the intended 8-bit colour pixels')


# ------------------------------------------------------------------------------------------ datasets
def _lmdb(folder, out):
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    names = sorted(os.listdir(folder))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its progress
        make_lmdb_from_imgs(folder, out, names, [n[:-4] for n in names], multiprocessing_read=False,
                            map_size=1 << 20)


def dataset_input(rng, work, index):
    hr, lr = _fresh_pairs(work, index)
    phase = rng.choice(('train', 'val'))
    dataset_type = rng.choice(DATASET_TYPES)
    opt = dataset_options(hr, lr, dataset_type, phase)
    kind = rng.choice(('missing_root', 'empty_folder', 'unpaired_file', 'meta_info_missing_file',
                       'meta_info_malformed', 'lmdb_missing_key', 'lmdb_wrong_meta_info', 'lmdb_not_a_db'))
    name = f'{rng.randrange(N_PAIRS):03d}.png'
    key = rng.choice(('dataroot_gt', 'dataroot_lq'))
    if kind == 'missing_root':
        opt[key] = opt[key] + '_missing'
        names = [opt[key]]
    elif kind == 'empty_folder':
        for f in os.listdir(opt[key]):
            os.remove(os.path.join(opt[key], f))
        names = [opt[key]]
    elif kind == 'unpaired_file':  # an HR image without its LR partner
        os.remove(os.path.join(lr, name))
        names = [name[:-4], lr, hr]
    elif kind.startswith('meta_info'):
        meta = os.path.join(work, f'case{index}', 'meta_info.txt')
        lines = [f'{i:03d}.png (32,32,3)' for i in range(N_PAIRS)]
        lines[int(name[:3])] = 'missing.png (32,32,3)' if kind == 'meta_info_missing_file' else '   '
        open(meta, 'w').write('\n'.join(lines) + '\n')
        opt['meta_info_file'] = meta
        names = ['missing.png' if kind == 'meta_info_missing_file' else 'meta_info.txt']
    else:
        opt['io_backend'] = {'type': 'lmdb'}
        opt['dataroot_gt'], opt['dataroot_lq'] = hr + '.lmdb', lr + '.lmdb'
        db = opt[key]
        if kind == 'lmdb_missing_key':  # both meta_info.txt list a key the databases do not hold
            for folder in (opt['dataroot_gt'], opt['dataroot_lq']):
                with open(os.path.join(folder, 'meta_info.txt'), 'a') as f:
                    f.write('999.png (32,32,3) 1\n')
            names = ['999']
        elif kind == 'lmdb_wrong_meta_info':
            open(os.path.join(db, 'meta_info.txt'), 'w').write('this is not a meta_info file\n')
            names = ['meta_info.txt', db]
        else:
            os.remove(os.path.join(db, 'data.mdb'))
            names = [db]
    what = f'{dataset_type} ({phase}): {kind} ({key})'
    try:
        read_all(opt)
    except Exception as err:  # noqa: BLE001
        return judge_error('datasets', what, err, names)
    return Verdict('datasets', what, DEFECT, 'a broken data set was read without an error')
