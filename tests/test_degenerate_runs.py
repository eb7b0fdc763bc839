"""Runs that used to "succeed" wrongly: too little data, val images too small for a window, diverged skip runs."""
import os
import shutil
import sys

import pytest
import torch

import basicsr.data
import basicsr.train
from basicsr.models import build_model
from basicsr.utils.registry import LOSS_REGISTRY
from conftest import SCALE, make_opt, write_pairs
from pipeline_opts import pipeline_options, write_options

SWIN = {'type': 'SwinIR', 'upscale': SCALE, 'in_chans': 3, 'img_size': 8, 'window_size': 8, 'img_range': 1.,
        'depths': [1], 'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle'}


@LOSS_REGISTRY.register()
class NaNFirstCallsForTests(torch.nn.Module):
    """L1, but NaN for the first ``nan_calls`` calls of this instance: a run that diverges early."""

    def __init__(self, nan_calls=0, loss_weight=1.0, reduction='mean'):
        super().__init__()
        self.nan_calls, self.calls, self.loss_weight = nan_calls, 0, loss_weight

    def forward(self, pred, target, **kwargs):
        self.calls += 1
        loss = self.loss_weight * (pred - target).abs().mean()
        return loss * float('nan') if self.calls <= self.nan_calls else loss


def _train(root, monkeypatch, **kwargs):
    opt = pipeline_options(str(root), name='run', **kwargs)
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', write_options(opt, root / 'run.yml')])
    basicsr.train.train_pipeline(str(root))
    return root / 'experiments' / 'run'


# ------------------------------------------------------------------------------------------ item 4: degenerate data
def test_training_set_smaller_than_one_batch_fails_before_training(tmp_path, monkeypatch):
    # before: 0 iterations, exit 0 and random weights saved as net_g_latest.pth
    with pytest.raises(ValueError, match=r'3 training pairs x dataset_enlarge_ratio 1 = 3 samples.*fewer than one '
                       r'batch of 4.*lower batch_size_per_gpu to 3 or less, or set dataset_enlarge_ratio to 2'):
        _train(tmp_path, monkeypatch, n_images=3, batch=4)
    assert not list(tmp_path.glob('experiments/run/models/*.pth'))


def test_empty_training_set_is_named_not_a_zero_division(tmp_path, monkeypatch):
    for sub in ('HR', 'LR'):
        (tmp_path / 'data' / sub).mkdir(parents=True)
    with pytest.raises(ValueError, match=r'found no training pairs \(dataroot_gt: .*data/HR, dataroot_lq: .*data/LR\)'):
        _train(tmp_path, monkeypatch)


def test_enlarge_ratio_makes_a_small_set_train(tmp_path, monkeypatch):
    exp = _train(tmp_path, monkeypatch, n_images=3, batch=4, total_iter=2, save_freq=2,
                 dataset_extra={'dataset_enlarge_ratio': 2})
    assert (exp / 'models' / 'net_g_latest.pth').exists()


def _val_loader(root):
    """Two val pairs: 001 fits the window 8 (LR 16 px), 000 does not (LR 3 px: it would need 5 px of padding)."""
    big_hr, big_lr = write_pairs(str(root / 'big'), n=2, size=32, seed=1)
    small_hr, small_lr = write_pairs(str(root / 'small'), n=1, size=6, seed=2)
    for src, dst in ((small_hr, big_hr), (small_lr, big_lr)):
        shutil.copy(os.path.join(src, '000.png'), os.path.join(dst, '000.png'))
    opt = {'name': 'mixed', 'type': 'PairedImageDataset', 'dataroot_gt': big_hr, 'dataroot_lq': big_lr,
           'io_backend': {'type': 'disk'}, 'phase': 'val', 'scale': SCALE}
    return basicsr.data.build_dataloader(basicsr.data.build_dataset(opt), opt, num_gpu=0)


def _test_model(tmp_path):
    torch.manual_seed(0)
    opt = make_opt(tmp_path, model_type='DUKDModel', network_g=dict(SWIN), is_train=False)
    opt['val'] = {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': SCALE}}}
    opt['path'] = {'visualization': str(tmp_path / 'vis')}
    return build_model(opt)


def test_val_image_too_small_for_the_window_is_named_and_left_out(tmp_path, records):
    model = _test_model(tmp_path)
    loader = _val_loader(tmp_path)
    model.validation(loader, current_iter=1, tb_logger=None, save_img=False)
    assert any('000.png' in m and '3x3' in m and 'window size 8' in m for m in records)
    assert any('1 image(s) left out, metrics over 1' in m for m in records)
    # the metric is the one image that fits, not an average diluted by the left-out one
    batch = next(b for b in loader if b['lq_path'][0].endswith('001.png'))
    model.feed_data(batch)
    model.test()
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    ref = calculate_psnr(tensor2img([model.output.detach().cpu()]), tensor2img([batch['gt']]), crop_border=SCALE)
    assert model.metric_results['psnr'] == pytest.approx(ref)


def test_padding_error_names_the_image(tmp_path):
    model = _test_model(tmp_path)
    model.feed_data({'lq': torch.rand(1, 3, 3, 3), 'lq_path': ['/data/val/tiny.png']})
    with pytest.raises(ValueError, match=r'/data/val/tiny\.png: an input of 3x3 cannot be reflect-padded'):
        model.test()


# ------------------------------------------------------------------------------------------ item 5: divergence
def _nan_batch(batch):
    bad = dict(batch)
    bad['gt'] = batch['gt'].clone()
    bad['gt'][0, 0, 0, 0] = float('nan')
    return bad


def test_skipping_stops_after_max_consecutive_skips(tmp_path, batch):
    model = build_model(make_opt(tmp_path, train_extra={'nonfinite': 'skip', 'max_consecutive_skips': 3}))
    bad = _nan_batch(batch)
    it = 0
    for run in (3, 3):  # a finite step in between starts the count again
        for _ in range(run):
            it += 1
            model.feed_data(bad)
            model.optimize_parameters(it)
        it += 1
        model.feed_data(batch)
        model.optimize_parameters(it)
    model.feed_data(bad)
    for k in range(3):
        model.optimize_parameters(it + 1 + k)
    with pytest.raises(FloatingPointError, match=r'iter 12: non-finite loss \(l_pix=nan.*\) in 4 iterations in a '
                       r'row, more than train.max_consecutive_skips \(3\): the run has diverged'):
        model.optimize_parameters(12)


def test_default_bound_is_20(tmp_path, batch):
    model = build_model(make_opt(tmp_path, train_extra={'nonfinite': 'skip'}))
    model.feed_data(_nan_batch(batch))
    for it in range(1, 21):
        model.optimize_parameters(it)
    with pytest.raises(FloatingPointError, match=r'in 21 iterations in a row, more than .*\(20\)'):
        model.optimize_parameters(21)


@pytest.mark.parametrize('value', [0, True, 2.5, '20'])
def test_bad_max_consecutive_skips(value, tmp_path):
    with pytest.raises(ValueError, match=r'train.max_consecutive_skips must be a whole number >= 1'):
        build_model(make_opt(tmp_path, train_extra={'nonfinite': 'skip', 'max_consecutive_skips': value}))


def _nan_run(root, monkeypatch, nan_calls):
    pixel = {'type': 'NaNFirstCallsForTests', 'nan_calls': nan_calls, 'loss_weight': 1.0}
    return _train(root, monkeypatch, total_iter=4, save_freq=2,
                  train_extra={'nonfinite': 'skip', 'max_consecutive_skips': 10, 'pixel_opt': pixel})


def test_run_that_skipped_more_than_it_trained_fails(tmp_path, monkeypatch):
    # before: every step of a diverged run skipped, net_g_latest.pth written, exit 0
    with pytest.raises(RuntimeError, match=r'skipped 3 of its 4 iterations for a non-finite loss.*more than it '
                       r'trained on.*net_g_latest.pth was not written'):
        _nan_run(tmp_path, monkeypatch, nan_calls=3)
    assert not (tmp_path / 'experiments' / 'run' / 'models' / 'net_g_latest.pth').exists()


def test_run_with_a_few_skips_finishes_and_says_so(tmp_path, monkeypatch, records):
    exp = _nan_run(tmp_path, monkeypatch, nan_calls=1)
    assert (exp / 'models' / 'net_g_latest.pth').exists()
    assert any('1 of 4 iterations were skipped' in m for m in records)


def test_skip_counts_survive_a_resume(tmp_path, batch):
    from dukd_arch.io.checkpoint import read_checkpoint
    opt = make_opt(tmp_path, train_extra={'nonfinite': 'skip'})
    model = build_model(opt)
    model.feed_data(_nan_batch(batch))
    for it in (1, 2):
        model.optimize_parameters(it)
    model.feed_data(batch)
    model.optimize_parameters(3)
    model.save_training_state(0, 3)
    resumed = build_model(make_opt(tmp_path, train_extra={'nonfinite': 'skip'}))
    resumed.resume_training(read_checkpoint(os.path.join(opt['path']['training_states'], '3.state')))
    assert resumed.nonfinite_counts == {'iters': 3, 'skipped': 2}
    resumed.feed_data(_nan_batch(batch))
    resumed.optimize_parameters(4)
    with pytest.raises(RuntimeError, match='skipped 3 of its 4 iterations'):
        resumed.check_skipped_steps()
