"""Dropping dukd into a BasicSR fork: ``import dukd_arch`` changes no plain run, never collides with a fork's
registered names, and the run-scoped fixes (exact-resume data path, resume, teacher exclusion) stay with our
models unless a fork opts in with ``train.exact_resume: true``."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from basicsr.data.data_sampler import EnlargedSampler
from basicsr.models import build_model
from basicsr.utils import get_root_logger
from conftest import SCALE, make_opt, write_pairs
from dukd_arch import compat
from dukd_arch.data.resumable_sampler import ResumableSampler, SeededDataset
from dukd_arch.models.dukd_model import DUKDModel
from dukd_arch.models.kd_model import KDModel
from dukd_arch.io.atomic import atomic_save
from pipeline_opts import pipeline_options

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')

# basicsr's own train.py, optionally after `import dukd_arch` (as a fork's train.py would do)
PLAIN_DRIVER = textwrap.dedent('''
    import sys
    mode, root, opt_file = sys.argv[1:4]
    if mode == 'dukd':
        import dukd_arch  # noqa: F401
    else:  # what any fork needs on current torchvision to import basicsr 1.4.2 at all
        import torchvision.transforms.functional as F
        sys.modules.setdefault('torchvision.transforms.functional_tensor', F)
    import basicsr.train
    sys.argv = ['train.py', '-opt', opt_file]
    basicsr.train.train_pipeline(root)
''')


def _srmodel_options(data_root, name):
    """A BasicSR-style SRModel option file (MSRResNet, PairedImageDataset with random crops, flips and
    rotations, loader workers, EMA, cosine schedule), shrunk to tiny data: 4 pairs, 2 per batch, 3 epochs."""
    return {
        'name': name, 'model_type': 'SRModel', 'scale': SCALE, 'num_gpu': 0, 'manual_seed': 10,
        'datasets': {'train': {
            'name': 'tiny', 'type': 'PairedImageDataset', 'dataroot_gt': os.path.join(data_root, 'HR'),
            'dataroot_lq': os.path.join(data_root, 'LR'), 'filename_tmpl': '{}', 'io_backend': {'type': 'disk'},
            'gt_size': 16, 'use_hflip': True, 'use_rot': True, 'num_worker_per_gpu': 1, 'batch_size_per_gpu': 2,
            'dataset_enlarge_ratio': 1, 'prefetch_mode': None}},
        'network_g': {'type': 'MSRResNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1,
                      'upscale': SCALE},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0.9, 'optim_g': {'type': 'Adam', 'lr': 2e-3, 'weight_decay': 0, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [6], 'restart_weights': [1],
                                'eta_min': 1e-7},
                  'total_iter': 6, 'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 1000, 'use_tb_logger': False},
    }


def test_plain_srmodel_run_is_bit_identical_with_and_without_dukd(tmp_path):
    data = tmp_path / 'data'
    write_pairs(str(data), 4, 32)
    (tmp_path / 'driver.py').write_text(PLAIN_DRIVER)
    weights = {}
    for mode in ('plain', 'dukd'):
        root = tmp_path / mode
        root.mkdir()
        opt_file = root / 'train_MSRResNet.yml'
        opt_file.write_text(yaml.safe_dump(_srmodel_options(str(data), 'msrresnet')))
        proc = subprocess.run([sys.executable, str(tmp_path / 'driver.py'), mode, str(root), str(opt_file)],
                              cwd=root, env=ENV, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        weights[mode] = torch.load(root / 'experiments' / 'msrresnet' / 'models' / 'net_g_latest.pth',
                                   weights_only=True)
    plain, dukd = weights['plain'], weights['dukd']
    for key in ('params', 'params_ema'):
        assert plain[key].keys() == dukd[key].keys()
        for name, value in plain[key].items():
            assert torch.equal(value, dukd[key][name]), f'{key}.{name} changed by importing dukd_arch'


def _loaders(tmp_path, model_type, **train_extra):
    opt = pipeline_options(str(tmp_path))
    opt.update(model_type=model_type, world_size=1, rank=0, dist=False)
    opt['train'].update(train_extra)
    opt['datasets']['train'].update(phase='train', scale=SCALE, type='PairedImageDataset')
    return compat.create_train_val_dataloader(opt, get_root_logger())


@pytest.mark.parametrize('model_type', ['DUKD', 'BaseKD', 'dukd.KDModel', 'FeatureDUKDModel'])
def test_our_models_get_the_exact_resume_data_path(tmp_path, model_type):
    loader, sampler, *_ = _loaders(tmp_path, model_type)
    assert isinstance(loader.dataset, SeededDataset) and isinstance(sampler, ResumableSampler)


def test_a_fork_model_gets_basicsrs_loader_unless_it_opts_in(tmp_path):
    loader, sampler, *_ = _loaders(tmp_path, 'SRModel')
    assert type(sampler) is EnlargedSampler and not isinstance(loader.dataset, SeededDataset)
    loader, sampler, *_ = _loaders(tmp_path, 'SRModel', exact_resume=True)
    assert isinstance(loader.dataset, SeededDataset) and isinstance(sampler, ResumableSampler)
    loader, sampler, *_ = _loaders(tmp_path, 'DUKD', exact_resume=False)
    assert type(sampler) is EnlargedSampler
    with pytest.raises(ValueError, match='train.exact_resume must be true or false'):
        _loaders(tmp_path, 'SRModel', exact_resume='yes')


def test_a_fork_subclass_of_our_kd_model_counts_as_ours():
    from basicsr.utils.registry import MODEL_REGISTRY

    class ForkKD(KDModel):
        pass

    ForkKD.__module__ = 'fork.models'
    MODEL_REGISTRY._obj_map['ForkKDForTest'] = ForkKD
    try:
        assert compat.is_dukd_model({'model_type': 'ForkKDForTest'})
    finally:
        del MODEL_REGISTRY._obj_map['ForkKDForTest']


def _resume_opt(model_type, exp):
    return {'model_type': model_type, 'network_g': {}, 'network_t': {},
            'path': {'resume_state': 'x.state', 'models': str(exp / 'models'), 'pretrain_network_t': 'teacher.pth',
                     'param_key_t': 'params_ema'}}


def test_teacher_stays_out_of_resume_for_our_models_only(tmp_path):
    ours = _resume_opt('DUKD', tmp_path)
    compat.check_resume(ours, 8)
    assert ours['path']['pretrain_network_t'] == 'teacher.pth' and ours['path']['param_key_t'] == 'params_ema'
    assert ours['path']['pretrain_network_g'].endswith('net_g_8.pth')
    fork = _resume_opt('SRModel', tmp_path)  # e.g. a fork model whose network_t is trained and saved
    compat.check_resume(fork, 8)
    assert fork['path']['pretrain_network_t'].endswith('net_t_8.pth') and fork['path']['param_key_t'] == 'params'
    assert 'ignore_resume_networks' not in fork['path']


def test_a_fork_run_resumes_as_in_basicsr_but_without_cuda(tmp_path, monkeypatch):
    """Auto-resume of a fork's run looks under ./experiments/<name> (basicsr), takes the newest state as is and
    loads it on the CPU (basicsr's torch.cuda.current_device() crashed without CUDA)."""
    states = tmp_path / 'experiments' / 'run' / 'training_states'
    states.mkdir(parents=True)
    for it in (4, 8):
        atomic_save({'epoch': 1, 'iter': it, 'optimizers': [], 'schedulers': []}, str(states / f'{it}.state'))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    opt = {'auto_resume': True, 'name': 'run', 'model_type': 'SRModel', 'network_g': {},
           'path': {'experiments_root': str(tmp_path / 'elsewhere'), 'models': 'm', 'resume_state': None}}
    state = compat.load_resume_state(opt)
    assert state['iter'] == 8 and opt['path']['resume_state'] == os.path.join('experiments', 'run', 'training_states',
                                                                               '8.state')
    assert 'resume_position' not in opt
    opt_in = dict(opt, train={'exact_resume': True}, path=dict(opt['path'], resume_state=None))
    assert compat.load_resume_state(opt_in) is None, 'the exact-resume path looks under path.experiments_root'


def test_dukd_aliases_build_our_model_and_dataset(tmp_path):
    opt = make_opt(tmp_path, model_type='dukd.DUKDModel')
    opt['datasets']['train'].update(type='dukd.UpcyclingPairedImageDataset', upcycling={'zoom_in_tiles': 2})
    with pytest.raises(ValueError, match='zoom_in_tiles=2'):  # the alias is recognised as our dataset
        build_model(opt)
    opt['datasets']['train']['upcycling'] = {'zoom_in_tiles': 1}
    assert type(build_model(opt)) is DUKDModel


COLLISION_DRIVER = textwrap.dedent('''
    import json, sys
    import torchvision.transforms.functional as F
    sys.modules.setdefault('torchvision.transforms.functional_tensor', F)
    from basicsr.models.sr_model import SRModel
    from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY

    class KDModel(SRModel):  # a fork's own model and loss, registered before dukd is imported
        pass

    class FAKDLoss:
        pass

    MODEL_REGISTRY.register(KDModel)
    LOSS_REGISTRY.register(FAKDLoss)
    import dukd_arch
    from dukd_arch import compat
    from dukd_arch.models.dukd_model import DUKDModel
    from dukd_arch.models.kd_model import KDModel as OurKD
    print('---after import---', file=sys.stderr, flush=True)

    class DUKDModel2(SRModel):  # a fork registering one of our short names after us
        pass

    DUKDModel2.__name__ = 'DUKDModel'
    MODEL_REGISTRY.register(DUKDModel2)
    print(json.dumps({
        'fork_kd_kept': MODEL_REGISTRY.get('KDModel') is KDModel,
        'alias_is_ours': MODEL_REGISTRY.get('dukd.KDModel') is OurKD,
        'short_alias_free_kept': MODEL_REGISTRY.get('BaseKD') is OurKD,
        'fork_loss_kept': LOSS_REGISTRY.get('FAKDLoss') is FAKDLoss,
        'late_fork_wins': MODEL_REGISTRY.get('DUKDModel') is DUKDModel2,
        'late_alias_is_ours': MODEL_REGISTRY.get('dukd.DUKDModel') is DUKDModel,
        'fork_kd_not_ours': not compat.is_dukd_model({'model_type': 'KDModel'}),
        'alias_ours': compat.is_dukd_model({'model_type': 'dukd.KDModel'}),
    }))
''')


def test_names_a_fork_registered_first_stay_theirs_and_ours_get_the_dukd_alias(tmp_path):
    (tmp_path / 'fork.py').write_text(COLLISION_DRIVER)
    proc = subprocess.run([sys.executable, str(tmp_path / 'fork.py')], cwd=tmp_path, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = yaml.safe_load(proc.stdout.strip().splitlines()[-1])
    assert all(result.values()), result
    at_import, after = proc.stderr.split('---after import---')
    lines = [line for line in at_import.splitlines() if 'dukd.' in line]
    assert len(lines) == 1, at_import
    assert "model 'KDModel' -> 'dukd.KDModel'" in lines[0] and "loss 'FAKDLoss' -> 'dukd.FAKDLoss'" in lines[0]
    assert "'BaseKD'" not in lines[0], 'only the taken names are listed'
    assert "model name 'DUKDModel' is now __main__.DUKDModel" in after and "'dukd.DUKDModel'" in after


def test_shipped_training_files_with_a_basicsr_model_opt_in():
    """Our own SRModel runs (the demo teacher, the scratch student) keep the exact-resume data path."""
    import glob
    files = [f for f in glob.glob(f'{REPO}/options/**/*.yml', recursive=True) if '/test/' not in f]
    checked = 0
    for path in files:
        with open(path) as f:
            opt = yaml.safe_load(f)
        if 'datasets' in opt and 'train' in opt['datasets'] and not compat.is_dukd_model(opt):
            assert opt['train'].get('exact_resume') is True, path
            checked += 1
    assert checked >= 2
