"""Complete training option files for running ``basicsr.train.train_pipeline`` on tiny data in a tmp root."""
import copy
import os
import subprocess
import sys

import torch
import yaml

from conftest import SCALE, TINY_EDSR, TINY_TEACHER, save_teacher, write_pairs


def pipeline_options(root, name='tiny', total_iter=4, save_freq=4, n_images=6, size=32, batch=2,
                     train_extra=None, dataset_extra=None):
    """An options dict for a tiny DUKD run whose data and teacher live under ``root``."""
    data = os.path.join(root, 'data')
    hr, lr = os.path.join(data, 'HR'), os.path.join(data, 'LR')
    if not os.path.isdir(hr):
        write_pairs(data, n_images, size)
    teacher = os.path.join(root, 'teacher.pth')
    if not os.path.exists(teacher):
        save_teacher(teacher)
    train_set = {
        'name': 'tiny', 'type': 'UpcyclingPairedImageDataset', 'dataroot_gt': hr, 'dataroot_lq': lr,
        'filename_tmpl': '{}', 'io_backend': {'type': 'disk'}, 'gt_size': 16, 'use_hflip': True, 'use_rot': True,
        'num_worker_per_gpu': 0, 'batch_size_per_gpu': batch, 'dataset_enlarge_ratio': 1, 'prefetch_mode': None,
        'upcycling': {'zoom_in_tiles': 1, 'zoom_out': True},
    }
    train_set.update(dataset_extra or {})
    train = {
        'ema_decay': 0.999,
        'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
        'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
        'total_iter': total_iter, 'warmup_iter': -1,
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
        'kd_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
        'dukd_opt': {'zoom_in': 1, 'zoom_out': True, 'label_consistency': {'prob': 0.5}},
    }
    train.update(train_extra or {})
    return {
        'name': name, 'model_type': 'DUKD', 'scale': SCALE, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': train_set},
        'network_g': copy.deepcopy(TINY_EDSR), 'network_t': copy.deepcopy(TINY_TEACHER),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                 'pretrain_network_t': teacher},
        'train': train,
        'logger': {'print_freq': 1000, 'save_checkpoint_freq': save_freq, 'use_tb_logger': False},
    }


def write_options(opt, path):
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return str(path)


DRIVER = """
import os
import torch
import dukd_arch
import basicsr.train as bt
from torch.nn.parallel import DistributedDataParallel as DDP
models = []
_build = bt.build_model
bt.build_model = lambda opt: models.append(_build(opt)) or models[-1]
root = os.path.dirname(os.path.abspath(__file__))
bt.train_pipeline(root)
m = models[0]
torch.save(SAVED, os.path.join(root, f'rank{torch.distributed.get_rank()}.pth'))
"""


def run_two_cpu_ranks(tmp_path, opt_file: str, saved: str):
    """train.py's pipeline under torchrun with two gloo ranks on the CPU; each rank saves ``saved`` (a Python
    expression over its model ``m``, ``torch`` and ``DDP``); returns what the two ranks saved."""
    (tmp_path / 'driver.py').write_text(DRIVER.replace('SAVED', saved))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
           str(tmp_path / 'driver.py'), '-opt', opt_file, '--launcher', 'pytorch']
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tuple(torch.load(tmp_path / f'rank{r}.pth', weights_only=True) for r in (0, 1))
