"""UpcyclingPairedImageDataset: PairedImageDataset semantics plus upcycled inputs, and clear errors."""
import os

import cv2
import pytest
import torch

from conftest import SCALE, write_pairs
from dukd_arch.data.upcycling_paired_image_dataset import UpcyclingPairedImageDataset
from dukd_arch.ops import zoom_out


def _opt(gt, lq, phase='train', **extra):
    opt = {'name': 'tiny', 'type': 'UpcyclingPairedImageDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
           'io_backend': {'type': 'disk'}, 'scale': SCALE, 'phase': phase, 'gt_size': 16, 'use_hflip': True,
           'use_rot': True}
    opt.update(extra)
    return opt


def test_train_items_carry_tiles_and_zoom_out(tmp_path):
    gt, lq = write_pairs(str(tmp_path), n=2, size=32)
    ds = UpcyclingPairedImageDataset(_opt(gt, lq, upcycling={'zoom_in_tiles': 3, 'positions': 'random'}))
    item = ds[0]
    assert item['lq'].shape == (3, 8, 8) and item['gt'].shape == (3, 16, 16)
    assert item['zoom_in'].shape == (3, 3, 8, 8)
    for tile in item['zoom_in']:  # every tile is a crop of this sample's HR patch
        assert any(torch.equal(item['gt'][:, t:t + 8, l:l + 8], tile) for t in range(9) for l in range(9))
    assert torch.allclose(item['zoom_out'], zoom_out(item['lq'][None], SCALE)[0])


def test_validation_items_have_no_upcycled_inputs(tmp_path):
    gt, lq = write_pairs(str(tmp_path), n=1, size=24)
    item = UpcyclingPairedImageDataset(_opt(gt, lq, phase='val'))[0]
    assert set(item) == {'lq', 'gt', 'lq_path', 'gt_path'}


def test_size_mismatch_names_both_files(tmp_path):
    gt, lq = write_pairs(str(tmp_path), n=1, size=24)
    lr = cv2.imread(os.path.join(lq, '000.png'))
    cv2.imwrite(os.path.join(lq, '000.png'), cv2.resize(lr, (14, 14)))  # HR 24 px is not 2 x 14 px
    for phase in ('train', 'val'):
        with pytest.raises(ValueError, match=r'bad LR/HR pair.*(HR/000\.png.*LR/000\.png|LR/000\.png.*HR/000\.png)'):
            UpcyclingPairedImageDataset(_opt(gt, lq, phase=phase, gt_size=8))[0]


def test_missing_folder_and_unknown_key(tmp_path):
    gt, lq = write_pairs(str(tmp_path), n=1, size=24)
    with pytest.raises(FileNotFoundError, match='dataroot_lq'):
        UpcyclingPairedImageDataset(_opt(gt, str(tmp_path / 'nope')))
    with pytest.raises(ValueError, match='zoom_in_tile'):
        UpcyclingPairedImageDataset(_opt(gt, lq, upcycling={'zoom_in_tile': 1}))
