"""decoded_cache_mib: decoded training images kept in memory give exactly the items of a run without it."""
import os
import random

import numpy as np
import pytest
import torch
import yaml

from basicsr.data.paired_image_dataset import PairedImageDataset

from conftest import write_pairs
from dukd_arch.data.bad_images import BadImageError
from dukd_arch.data.decoded_cache import DecodedImageCache
from dukd_arch.data.teacher_label_dataset import TeacherLabelPairedImageDataset
from dukd_arch.data.upcycling_paired_image_dataset import UpcyclingPairedImageDataset
from dukd_arch.options import OptionError, validate_options
from test_teacher_labels import _asymmetric_pairs, _dataset_opt, _fake_store, _lmdb_of

N = 3


def _data(tmp_path, backend):
    """Pairs, a fake label store, and the dataset keys of two identical copies of the pairs (an LMDB opens
    once per process, and the test reads it twice: with and without the cache)."""
    root = str(tmp_path)
    _asymmetric_pairs(root, n=N)
    _fake_store(root, str(tmp_path / 'labels'))
    if backend == 'disk':
        return root, {}, {}
    data, copies = tmp_path / 'data', []
    for copy_name in ('a', 'b'):
        _lmdb_of(data / 'HR', data / f'HR_{copy_name}.lmdb')
        _lmdb_of(data / 'LR', data / f'LR_{copy_name}.lmdb')
        copies.append({'dataroot_gt': str(data / f'HR_{copy_name}.lmdb'),
                       'dataroot_lq': str(data / f'LR_{copy_name}.lmdb'), 'io_backend': {'type': 'lmdb'}})
    return (root, *copies)


@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
@pytest.mark.parametrize('cls', [UpcyclingPairedImageDataset, TeacherLabelPairedImageDataset])
@pytest.mark.parametrize('labels', [False, True])
def test_cached_items_equal_basicsr_items_and_each_image_is_decoded_once(tmp_path, backend, cls, labels):
    root, where, where_ref = _data(tmp_path, backend)
    store = str(tmp_path / 'labels') if labels else None
    ds = cls(_dataset_opt(root, store, decoded_cache_mib=64, **where))
    plain = PairedImageDataset(_dataset_opt(root, **where_ref))
    for seed in range(3 * 8 * N):  # every flip / rotation many times; cached images are cut again and again
        random.seed(seed)
        item = ds[seed % N]
        random.seed(seed)
        ref = plain[seed % N]
        assert torch.equal(ref['gt'], item['gt']) and torch.equal(ref['lq'], item['lq']), f'differs at seed {seed}'
        assert ('teacher' in item) == labels
        if labels:  # the fake label is the HR image itself: it must ride along exactly
            assert torch.allclose(item['teacher'], item['gt'], atol=1e-6, rtol=0)
    cache = ds.decoded_cache
    images = N * (3 if labels else 2)
    assert cache.misses == len(cache.images) == images and cache.hits == 3 * 8 * N * (images // N) - images
    assert not any(img.flags.writeable for img in cache.images.values())


def test_cache_keeps_images_until_its_budget_is_full():
    cache = DecodedImageCache(max_mib=2.5 / 1024)  # 2.5 KiB: one 32x32x2 uint8 image (2 KiB), not two
    decodes = []

    def decode(i):
        def run():
            decodes.append(i)
            return np.full((32, 32, 2), i, np.uint8)
        return run

    a = cache.get('a', decode(1))
    assert not a.flags.writeable  # BasicSR flips in place: a write into a decoded image must fail
    with pytest.raises(ValueError):
        a[0, 0, 0] = 9
    cache.get('b', decode(2))
    cache.get('a', decode(1))
    cache.get('b', decode(2))
    assert decodes == [1, 2, 2] and list(cache.images) == ['a'] and cache.used == 2048
    assert cache.get('c', lambda: None) is None and 'c' not in cache.images  # undecodable: not kept


def test_cache_serves_the_training_set_only_and_plain_rgb(tmp_path):
    root = str(tmp_path)
    write_pairs(os.path.join(root, 'data'), 2, 32)
    with pytest.raises(ValueError, match=r'datasets\.val\.decoded_cache_mib \(set .*\): serves the training set only'):
        UpcyclingPairedImageDataset(_dataset_opt(root, decoded_cache_mib=8, phase='val'))
    with pytest.raises(ValueError, match=r'datasets\.train\.decoded_cache_mib \(set .*\) cannot be combined with'):
        TeacherLabelPairedImageDataset(_dataset_opt(root, decoded_cache_mib=8, mean=[0.5] * 3, std=[0.5] * 3))
    with pytest.raises(ValueError, match="expected a size in MiB > 0, got 'lots'"):
        TeacherLabelPairedImageDataset(_dataset_opt(root, decoded_cache_mib='lots'))


@pytest.mark.parametrize('cls', [UpcyclingPairedImageDataset, TeacherLabelPairedImageDataset])
def test_an_undecodable_image_is_named_not_cached(tmp_path, cls):
    root = str(tmp_path)
    write_pairs(os.path.join(root, 'data'), 2, 32)
    with open(os.path.join(root, 'data', 'HR', '001.png'), 'r+b') as f:
        f.truncate(40)  # a PNG header and nothing else
    ds = cls(_dataset_opt(root, decoded_cache_mib=8))
    with pytest.raises(BadImageError, match='001.png'):
        ds[1]
    assert ('gt', os.path.join(root, 'data', 'HR', '001.png')) not in ds.decoded_cache.images
    assert ds[0]['gt'].shape == (3, 16, 16)


@pytest.mark.parametrize('value, accepted', [(4096, True), (0, False), (-1, False), ('4G', False)])
def test_option_validation_checks_the_budget(value, accepted):
    with open(os.path.join(os.path.dirname(__file__), os.pardir, 'options', 'dukd_edsr_x4.yml')) as f:
        opt = yaml.safe_load(f)
    opt['datasets']['train']['decoded_cache_mib'] = value
    if accepted:
        validate_options(opt, is_train=True, source='my.yml')
    else:
        with pytest.raises(OptionError, match='datasets.train.decoded_cache_mib'):
            validate_options(opt, is_train=True, source='my.yml')
