"""Regression tests for the defects the fuzzer (tests/fuzz/) found: each was a traceback from inside basicsr /
torch / cv2, or a silently wrong run, and is now refused with the key or file named."""
import contextlib
import io
import os

import cv2
import pytest
import yaml

from basicsr.data import build_dataset
from conftest import SCALE, write_pairs
from dukd_arch.io.checkpoint import read_checkpoint
from test_option_validation import _base, _problems as _refused

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def _delete(opt, path):
    *parents, leaf = path.split('.')
    node = opt
    for key in parents:
        node = node[key]
    del node[leaf]


# ------------------------------------------------------------------------------------------ option files
@pytest.mark.parametrize('path', [
    'scale', 'datasets.train', 'datasets.train.name', 'datasets.val.dataroot_lq', 'datasets.train.io_backend',
    'datasets.train.io_backend.type', 'datasets.train.gt_size', 'datasets.train.num_worker_per_gpu',
    'train.scheduler', 'train.total_iter', 'train.optim_g.type', 'logger.print_freq', 'val.val_freq'])
def test_fuzz_deleted_key_that_basicsr_reads_without_default_is_refused(path):
    # before: accepted, then a KeyError deep inside basicsr (or, for val_freq, after the first iterations)
    opt = _base()
    _delete(opt, path)
    assert f'  {path}: missing' in _refused(opt)


@pytest.mark.parametrize('path, value', [
    ('datasets.train.batch_size_per_gpu', 0), ('datasets.train.num_worker_per_gpu', -1),
    ('datasets.train.gt_size', -96), ('train.total_iter', 0), ('train.dukd_opt.label_consistency.prob', 1.5),
    ('train.ema_decay', 1.5), ('train.optim_g.lr', -1e-4), ('network_g.num_feat', 0), ('val.val_freq', -5),
    ('logger.save_checkpoint_freq', 0), ('val.metrics.psnr.crop_border', -4)])
def test_fuzz_out_of_range_number_is_refused(path, value):
    opt = _base()
    *parents, leaf = path.split('.')
    node = opt
    for key in parents:
        node = node[key]
    node[leaf] = value
    line = next(line for line in _refused(opt).splitlines() if line.startswith(f'  {path}: '))
    assert 'expected a' in line and ('>=' in line or '[0, 1]' in line), line


def test_fuzz_scale_the_networks_are_not_built_for_is_refused():
    opt = _base()
    opt['scale'] = 5
    assert 'scale: 5, but network_g.upscale is 4' in _refused(opt)
    opt = _base()
    opt['scale'], opt['network_g']['upscale'], opt['network_t']['upscale'] = 2, 2, 2
    opt['datasets']['train']['gt_size'] = 96
    del opt['network_g']['upscale']  # EDSR's default is 4
    assert 'scale: 2, but network_g.upscale is 4 (its default)' in _refused(opt)


def test_fuzz_gt_size_not_a_multiple_of_the_scale_is_refused():
    opt = _base()
    opt['datasets']['train']['gt_size'] = 193
    assert 'datasets.train.gt_size: 193 is not a multiple of scale 4' in _refused(opt)


def test_fuzz_untyped_constructor_and_metric_arguments_are_checked():
    # before: a list as EDSR's num_in_ch crashed in torch; `crop_border: true` silently cropped 1 pixel
    opt = _base()
    opt['network_g']['num_in_ch'] = [1, 2]
    opt['val']['metrics']['psnr']['crop_border'] = True
    message = _refused(opt)
    assert 'network_g.num_in_ch: expected a whole number >= 1' in message
    assert 'val.metrics.psnr.crop_border: expected a whole number >= 0' in message
    opt = yaml.safe_load(open(f'{REPO}/options/realworld/dukd_realesrgan_x4.yml'))
    opt['train']['perceptual_opt']['layer_weights']['conv5_4'] = {'k': 1}
    assert 'train.perceptual_opt.layer_weights.conv5_4: expected a number' in _refused(opt)


def test_fuzz_train_phase_with_a_suffix_is_refused():
    # BasicSR's train loop reads the phase `train` exactly: `train_1` was accepted, then "phase not recognized"
    opt = _base()
    opt['datasets']['train_1'] = opt['datasets'].pop('train')
    message = _refused(opt)
    assert 'datasets.train_1: a dataset phase is named' in message and 'datasets.train: missing' in message


def test_fuzz_optimizer_and_scheduler_type_errors_name_the_type_key():
    opt = _base()
    opt['train']['optim_g']['typo'] = opt['train']['optim_g'].pop('type')
    opt['train']['scheduler']['type'] = 'MultiStepLRR'
    message = _refused(opt)
    assert 'train.optim_g.type: missing' in message and 'train.scheduler.type: `type` must be one of' in message


# ------------------------------------------------------------------------------------------ images, datasets
def _paired(tmp_path, phase='val', **extra):
    hr, lr = write_pairs(str(tmp_path / 'data'), 3, 32)
    opt = {'name': 'set', 'type': 'PairedImageDataset', 'dataroot_gt': hr, 'dataroot_lq': lr, 'phase': phase,
           'io_backend': {'type': 'disk'}, 'scale': SCALE, 'filename_tmpl': '{}', **extra}
    if phase == 'train':
        opt.update(gt_size=16, use_hflip=True, use_rot=True)
    return opt, hr, lr


def _read_all(opt):
    dataset = build_dataset(opt)
    return [dataset[i] for i in range(len(dataset))]


@pytest.mark.parametrize('damage', ['zero_byte', 'truncated'])
def test_fuzz_bad_image_in_basicsrs_paired_dataset_is_named(damage, tmp_path):
    # before: AttributeError: 'NoneType' object has no attribute 'astype' (or a cv2 assertion), no file named
    opt, hr, _ = _paired(tmp_path)
    path = os.path.join(hr, '001.png')
    data = open(path, 'rb').read()
    open(path, 'wb').write(b'' if damage == 'zero_byte' else data[:len(data) // 3])
    with pytest.raises(ValueError, match=r'bad image .*HR/001\.png: (is empty|cannot be decoded)'):
        _read_all(opt)


def test_fuzz_val_lr_image_too_small_for_its_hr_image_is_refused(tmp_path):
    # before: BasicSR cropped the HR image to 2 x the LR image and scored the cut-off pair as if it were right
    opt, _, lr = _paired(tmp_path)
    path = os.path.join(lr, '002.png')
    cv2.imwrite(path, cv2.imread(path)[:, :15])
    with pytest.raises(ValueError, match=r'bad LR/HR pair: .*HR/002\.png is 32x32 but .*LR/002\.png is 16x15'):
        _read_all(opt)


def test_fuzz_val_benchmark_hr_not_a_multiple_of_the_scale_still_works(tmp_path):
    opt, hr, lr = _paired(tmp_path)
    cv2.imwrite(os.path.join(hr, '000.png'), cv2.copyMakeBorder(cv2.imread(os.path.join(hr, '000.png')),
                                                                 0, 1, 0, 1, cv2.BORDER_REFLECT))  # 33x33
    items = _read_all(opt)
    assert tuple(items[0]['gt'].shape[-2:]) == (32, 32)  # BasicSR's benchmark crop, as before


@pytest.mark.parametrize('problem', ['unpaired', 'missing_root', 'lmdb_without_data', 'malformed_meta_info'])
def test_fuzz_paired_folders_that_do_not_pair_up_are_named(problem, tmp_path):
    # before: AssertionError "lq and gt datasets have different number of images: 2, 3", FileNotFoundError from
    # scandir, lmdb.Error at the first image, IsADirectoryError for a blank meta_info line: none naming the option
    opt, hr, lr = _paired(tmp_path, phase='train')
    if problem == 'unpaired':
        os.remove(os.path.join(lr, '001.png'))
        expected = r'datasets\.train \(set .set.\): the LR and HR images do not pair up: .*different number of images'
    elif problem == 'missing_root':
        opt['dataroot_lq'] = lr + '_x2'
        expected = r"datasets\.train\.dataroot_lq \(set .set.\): '.*LR_x2' does not exist"
    elif problem == 'lmdb_without_data':
        from basicsr.utils.lmdb_util import make_lmdb_from_imgs
        for folder, key in ((hr, 'dataroot_gt'), (lr, 'dataroot_lq')):
            names = sorted(os.listdir(folder))
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                make_lmdb_from_imgs(folder, folder + '.lmdb', names, [n[:-4] for n in names],
                                    multiprocessing_read=False, map_size=1 << 20)
            opt[key] = folder + '.lmdb'
        os.remove(os.path.join(lr + '.lmdb', 'data.mdb'))
        opt['io_backend'] = {'type': 'lmdb'}
        expected = r'datasets\.train\.dataroot_lq \(set .set.\): .*LR\.lmdb is not a BasicSR LMDB \(no data\.mdb\)'
    else:
        (tmp_path / 'meta.txt').write_text('000.png (32,32,3)\n\n002.png (32,32,3)\n')
        opt['meta_info_file'] = str(tmp_path / 'meta.txt')
        expected = r'datasets\.train\.meta_info_file \(set .set.\): line 2 of .*meta\.txt names no image'
    with pytest.raises((ValueError, FileNotFoundError), match=expected):
        _read_all(opt)


# ------------------------------------------------------------------------------------------ checkpoints
# the 64 random bytes of fuzz input [1-checkpoints-81]: torch's unpickler raised `IndexError: pop from empty list`
GARBAGE = (b'b1\xb7\xa6\x8fCE\xaf\x04E\rFy\xb0\xe1`Wk\xde\x8e\x97\xbe=0.\xea\xbe\xf3\xc9Z.;\x0e\xad\x0b\xfb'
           b'\xb6\x04L\x8c\xce\x80\xe8\xe9\xe28\xd4\xcf\xbce0+\x8a#\xcf\xc6\x88\xb0\xa3D\xc5@q\xbe')


@pytest.mark.parametrize('content', [b'', GARBAGE])
def test_fuzz_zero_byte_or_garbage_pth_is_refused_and_named(content, tmp_path):
    # before: an IndexError while formatting torch's empty message (0 bytes), or from torch's unpickler (garbage)
    path = tmp_path / 'net_g_5.pth'
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r'net_g_5\.pth is truncated or corrupt'):
        read_checkpoint(str(path))


def test_fuzz_training_without_teacher_weights_is_refused_by_the_validation():
    # before: accepted by the validation (refused only when the model was built)
    opt = _base()
    opt['path']['pretrain_network_t'] = None
    assert 'path.pretrain_network_t: not set: an untrained teacher teaches noise' in _refused(opt)
