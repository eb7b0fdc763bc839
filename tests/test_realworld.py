"""Real-world distillation on CPU with tiny networks: degradation, queue, models, checkpoints."""
import copy
import os
import re
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.data import build_dataset
from basicsr.models import build_model
from basicsr.utils import USMSharp as BasicsrUSMSharp
from conftest import make_opt, smooth_image
from dukd_arch.ops import zoom_in
from dukd_arch.io.checkpoint import extract_state_dict, read_checkpoint
from dukd_arch.data.degradation import (REAL_ESRGAN_DEGRADATION, REAL_ESRGAN_KERNELS, SecondOrderDegradation,
                                         TrainingPairQueue, USMSharp, paired_random_crop, sample_kernels, seeded)

SCALE = 4
TINY_RRDB_T = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': SCALE, 'num_feat': 8, 'num_block': 1,
               'num_grow_ch': 4}
TINY_RRDB_S = {**TINY_RRDB_T, 'num_feat': 4}
# published settings, but milder first-order downscaling so that 48-px test images can be degraded
TEST_DEGRADATION = {**REAL_ESRGAN_DEGRADATION, 'resize_range': [0.5, 1.5]}
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _kernels(batch, seed=0):
    import random
    random.seed(seed)
    np.random.seed(seed)
    draws = [sample_kernels(REAL_ESRGAN_KERNELS) for _ in range(batch)]
    return {k: torch.stack([d[k] for d in draws]) for k in draws[0]}


def _batch(seed, batch=2, size=48):
    g = torch.Generator().manual_seed(seed)
    return {'gt': torch.rand(batch, 3, size, size, generator=g), **_kernels(batch, seed)}


# ------------------------------------------------------------------------------------------ degradation
def test_pipeline_is_deterministic_under_a_seed_and_leaves_global_rng_alone():
    deg = SecondOrderDegradation(REAL_ESRGAN_DEGRADATION, SCALE)
    data = _batch(0, size=80)
    gt = data['gt'].contiguous(memory_format=torch.channels_last)  # BasicSR's filter2D broke on these on CPU
    ks = (data['kernel1'], data['kernel2'], data['sinc_kernel'])
    state = torch.get_rng_state()
    a, b = deg(gt, *ks, seed=7), deg(gt, *ks, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert not torch.equal(a, deg(gt, *ks, seed=8))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(deg(gt, *ks, generator=g1), deg(gt, *ks, generator=g2))
    assert a.shape == (2, 3, 20, 20)
    assert a.min() >= 0 and a.max() <= 1 and torch.equal(a * 255, (a * 255).round())  # 8-bit values


class _FakeCuda:
    """``torch.cuda``'s RNG API over two CPU generators: stand-ins for the streams of two GPUs."""

    def __init__(self):
        self.default_generators = (torch.Generator().manual_seed(11), torch.Generator().manual_seed(22))
        self.current = 0

    def init(self):
        pass

    def device_count(self):
        return 2

    def current_device(self):
        return self.current

    def _index(self, device):
        device = torch.device('cuda', device) if isinstance(device, int) else torch.device(device)
        return self.current if device.index is None else device.index

    def get_rng_state(self, device='cuda'):
        return self.default_generators[self._index(device)].get_state()

    def set_rng_state(self, state, device='cuda'):
        self.default_generators[self._index(device)].set_state(state)

    def manual_seed(self, seed):
        self.default_generators[self.current].manual_seed(seed)

    def manual_seed_all(self, seed):
        for g in self.default_generators:
            g.manual_seed(seed)


@pytest.fixture
def fake_cuda(monkeypatch):
    fake, real = _FakeCuda(), torch.get_device_module
    monkeypatch.setattr(torch, 'get_device_module',
                        lambda d=None: fake if d is not None and torch.device(d).type == 'cuda' else real(d))
    monkeypatch.setattr(torch.cuda, 'manual_seed_all', fake.manual_seed_all)  # what torch.manual_seed calls
    monkeypatch.setattr(torch.cuda, 'manual_seed', fake.manual_seed)
    return fake


def test_seeded_synthesis_leaves_every_device_stream_alone(fake_cuda):
    streams = fake_cuda.default_generators
    before, cpu_before = [g.get_state() for g in streams], torch.get_rng_state()
    first_draws = [torch.rand(3, generator=torch.Generator().set_state(s)) for s in before]
    with seeded(5, torch.device('cuda', 1)):
        on_device = torch.rand(3, generator=streams[1])
        on_cpu = torch.rand(3)
        assert torch.equal(streams[0].get_state(), before[0])  # the other GPU is not reseeded
    reference = torch.rand(3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(on_device, reference) and torch.equal(on_cpu, reference)  # both seeded inside
    assert torch.equal(torch.get_rng_state(), cpu_before)
    assert all(torch.equal(torch.rand(3, generator=g), d) for g, d in zip(streams, first_draws))  # streams go on
    fake_cuda.current = 1  # torch.device('cuda') after set_device(1), as BasicSR builds it under DDP
    before = [g.get_state() for g in streams]
    with seeded(5, 'cuda'):
        assert torch.equal(torch.rand(3, generator=streams[1]), reference)
    # a seeded pipeline call on the CPU (make_degraded_val, tests) writes no device stream
    deg = SecondOrderDegradation(REAL_ESRGAN_DEGRADATION, SCALE)
    data = _batch(0, size=80)
    deg(data['gt'], data['kernel1'], data['kernel2'], data['sinc_kernel'], seed=3)
    assert all(torch.equal(g.get_state(), s) for g, s in zip(streams, before))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA (the mocked test above runs everywhere)')
def test_seeded_synthesis_leaves_real_cuda_streams_alone():
    states = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    cpu_state = torch.get_rng_state()
    deg = SecondOrderDegradation(REAL_ESRGAN_DEGRADATION, SCALE)
    data = _batch(0, size=80)
    ks = (data['kernel1'], data['kernel2'], data['sinc_kernel'])
    deg(data['gt'], *ks, seed=3)
    gpu = torch.device('cuda', torch.cuda.device_count() - 1)
    deg_gpu = deg.to(gpu)
    a = deg_gpu(data['gt'].to(gpu), *ks, seed=3)
    assert torch.equal(a, deg_gpu(data['gt'].to(gpu), *ks, seed=3))
    assert all(torch.equal(torch.cuda.get_rng_state(i), s) for i, s in enumerate(states))
    assert torch.equal(torch.get_rng_state(), cpu_state)


def test_pipeline_follows_the_module_device_and_dtype_of_inputs():
    deg = SecondOrderDegradation(REAL_ESRGAN_DEGRADATION, SCALE).to('cpu')
    data = _batch(1, size=80)
    out = deg(data['gt'], data['kernel1'].double(), data['kernel2'], data['sinc_kernel'], seed=0)
    assert out.device == data['gt'].device and out.dtype == data['gt'].dtype


def test_bad_options_and_inputs_fail_early_with_the_key():
    with pytest.raises(KeyError, match='jpeg_range2'):
        SecondOrderDegradation({k: v for k, v in REAL_ESRGAN_DEGRADATION.items() if k != 'jpeg_range2'}, 4)
    with pytest.raises(ValueError, match='resize_prob'):
        SecondOrderDegradation({**REAL_ESRGAN_DEGRADATION, 'resize_prob': [0.5, 0.5]}, 4)
    deg = SecondOrderDegradation(REAL_ESRGAN_DEGRADATION, 4)
    data = _batch(0, size=48)
    with pytest.raises(ValueError, match='too small.*at least 74'):
        deg(data['gt'], data['kernel1'], data['kernel2'], data['sinc_kernel'])


def test_separable_usm_equals_basicsr_usm():
    x = torch.rand(2, 3, 64, 72, generator=torch.Generator().manual_seed(0))
    diff = (USMSharp()(x) - BasicsrUSMSharp()(x)).abs()
    # float rounding may flip BasicSR's hard threshold mask at a pixel: bounded by (Gaussian peak) x residual
    assert diff.max() < 2e-3 and diff.mean() < 1e-5


def test_paired_crop_keeps_alignment():
    gt = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    lq = gt[..., ::SCALE, ::SCALE]
    torch.manual_seed(0)
    (crop_gt, ), crop_lq = paired_random_crop([gt], lq, 16, SCALE)
    assert crop_gt.shape[-1] == 16 and crop_lq.shape[-1] == 4
    assert torch.equal(crop_gt[..., ::SCALE, ::SCALE], crop_lq)


# ------------------------------------------------------------------------------------------ queue
def test_queue_fills_then_mixes_without_losing_or_unpairing_samples():
    queue = TrainingPairQueue(4)
    seen = []
    for step in range(2):  # filling: batches come back unchanged
        lq = torch.tensor([[2. * step], [2. * step + 1]])
        out_lq, out_gt = queue(lq, lq * 10)
        assert torch.equal(out_lq, lq)
        seen += lq.view(-1).tolist()
    assert len(queue) == 4
    torch.manual_seed(0)
    for step in range(2, 6):
        lq = torch.tensor([[2. * step], [2. * step + 1]])
        pool_before = sorted(queue.pool[0].view(-1).tolist())
        out_lq, out_gt = queue(lq, lq * 10)
        assert torch.equal(out_gt, out_lq * 10)  # pairs stay together
        assert set(out_lq.view(-1).tolist()) <= set(pool_before)  # served from the pool
        pool_after = sorted(queue.pool[0].view(-1).tolist())
        assert sorted(pool_after + out_lq.view(-1).tolist()) == sorted(pool_before + lq.view(-1).tolist())
    with pytest.raises(ValueError, match='divisible'):
        TrainingPairQueue(5)(torch.zeros(2, 1))


# ------------------------------------------------------------------------------------------ models
def _save_rrdb(path, net_opt, seed):
    torch.manual_seed(seed)
    net = RRDBNet(**{k: v for k, v in net_opt.items() if k != 'type'})
    torch.save({'params_ema': net.state_dict()}, path)


def _opt(tmp_path, model_type='DUKDRealESRNetModel', **top):
    teacher = tmp_path / 'teacher.pth'
    if not teacher.exists():
        _save_rrdb(teacher, TINY_RRDB_T, 0)
    opt = make_opt(tmp_path, model_type=model_type, network_g=copy.deepcopy(TINY_RRDB_S),
                   network_t=copy.deepcopy(TINY_RRDB_T), scale=SCALE)
    opt['path']['param_key_t'] = 'params_ema'
    opt.update(TEST_DEGRADATION)
    opt.update(gt_size=48, queue_size=4)  # 12-px LR: the smallest zoom-in tile degrade_like_lr takes here
    opt['datasets']['train']['gt_size'] = 48
    opt['train']['dukd_opt'] = {'zoom_in': 1, 'zoom_out': True,
                                'label_consistency': {'prob': 0.5, 'ops': ['vflip', 'hflip', 'transpose']}}
    opt.update(top)
    return opt


def _train(model, batches):
    for it, data in enumerate(batches, 1):
        model.feed_data(data)
        model.optimize_parameters(it)


def _write_gt_folder(root, n=2, size=56):
    rng = np.random.default_rng(0)
    os.makedirs(root / 'gt', exist_ok=True)
    with open(root / 'meta_info.txt', 'w') as f:
        for i in range(n):
            cv2.imwrite(str(root / 'gt' / f'{i}.png'), smooth_image(rng, size, size + 8 * i))
            f.write(f'{i}.png\n')


def test_realesrgan_dataset_feeds_a_few_cpu_training_steps(tmp_path):
    _write_gt_folder(tmp_path)
    ds_opt = {'name': 'tiny', 'type': 'RealESRGANDataset', 'dataroot_gt': str(tmp_path / 'gt'),
              'meta_info': str(tmp_path / 'meta_info.txt'), 'io_backend': {'type': 'disk'}, 'use_hflip': True,
              'use_rot': False, 'phase': 'train', 'blur_kernel_size': 21, 'blur_kernel_size2': 21,
              **REAL_ESRGAN_KERNELS}
    loader = torch.utils.data.DataLoader(build_dataset(ds_opt), batch_size=2)
    data = next(iter(loader))
    assert data['gt'].shape == (2, 3, 400, 400) and data['kernel1'].shape == (2, 21, 21)  # padded to 400
    data['gt'] = data['gt'][..., :96, :96]  # keep the CPU step cheap; kernels as the dataset drew them
    model = build_model(_opt(tmp_path))
    teacher = copy.deepcopy(model.net_t.state_dict())
    student = copy.deepcopy(model.net_g.state_dict())
    _train(model, [data, data])
    assert model.lq.shape == (2, 3, 12, 12) and model.gt.shape == (2, 3, 48, 48)
    assert torch.equal(model.gt, model.gt_usm)  # l1_gt_usm follows gt_usm (true)
    assert set(model.get_current_log()) == {'l_pix', 'l_kd', 'l_zoom_in', 'l_zoom_out_lr', 'l_zoom_out_kd', 'l_total'}
    assert model.get_current_log()['l_zoom_out_lr'] == 0  # the degraded LR is no label
    assert all(torch.equal(teacher[k], v) for k, v in model.net_t.state_dict().items())
    assert any(not torch.equal(student[k], v) for k, v in model.net_g.state_dict().items())


def test_training_is_reproducible_under_a_seed(tmp_path):
    weights, opt = [], _opt(tmp_path)  # writes the teacher file (which seeds) before we seed
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model(copy.deepcopy(opt))
        _train(model, [_batch(1), _batch(2), _batch(3)])  # the third step dequeues from the full pool
        weights.append(model.net_g.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_resume_says_that_the_training_pair_queue_starts_empty(tmp_path, records):
    model = build_model(_opt(tmp_path))
    _train(model, [_batch(1), _batch(2)])
    model.save_training_state(0, 2)
    state = read_checkpoint(str(tmp_path / 'states' / '2.state'))
    assert not any('queue' in key for key in state)  # Real-ESRGAN's choice: the pool is 180 full-size pairs
    resumed = build_model(_opt(tmp_path))
    resumed.resume_training(state)
    assert len(resumed.queue) == 0
    assert any('training-pair queue (queue_size 4) is not in training states' in m for m in records)


def test_zoom_in_sources(tmp_path):
    torch.manual_seed(0)
    clean = build_model(_opt(tmp_path, upcycling={'zoom_in_source': 'clean'}, gt_usm=False))
    clean.feed_data(_batch(0))
    tiles, t = clean.zoom_in_inputs(), clean.lq.shape[-1]
    grid = [(r, c) for r in range(0, 48, t) for c in range(0, 48, t)]
    assert any(torch.equal(tiles, clean.gt_clean[..., r:r + t, c:c + t]) for r, c in grid)  # a clean grid cell
    degraded = build_model(_opt(tmp_path))
    degraded.feed_data(_batch(0))
    torch.manual_seed(1)
    tiles = degraded.zoom_in_inputs()
    assert tiles.shape == degraded.lq.shape and torch.equal(tiles * 255, (tiles * 255).round())  # 8-bit, LR-sized
    torch.manual_seed(1)  # the same draws: a cell of the sharpened GT, degraded like the LR with its sample's kernels
    cells = zoom_in(degraded.gt_usm, (t, t), 1, 'grid')
    assert torch.equal(tiles, degraded.degradation.degrade_like_lr(cells, *degraded.kernels))
    assert not torch.allclose(tiles, cells, atol=1e-3)
    with pytest.raises(ValueError, match='zoom_in_source'):
        build_model(_opt(tmp_path, upcycling={'zoom_in_source': 'noisy'}))


def test_zoom_in_tiles_get_the_lr_degradation():
    deg = SecondOrderDegradation(REAL_ESRGAN_DEGRADATION, SCALE)
    ks = _kernels(2)
    colour = torch.tensor([[0.3, 0.5, 0.7], [0.6, 0.4, 0.2]]).view(2, 3, 1, 1)
    # on content alike at both scales (flat), a tile's degradation is the LR's, draw for draw
    tile = deg.degrade_like_lr(colour.expand(-1, -1, 24, 24), *ks.values(), seed=4)
    lr = deg(colour.expand(-1, -1, 96, 96), *ks.values(), seed=4)
    assert lr.shape == tile.shape and (lr - tile).abs().max() <= 1 / 255 + 1e-6
    assert tile.std() > 0.01  # and it is degraded (noise), not passed through
    # degrading the tile at its own size (scale 1) is a different, milder-noise, more blurred degradation
    assert (deg(colour.expand(-1, -1, 96, 96), *ks.values(), seed=4, scale=1)[..., :24, :24] - lr).abs().max() > 0.02
    small = deg.degrade_like_lr(torch.rand(2, 3, 12, 12), *ks.values(), seed=4)  # below 19 px: mirrored out
    assert small.shape == (2, 3, 12, 12) and torch.equal(small * 255, (small * 255).round())
    with pytest.raises(ValueError, match='gt_size >= 28'):
        deg.degrade_like_lr(colour.expand(-1, -1, 6, 6), *ks.values(), seed=4)


def test_scratch_baseline_needs_no_teacher(tmp_path):
    opt = _opt(tmp_path, model_type='ScratchRealESRNetModel')
    del opt['network_t'], opt['path']['pretrain_network_t'], opt['train']['kd_opt'], opt['train']['dukd_opt']
    model = build_model(opt)
    _train(model, [_batch(0)])
    assert not hasattr(model, 'net_t') and model.lq.shape == (2, 3, 12, 12)


def test_test_mode_needs_no_degradation_keys(tmp_path):
    opt = _opt(tmp_path, is_train=False)
    for key in list(REAL_ESRGAN_DEGRADATION) + ['gt_size', 'queue_size']:
        del opt[key]
    model = build_model(opt)  # as test.py builds it: no teacher, no pipeline
    model.feed_data({'lq': torch.rand(1, 3, 8, 8)})
    model.test()
    assert model.output.shape == (1, 3, 32, 32) and not hasattr(model, 'degradation')


def test_paired_training_without_the_pipeline(tmp_path):
    opt = _opt(tmp_path, high_order_degradation=False)
    for key in REAL_ESRGAN_DEGRADATION:
        del opt[key]
    model = build_model(opt)
    gt = torch.rand(2, 3, 32, 32)
    _train(model, [{'lq': gt[..., ::SCALE, ::SCALE].clone(), 'gt': gt}])
    # BasicSR's RealESRNetModel: the clean GT is the pixel target of paired training (gt_usm: true notwithstanding)
    assert torch.equal(model.gt_clean, gt) and torch.equal(model.gt, gt)
    assert torch.equal(model.gt_usm, USMSharp()(gt))
    tiles = model.zoom_in_inputs()
    assert any(torch.equal(tiles, gt[..., r:r + 8, c:c + 8]) for r in range(0, 32, 8) for c in range(0, 32, 8))
    sharpened = build_model({**opt, 'l1_gt_usm': True})  # an explicit choice wins
    sharpened.feed_data({'lq': gt[..., ::SCALE, ::SCALE].clone(), 'gt': gt})
    assert torch.equal(sharpened.gt, USMSharp()(gt))


def test_kd_baseline_and_paired_validation_path(tmp_path):
    model = build_model(_opt(tmp_path, model_type='KDRealESRNetModel'))
    _train(model, [_batch(0)])
    assert set(model.get_current_log()) == {'l_pix', 'l_kd', 'l_total'}
    model.is_train = False  # what nondist_validation does: pairs from disk, no synthesis
    lq = torch.rand(1, 3, 8, 8)
    model.feed_data({'lq': lq, 'gt': torch.rand(1, 3, 32, 32)})
    assert model.lq is not None and torch.equal(model.lq, lq)
    with pytest.raises(KeyError, match='kernel1'):
        model.is_train = True
        model.feed_data({'gt': torch.rand(2, 3, 48, 48)})


def test_gan_stage_keeps_distillation_and_trains_the_discriminator(tmp_path):
    opt = _opt(tmp_path, model_type='DUKDRealESRGANModel')
    opt['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4, 'skip_connection': True}
    opt['train']['optim_d'] = {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]}
    opt['train']['gan_opt'] = {'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1}
    model = build_model(opt)  # perceptual off: VGG weights cannot be downloaded here
    net_d = copy.deepcopy(model.net_d.state_dict())
    _train(model, [_batch(0), _batch(1)])
    log = model.get_current_log()
    assert {'l_kd', 'l_zoom_in', 'l_zoom_out_kd', 'l_g_gan', 'l_d_real', 'l_d_fake'} <= set(log)
    assert any(not torch.equal(net_d[k], v) for k, v in model.net_d.state_dict().items())
    model.save(0, 2)
    assert sorted(os.listdir(tmp_path / 'models')) == ['net_d_2.pth', 'net_g_2.pth']
    paired = build_model({**copy.deepcopy(opt), 'high_order_degradation': False})
    gt = torch.rand(2, 3, 32, 32)
    paired.feed_data({'lq': gt[..., ::SCALE, ::SCALE].clone(), 'gt': gt})
    assert torch.equal(paired.gt, USMSharp()(gt))  # RealESRGANModel: l1_gt_usm (default true) in paired training
    del opt['train']['gan_opt']
    with pytest.raises(KeyError, match='gan_opt'):
        build_model(opt)


@pytest.mark.parametrize('device', ['meta', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA device'))])
def test_checkpoint_trained_on_cpu_loads_on_other_devices(tmp_path, device):
    model = build_model(_opt(tmp_path))
    _train(model, [_batch(0)])
    model.save(0, 1)
    path = str(tmp_path / 'models' / 'net_g_1.pth')
    state, _ = extract_state_dict(read_checkpoint(path), 'params_ema', path)
    net_kwargs = {k: v for k, v in TINY_RRDB_S.items() if k != 'type'}
    lq = torch.rand(1, 3, 8, 8)
    model.net_g_ema.eval()
    with torch.no_grad():
        expected = model.net_g_ema(lq)
    if device == 'meta':
        meta = torch.load(path, map_location='meta', weights_only=True)['params_ema']
        assert all(v.is_meta and v.shape == state[k].shape for k, v in meta.items())
        with torch.device('meta'):
            net = RRDBNet(**net_kwargs)
        net.load_state_dict(state, assign=True)  # materialise a meta-built network from the CPU file
        with torch.no_grad():
            assert torch.allclose(net(lq), expected, atol=1e-6)
    else:
        net = RRDBNet(**net_kwargs).to(device)
        net.load_state_dict(torch.load(path, map_location=device, weights_only=True)['params_ema'])
        with torch.no_grad():
            assert torch.allclose(net(lq.to(device)).cpu(), expected, atol=1e-4)


def _script(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'scripts', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parity_check_passes_ours_and_detects_an_unsharpened_input():
    parity = _script('check_degradation_parity')
    rng = np.random.default_rng(0)
    images = [torch.from_numpy(smooth_image(rng, 96, 96)[:, :, ::-1] / 255.).float().permute(2, 0, 1)
              for _ in range(3)]
    # narrowed ranges (both sides): fewer batches can show a change; every operator still runs
    narrow = {'resize_prob': [0, 0, 1], 'resize_prob2': [0, 0, 1], 'noise_range': [1, 3], 'noise_range2': [1, 3],
              'poisson_scale_range': [0.05, 0.2], 'poisson_scale_range2': [0.05, 0.2], 'jpeg_range': [85, 95],
              'jpeg_range2': [85, 95]}
    n_stats = len(parity.STATS)

    def smallest_p(control):
        result = parity.compare(images, 24, 4, 80, 0, control, settings=narrow, rounds=1999)
        return min(result['perm_p'].min(), result['ks_p'].min()) * n_stats, result['target_diff']

    p, target_diff = smallest_p('none')  # ours against BasicSR's own feed_data (its dense USM): no difference
    assert p > 0.05 and target_diff < 2e-3
    p, target_diff = smallest_p('unsharpened')  # the unsharpened GT fed to our pipeline: detected
    assert p < 0.01 and target_diff > 0.05


def test_validation_lr_is_made_like_the_training_lr(tmp_path):
    script = _script('make_degraded_val')
    os.makedirs(tmp_path / 'hr')
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), smooth_image(np.random.default_rng(0), 84, 84))
    shipped = osp.join(REPO, 'options', 'realworld', 'dukd_realesrnet_x4.yml')
    assert _yaml(shipped)['gt_usm'] is True

    def lq(out, *extra):
        script.main(['--gt', str(tmp_path / 'hr'), '--out', str(tmp_path / out), '--seed', '0', *extra])
        return cv2.imread(str(tmp_path / out / 'lq' / 'a.png'))

    documented = lq('doc', '--opt', shipped)  # the command of docs/realworld.md and the option files
    assert np.array_equal(documented, lq('usm', '--opt', shipped, '--gt-usm'))  # gt_usm taken from the options
    assert not np.array_equal(documented, lq('clean', '--opt', shipped, '--no-gt-usm'))
    assert documented.shape == (21, 21, 3)  # the scale (4) from the options too
    with pytest.raises(SystemExit, match='contradicts'):
        lq('bad', '--opt', shipped, '--scale', '2')


def test_no_hard_coded_cuda_in_the_real_world_code():
    files = ['dukd_arch/data/degradation.py', 'dukd_arch/models/dukd_realesrnet_model.py',
             'dukd_arch/models/dukd_realesrgan_model.py', 'scripts/make_degraded_val.py']
    for name in files:
        with open(osp.join(REPO, name)) as f:
            assert not re.search(r"(?<!`)\.cuda\(|'cuda'|\"cuda\"", f.read()), name  # docs quote it in ``


# ------------------------------------------------------------------------------------------ option files
def _yaml(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def _meta_params(net_opt):
    from basicsr.archs import build_network
    with torch.device('meta'):
        return sum(p.numel() for p in build_network(dict(net_opt)).parameters())


def test_real_world_option_files_carry_the_published_settings():
    from dukd_arch.data.degradation import KERNEL_KEYS
    from dukd_arch.models.dukd_options import parse_dukd_options
    names = ['dukd_realesrnet_x4', 'dukd_realesrnet_srvgg_x4', 'kd_realesrnet_x4', 'scratch_realesrnet_x4',
             'dukd_realesrgan_x4']
    for name in names:
        opt = _yaml(osp.join(REPO, 'options', 'realworld', f'{name}.yml'))
        assert {k: opt[k] for k in REAL_ESRGAN_DEGRADATION} == REAL_ESRGAN_DEGRADATION, name
        train_set = opt['datasets']['train']
        assert train_set['type'] == 'RealESRGANDataset' and 'meta_info' in train_set, name
        assert {k: train_set[k] for k in KERNEL_KEYS} == REAL_ESRGAN_KERNELS, name
        assert opt['gt_size'] == train_set['gt_size'] == 256, name
        assert opt['queue_size'] % train_set['batch_size_per_gpu'] == 0, name
        if 'network_t' in opt:  # Real-ESRNet / Real-ESRGAN x4plus: 16.7M parameters
            assert opt['network_t']['num_block'] == 23 and opt['network_t']['num_feat'] == 64, name
            assert _meta_params(opt['network_t']) == 16697987, name
        assert _meta_params(opt['network_g']) < 5e6, name
        if name.startswith('dukd'):
            assert 'invert' not in parse_dukd_options(opt['train']).lcr_ops, name
    student = _yaml(osp.join(REPO, 'options', 'realworld', 'dukd_realesrnet_x4.yml'))
    for name in ('test_realworld_x4', 'test_realworld_paired_x4'):
        test = _yaml(osp.join(REPO, 'options', 'realworld', 'test', f'{name}.yml'))
        assert test['network_g'] == student['network_g']
        assert test['path']['pretrain_network_g'] == f"experiments/{student['name']}/models/net_g_latest.pth"


def test_real_world_options_that_would_train_otherwise_than_they_say_are_refused(tmp_path, records):
    """The crop the model takes is the top-level gt_size; RealESRGANDataset yields HR only; every kernel key is
    read without a default; a top-level final_sinc_prob was accepted and never read."""
    from dukd_arch.options import OptionError, validate_options
    base = _yaml(osp.join(REPO, 'options', 'realworld', 'dukd_realesrnet_x4.yml'))

    def problems(change):
        opt = copy.deepcopy(base)
        change(opt)
        with pytest.raises(OptionError) as err:
            validate_options(opt)
        return str(err.value)

    assert 'datasets.train.gt_size: 48, but synthesised pairs are cropped to the top-level gt_size 256' in problems(
        lambda o: o['datasets']['train'].update(gt_size=48))
    assert 'gt_size: missing: real-world training crops' in problems(lambda o: o.pop('gt_size'))
    assert 'high_order_degradation: false trains on given LR/HR pairs, but datasets.train is RealESRGANDataset' in \
        problems(lambda o: o.update(high_order_degradation=False))
    assert 'datasets.train.kernel_list2: missing' in problems(lambda o: o['datasets']['train'].pop('kernel_list2'))
    assert 'final_sinc_prob: unknown key' in problems(lambda o: o.update(final_sinc_prob=0.0))
    # the model checks zoom-out against the crop it takes: 200 px HR -> 50 px LR -> 13 px zoom-out -> 52 px back
    with pytest.raises(ValueError, match=r'gt_size 200 at scale 4 gives 50px LR patches'):
        build_model(_opt(tmp_path, gt_size=200))
    build_model(_opt(tmp_path))  # the start-up line states the weight the real-world model uses
    assert any('l_zoom_out_lr 0.0 (real-world default: the degraded LR is no label)' in m for m in records)
