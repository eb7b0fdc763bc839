"""Exact resume and crash safety: stop at k + resume to n == n uninterrupted; atomic saves; truncated states."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

import basicsr.train
from dukd_arch import compat
from dukd_arch.data.resumable_sampler import ResumableSampler, SeededDataset
from dukd_arch.io import checkpoint
from dukd_arch.io.atomic import atomic_save
from dukd_arch.io.checkpoint import read_checkpoint
from dukd_arch.training.run_settings import changed_settings, run_settings
from conftest import save_teacher
from pipeline_opts import pipeline_options, write_options


def _train(root, monkeypatch, total_iter, auto_resume=False, validate=False, **kwargs):
    opt = pipeline_options(str(root), name='run', total_iter=total_iter, **kwargs)
    if validate:  # on every checkpoint iteration, as the shipped options do
        train_set = opt['datasets']['train']
        opt['datasets']['val'] = {'name': 'val', 'type': 'PairedImageDataset', 'dataroot_gt': train_set['dataroot_gt'],
                                  'dataroot_lq': train_set['dataroot_lq'], 'filename_tmpl': '{}',
                                  'io_backend': {'type': 'disk'}}
        opt['val'] = {'val_freq': opt['logger']['save_checkpoint_freq'], 'save_img': False,
                      'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 2, 'test_y_channel': True}}}
    argv = ['train.py', '-opt', write_options(opt, root / f'run_{total_iter}.yml')]
    monkeypatch.setattr(sys, 'argv', argv + (['--auto_resume'] if auto_resume else []))
    basicsr.train.train_pipeline(str(root))
    return root / 'experiments' / 'run'


def _weights(exp, it):
    return read_checkpoint(str(exp / 'models' / f'net_g_{it}.pth'))


@pytest.mark.parametrize('validate', [False, True], ids=['no-val', 'val-on-checkpoints'])
def test_stop_and_resume_gives_the_uninterrupted_weights(tmp_path, monkeypatch, validate):
    # 6 pairs, batch 2: 3 iterations per epoch; stopping at 4 is mid-epoch 1 and 8 is in epoch 2.
    # Random crops/flips, label-consistency flips and EMA all take part; with validation on the checkpoint
    # iteration too (it ran after the RNG state was saved and used to shift the global stream).
    a, b = tmp_path / 'straight', tmp_path / 'resumed'
    a.mkdir(), b.mkdir()
    exp_a = _train(a, monkeypatch, 8, validate=validate)
    _train(b, monkeypatch, 4, validate=validate)
    state = read_checkpoint(str(b / 'experiments' / 'run' / 'training_states' / '4.state'))
    assert state['epoch'] == 1 and state['epoch_samples'] == 2 and len(state['rng']) == 1
    exp_b = _train(b, monkeypatch, 8, auto_resume=True, validate=validate)
    assert not list((b / 'experiments').glob('run_archived_*')), 'auto-resume must not archive the run'

    wa, wb = _weights(exp_a, 8), _weights(exp_b, 8)
    for key in ('params', 'params_ema'):
        for name, value in wa[key].items():
            assert torch.equal(value, wb[key][name]), f'{key}.{name} differs after resume'
    # the run really moved between 4 and 8 (a resume that restarted from scratch would not match either)
    w4 = _weights(exp_a, 4)['params']
    assert any(not torch.equal(w4[k], wa['params'][k]) for k in w4)


def test_sampler_continues_mid_epoch_and_seeds_by_position():
    data = list(range(10))
    full = ResumableSampler(data, num_replicas=2, rank=1, seed=3)
    full.set_epoch(2)
    cont = ResumableSampler(data, num_replicas=2, rank=1, seed=3)
    cont.resume_at(2, 3)
    cont.set_epoch(2)
    assert list(cont) == list(full)[3:]
    assert list(cont) == list(cont), 'every iterator over the resumed epoch starts at the same place'
    cont.set_epoch(3)
    full.set_epoch(3)
    assert list(cont) == list(full), 'only the resumed epoch is shortened'
    seeds = [s for _, _, s in full]
    assert len(set(seeds)) == len(seeds)


def test_augmentation_does_not_depend_on_worker_count(tmp_path):
    import basicsr.data
    opt = pipeline_options(str(tmp_path))
    dataset_opt = dict(opt['datasets']['train'], phase='train', scale=2)
    batches = []
    for workers in (0, 2):
        dataset = SeededDataset(basicsr.data.build_dataset(dataset_opt))
        sampler = ResumableSampler(dataset, 1, 0, seed=0)
        loader = basicsr.data.build_dataloader(dataset, dict(dataset_opt, num_worker_per_gpu=workers), num_gpu=0,
                                               sampler=sampler, seed=0)
        batches.append([b['gt'] for b in loader])
    assert len(batches[0]) == len(batches[1]) > 0
    assert all(torch.equal(x, y) for x, y in zip(*batches))


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / 'net_g_4.pth'
    atomic_save({'params': {'w': torch.ones(3)}}, str(target))

    def dying_save(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 half a zip')  # some bytes reach the disk, then the process "dies"
        raise KeyboardInterrupt('killed during save')

    monkeypatch.setattr(checkpoint.torch, 'save', dying_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({'params': {'w': torch.zeros(3)}}, str(target))
    monkeypatch.undo()
    assert torch.equal(read_checkpoint(str(target))['params']['w'], torch.ones(3))
    assert os.listdir(tmp_path) == ['net_g_4.pth'], 'no temporary file may remain'


def test_auto_resume_skips_a_truncated_newest_state(tmp_path):
    exp = tmp_path / 'experiments' / 'run'
    (exp / 'training_states').mkdir(parents=True)
    (exp / 'models').mkdir()
    for it in (4, 8):
        atomic_save({'epoch': 1, 'iter': it, 'optimizers': [], 'schedulers': [], 'epoch_samples': 2},
                    str(exp / 'training_states' / f'{it}.state'))
        atomic_save({'params': {}}, str(exp / 'models' / f'net_g_{it}.pth'))
    good = (exp / 'training_states' / '8.state').read_bytes()
    (exp / 'training_states' / '12.state').write_bytes(good[:len(good) // 2])  # killed mid-write (no atomic save)
    shutil.copy(exp / 'models' / 'net_g_8.pth', exp / 'models' / 'net_g_12.pth')
    opt = {'auto_resume': True, 'model_type': 'DUKD', 'network_g': {}, 'path': {
        'experiments_root': str(exp), 'models': str(exp / 'models'), 'resume_state': None}}
    state = compat.load_resume_state(opt)
    assert state['iter'] == 8 and opt['path']['resume_state'].endswith('8.state')
    assert opt['resume_position'] == {'epoch': 1, 'samples_done': 2, 'world_size': 1}


def test_a_skipped_state_is_said_in_the_runs_log_file(tmp_path, monkeypatch):
    # the warning was printed before BasicSR opened the run's log, so the log of the resumed run never had it
    exp = _train(tmp_path, monkeypatch, 8)
    state = exp / 'training_states' / '8.state'
    state.write_bytes(state.read_bytes()[:100])
    before = set(exp.glob('train_run_*.log'))
    opt_file = write_options(pipeline_options(str(tmp_path), name='run', total_iter=12), tmp_path / 'run_12.yml')
    (tmp_path / 'driver.py').write_text('import os, dukd_arch, basicsr.train\n'
                                        'basicsr.train.train_pipeline(os.path.dirname(os.path.abspath(__file__)))\n')
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, str(tmp_path / 'driver.py'), '-opt', opt_file, '--auto_resume'],
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=repo, OMP_NUM_THREADS='1'),
                          capture_output=True, text=True, timeout=240)  # a fresh process: BasicSR's logger unset
    assert proc.returncode == 0, proc.stderr[-2000:]
    (log, ) = set(exp.glob('train_run_*.log')) - before
    assert 'Skipping unusable training state' in log.read_text()


@pytest.mark.parametrize('change, named', [
    ({'train_extra': {'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]}}},
     'train.optim_g.lr: 0.001 in the run, 0.0001 now'),
    ({'train_extra': {'scheduler': {'type': 'MultiStepLR', 'milestones': [6], 'gamma': 0.5}}},
     'train.scheduler.milestones: [100] in the run, [6] now'),
    ({'train_extra': {'warmup_iter': 8}}, 'train.warmup_iter: -1 in the run, 8 now'),
    ({'train_extra': {'kd_opt': {'type': 'L1Loss', 'loss_weight': 5.0}}},
     'train.kd_opt.loss_weight: 1.0 in the run, 5.0 now'),
    ({'train_extra': {'dukd_opt': {'zoom_in': 1, 'zoom_out': False, 'label_consistency': {'prob': 0.5}}}},
     'train.dukd_opt.zoom_out: True in the run, False now'),
    ({'dataset_extra': {'gt_size': 24}}, 'datasets.train.gt_size: 16 in the run, 24 now'),
], ids=['lr', 'milestones', 'warmup', 'kd-weight', 'zoom-out', 'patch-size'])
def test_resume_refuses_settings_that_would_make_it_another_run(tmp_path, monkeypatch, change, named):
    # BasicSR restores weights, optimizer and scheduler and trains on with whatever the options say now: a new
    # lr or milestone was ignored, a new loss weight, DUKD setting or patch size silently made it another run.
    _train(tmp_path, monkeypatch, 4)
    with pytest.raises(ValueError, match=f'resume from iter 4: .*{re.escape(named)}.*start a new run from the '
                                         'checkpoint'):
        _train(tmp_path, monkeypatch, 8, auto_resume=True, **change)
    _train(tmp_path, monkeypatch, 8, auto_resume=True)  # a longer run with the same settings resumes


def test_resume_says_when_the_seed_differs(tmp_path, monkeypatch, records):
    _train(tmp_path, monkeypatch, 4)
    opt = pipeline_options(str(tmp_path), name='run', total_iter=8)
    opt['manual_seed'] = 7
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', write_options(opt, tmp_path / 'seed7.yml'), '--auto_resume'])
    basicsr.train.train_pipeline(str(tmp_path))
    assert any('manual_seed is 7 now but 0 in the run' in m for m in records)


def _resume_with_teacher(root, monkeypatch, teacher_path):
    opt = pipeline_options(str(root), name='run', total_iter=8)
    opt['path']['pretrain_network_t'] = str(teacher_path)
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', write_options(opt, root / 'teacher.yml'), '--auto_resume'])
    basicsr.train.train_pipeline(str(root))


def test_resume_refuses_another_teacher_and_follows_a_moved_one(tmp_path, monkeypatch):
    # paths are not compared (data and checkpoints move between machines), so the teacher is compared by its weights
    _train(tmp_path, monkeypatch, 4)
    other = tmp_path / 'other_teacher.pth'
    save_teacher(other, seed=1)
    with pytest.raises(ValueError, match="resume from iter 4: the teacher's weights differ from the run's"):
        _resume_with_teacher(tmp_path, monkeypatch, other)
    moved = tmp_path / 'moved' / 'teacher.pth'
    moved.parent.mkdir()
    shutil.copy(tmp_path / 'teacher.pth', moved)
    _resume_with_teacher(tmp_path, monkeypatch, moved)
    assert (tmp_path / 'experiments' / 'run' / 'models' / 'net_g_8.pth').exists()


def test_a_state_from_before_the_settings_record_still_refuses_changed_learning_rates(tmp_path, monkeypatch):
    exp = _train(tmp_path, monkeypatch, 4)
    path = str(exp / 'training_states' / '4.state')
    state = read_checkpoint(path)
    del state['run_settings'], state['manual_seed']
    atomic_save(state, path)
    change = {'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]}}
    with pytest.raises(ValueError, match='initial_lr: options 0.0001, training state 0.001'):
        _train(tmp_path, monkeypatch, 8, auto_resume=True, train_extra=change)


def test_an_autoteachers_file_may_move_between_stop_and_resume():
    opt = {'model_type': 'DUKD', 'scale': 4, 'train': {'total_iter': 8},
           'network_t': {'type': 'AutoTeacher', 'path': '/old/pan.pth', 'scale': 4}}
    moved = {**opt, 'network_t': {**opt['network_t'], 'path': '/new/pan.pth'}}
    assert changed_settings(run_settings(opt), run_settings(moved)) == []
    rescaled = {**opt, 'network_t': {**opt['network_t'], 'scale': 2}}
    assert changed_settings(run_settings(opt), run_settings(rescaled)) == ['network_t.scale: 4 in the run, 2 now']
