"""train.py -> checkpoints -> auto-resume -> test.py, as a user runs them, on a tiny generated dataset."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from basicsr.archs import build_network

from conftest import SCALE, TINY_EDSR, TINY_TEACHER, save_teacher, write_pairs

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def _run(script, opt_path, cwd, *extra):
    proc = subprocess.run([sys.executable, script, '-opt', str(opt_path), *extra], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _dataset(root, phase, authors_keys):
    gt, lq = str(root / phase / 'HR'), str(root / phase / 'LR')
    opt = {'name': phase, 'type': 'UpcyclingPairedImageDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
           'io_backend': {'type': 'disk'}}
    if phase == 'train':
        opt.update(gt_size=16, use_hflip=True, use_rot=True, num_worker_per_gpu=0, batch_size_per_gpu=2,
                   dataset_enlarge_ratio=1, prefetch_mode=None)
        opt['upcycling'] = {'zoom_in_tiles': 2, 'positions': 'random', 'zoom_out': True}
        if authors_keys:
            opt['type'] = 'PairedImageDataset'  # the authors' dataset: DUKDModel prepares upcycled inputs itself
            del opt['upcycling']  # not a PairedImageDataset key (the option check would refuse it)
    return opt


def _train_opt(root, total_iter, authors_keys=False):
    train = {
        'ema_decay': 0.999, 'optim_g': {'type': 'Adam', 'lr': 2e-4, 'betas': [0.9, 0.99]},
        'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5}, 'total_iter': total_iter,
        'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
        'kd_opt': {'type': 'L1Loss', 'loss_weight': 1.0}
    }
    if authors_keys:  # the authors' YAML keys, as in their released configs
        train.update(dukd_opt={'n_gt_sub': [1], 'zoom_out': True}, noisy={'prob': 0.3})
    else:
        train['dukd_opt'] = {'zoom_in': {'num_tiles': 2, 'positions': 'random'}, 'zoom_out': True,
                             'label_consistency': {'prob': 0.3}}
    return {
        'name': 'e2e', 'model_type': 'DUKD' if authors_keys else 'DUKDModel', 'scale': SCALE, 'num_gpu': 0,
        'manual_seed': 0,
        'datasets': {'train': _dataset(root, 'train', authors_keys), 'val': _dataset(root, 'val', authors_keys)},
        'network_g': TINY_EDSR, 'network_t': TINY_TEACHER,
        'path': {'pretrain_network_t': str(root / 'teacher.pth'), 'param_key_t': 'params', 'strict_load_g': True,
                 'resume_state': None},
        'train': train,
        'val': {'val_freq': 2, 'save_img': False, 'metrics': {
            'psnr': {'type': 'calculate_psnr', 'crop_border': SCALE, 'test_y_channel': True}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }


@pytest.fixture
def workspace(tmp_path):
    for script in ('train.py', 'test.py'):
        shutil.copy(os.path.join(REPO, script), tmp_path / script)
    write_pairs(str(tmp_path / 'train'), n=4, size=32, seed=1)
    write_pairs(str(tmp_path / 'val'), n=2, size=24, seed=2)
    save_teacher(str(tmp_path / 'teacher.pth'))
    return tmp_path


def _write(path, opt):
    path.write_text(yaml.safe_dump(opt))
    return path


def test_train_resume_and_test(workspace, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp('cwd')  # run from another folder: paths resolve against the repo root
    root = workspace
    log = _run(str(root / 'train.py'), _write(root / 'train.yml', _train_opt(root, 4)), elsewhere)
    assert 'l_zoom_in' in log and 'l_zoom_out_kd' in log and '# psnr' in log
    models = root / 'experiments' / 'e2e' / 'models'
    assert (models / 'net_g_4.pth').exists() and (models / 'net_g_latest.pth').exists()
    assert not list(models.glob('net_t_*'))  # the teacher is never saved
    assert not list(models.glob('.*.tmp'))  # no leftover temporary files from atomic saves
    card = (root / 'experiments' / 'e2e' / 'model_card.md').read_text()
    # the card's cost table: the student and the teacher that were trained here, with their parameter counts
    for role, net_opt in (('student', TINY_EDSR), ('teacher', TINY_TEACHER)):
        params = sum(p.numel() for p in build_network(dict(net_opt)).parameters())
        assert re.search(rf'^\| {role} \| EDSR \(num_block {net_opt["num_block"]}, num_feat {net_opt["num_feat"]}\)'
                         rf' \| {params / 1e6:.3f}M \|', card, re.M), card
    ckpt = torch.load(models / 'net_g_4.pth', weights_only=True)
    assert set(ckpt) == {'params', 'params_ema'}

    # carry on to iteration 6 with --auto_resume (from yet another folder)
    log = _run(str(root / 'train.py'), _write(root / 'train.yml', _train_opt(root, 6)), elsewhere, '--auto_resume')
    assert 'Resuming training from epoch' in log and 'iter: 4' in log
    assert (models / 'net_g_6.pth').exists()
    assert not glob.glob(str(root / 'experiments' / 'e2e_archived_*'))

    test_opt = {
        'name': 'e2e_test', 'model_type': 'DUKDModel', 'scale': SCALE, 'num_gpu': 0,
        'datasets': {'test_1': _dataset(root, 'val', False)}, 'network_g': TINY_EDSR,
        'path': {'pretrain_network_g': str(models / 'net_g_latest.pth'), 'param_key_g': 'params_ema',
                 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None, 'self_ensemble': True, 'metrics': {
            'psnr': {'type': 'calculate_psnr', 'crop_border': SCALE, 'test_y_channel': True}}},
    }
    log = _run(str(root / 'test.py'), _write(root / 'test.yml', test_opt), elsewhere)
    assert '# psnr' in log
    assert len(list((root / 'results' / 'e2e_test' / 'visualization' / 'val').glob('*.png'))) == 2


def test_authors_yaml_keys_run_unchanged(workspace):
    root = workspace
    log = _run(str(root / 'train.py'), _write(root / 'train.yml', _train_opt(root, 2, authors_keys=True)), root)
    assert 'l_zoom_in' in log and 'l_zoom_out_lr' in log


def test_wrong_data_path_is_a_clear_error(workspace):
    root = workspace
    opt = _train_opt(root, 2)
    opt['datasets']['train']['dataroot_gt'] = str(root / 'missing')
    proc = subprocess.run([sys.executable, str(root / 'train.py'), '-opt', str(_write(root / 'bad.yml', opt))],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'datasets.train.dataroot_gt' in proc.stderr and 'missing' in proc.stderr
