"""Unreadable / truncated training images: named, then fatal or skipped; never a silent data-loader hang."""
import os
import threading

import pytest
import torch

import basicsr.data
from conftest import SCALE, write_pairs
from dukd_arch.data.bad_images import BadImageError
from dukd_arch.data.teacher_label_dataset import TeacherLabelPairedImageDataset
from dukd_arch.data.upcycling_paired_image_dataset import UpcyclingPairedImageDataset

# both training datasets read datasets.train.bad_images
TRAINING_SETS = pytest.mark.parametrize('dataset_type', [UpcyclingPairedImageDataset, TeacherLabelPairedImageDataset],
                                        ids=['upcycling', 'teacher-label'])


def _dataset(tmp_path, n=3, **extra):
    gt, lq = write_pairs(str(tmp_path), n=n, size=32)
    opt = {'name': 'tiny', 'type': 'UpcyclingPairedImageDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
           'io_backend': {'type': 'disk'}, 'scale': SCALE, 'phase': 'train', 'gt_size': 16, 'use_hflip': True,
           'use_rot': True, 'batch_size_per_gpu': 1, 'num_worker_per_gpu': 0}
    opt.update(extra)
    return opt, gt, lq


def _truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


@TRAINING_SETS
def test_truncated_image_is_fatal_by_default_and_named(tmp_path, dataset_type):
    opt, gt, lq = _dataset(tmp_path)
    _truncate(os.path.join(gt, '001.png'))
    ds = dataset_type(opt)
    assert ds[0]['gt'].shape[-1] == 16
    with pytest.raises(BadImageError, match=r'001\.png.*truncated'):
        ds[1]


@TRAINING_SETS
def test_skip_logs_each_bad_file_once_and_serves_another_pair(tmp_path, records, dataset_type):
    opt, gt, lq = _dataset(tmp_path, bad_images='skip')
    _truncate(os.path.join(gt, '001.png'))
    with open(os.path.join(lq, '002.png'), 'wb') as f:
        f.write(b'not an image')
    ds = dataset_type(opt)
    items = [ds[i] for i in (1, 2, 1, 2)]
    assert all(item['gt_path'].endswith('000.png') for item in items)  # the next readable pair (wrapping)
    bad = [m for m in records if 'skipped' in m]
    assert len(bad) == 2 and any('HR' in m and '001.png' in m for m in bad) and any('002.png' in m for m in bad)


def test_every_image_bad_is_an_error_not_a_loop(tmp_path):
    opt, gt, lq = _dataset(tmp_path, n=2, bad_images='skip')
    ds = UpcyclingPairedImageDataset(opt)
    for name in ('000.png', '001.png'):  # deleted after the file list was made: unreadable
        os.remove(os.path.join(lq, name))
    with pytest.raises(RuntimeError, match='none of the 2 training pairs'):
        ds[0]


def test_unknown_policy(tmp_path):
    opt, _, _ = _dataset(tmp_path, bad_images='ignore')
    with pytest.raises(ValueError, match=r"datasets\.train\.bad_images \(set .tiny.\): must be one of"):
        UpcyclingPairedImageDataset(opt)


@pytest.mark.parametrize('loader_opt', [{'num_worker_per_gpu': 1}, {'prefetch_mode': 'cpu'}],
                         ids=['worker-process', 'prefetch-thread'])
def test_loader_raises_with_the_path_instead_of_hanging(tmp_path, loader_opt):
    opt, gt, _ = _dataset(tmp_path, **loader_opt)
    _truncate(os.path.join(gt, '002.png'))
    ds = UpcyclingPairedImageDataset(opt)
    loader = basicsr.data.build_dataloader(ds, opt, num_gpu=0, sampler=torch.utils.data.SequentialSampler(ds))
    outcome = {}

    def consume():
        try:
            for _ in loader:
                pass
        except Exception as err:  # noqa: B902 (inspected below)
            outcome['error'] = err

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), 'the data loader hung on a bad image'
    assert '002.png' in str(outcome.get('error')), outcome


def test_a_pair_of_another_scale_reads_as_a_sentence(tmp_path):
    """BasicSR's crop passes its message as two strings; the error showed them as a tuple repr."""
    opt, gt, _ = _dataset(tmp_path)
    _, opt['dataroot_lq'] = write_pairs(str(tmp_path / 'x4'), n=3, size=32, scale=4)  # LR made for x4
    with pytest.raises(BadImageError) as info:
        UpcyclingPairedImageDataset(opt)[0]
    message = str(info.value)
    assert 'Scale mismatches. GT (32, 32) is not 2x multiplication of LQ (8, 8).' in message
    assert "('" not in message
