"""Do our real-world models synthesise the same training pairs as BasicSR's ``RealESRNetModel.feed_data``?

    OMP_NUM_THREADS=1 python scripts/check_degradation_parity.py --gt /path/to/hr_images --batches 400 --seed 0
    ... --control unsharpened   # negative control: ours degrades the unsharpened GT (gt_usm: false)
    ... --control basicsr       # null control: BasicSR against BasicSR (p-values should look uniform)

Both sides get the same GT batches (random ``--size`` px crops) and the same kernels (drawn as
RealESRGANDataset draws them), with ``gt_usm: true`` (the USM-sharpened GT is degraded, as Real-ESRNet
trains). BasicSR's ``feed_data`` runs unbound on a CPU stand-in model (its own ``USMSharp``, queue off,
crop = whole image); ours is ``RealWorldSynthesis.feed_data``, the code our models run.

The two draw from different random streams, so the check is statistical, and at the level of whole
batches: one call shares its resize factors and modes, noise type and operation order across the
batch, so samples of one batch are not independent and per-sample tests would be overconfident (two
runs of BasicSR itself then differ at p < 0.05). Per batch, the mean of each LR statistic (PSNR to the
antialiased bicubic downscale of the GT, Immerkaer noise sigma, mean absolute Laplacian, 8x8
blockiness, mean level) is taken; the batch means of the two sides are compared with

* a paired permutation test: the two sides of one batch saw the same GT and kernels, so under parity
  the sign of each batch's difference is a coin flip; p = share of random sign flips whose |mean
  difference| reaches the observed one;
* a two-sample Kolmogorov-Smirnov test on the batch means (unpaired, weaker).

A small p-value (below 0.01 after multiplying by the number of statistics) means a detected
difference; a large one means none was detected at this sample size, not proof of equality. The
pixel target (the sharpened GT, BasicSR's dense USM vs our separable one) is compared exactly.
"""
import argparse
import os
import random
import sys
from os import path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import torch
import yaml
from scipy.stats import ks_2samp
from torch.nn import functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import dukd_arch  # noqa: E402,F401  (patches basicsr before its first use)
import basicsr.models.realesrnet_model as basicsr_realesrnet  # noqa: E402
from basicsr.utils import USMSharp as BasicsrUSMSharp  # noqa: E402
from basicsr.utils.diffjpeg import DiffJPEG  # noqa: E402
from dukd_arch.models.dukd_realesrnet_model import RealWorldSynthesis  # noqa: E402
from dukd_arch.data.degradation import (REAL_ESRGAN_DEGRADATION, REAL_ESRGAN_KERNELS, filter2d,  # noqa: E402
                                        sample_kernels)

LAPLACIAN = torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]]).view(1, 1, 3, 3)
IMMERKAER = torch.tensor([[1., -2., 1.], [-2., 4., -2.], [1., -2., 1.]]).view(1, 1, 3, 3)
STATS = ('PSNR to bicubic (dB)', 'noise sigma (8b)', 'abs Laplacian (8b)', '8x8 blockiness', 'mean level (8b)')
CONTROLS = ('none', 'unsharpened', 'basicsr')
SCALE = 4


def lr_stats(gt, lq):
    """(B, 5) per-sample LR statistics; the reference is the GT's antialiased bicubic downscale."""
    ref = F.interpolate(gt, size=lq.shape[-2:], mode='bicubic', antialias=True).clamp(0, 1)
    gray = (0.299 * lq[:, 0] + 0.587 * lq[:, 1] + 0.114 * lq[:, 2])[:, None] * 255
    mse = (lq - ref).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    h, w = gray.shape[-2:]
    sigma = np.sqrt(np.pi / 2) / (6 * (w - 2) * (h - 2)) * F.conv2d(gray, IMMERKAER).abs().sum(dim=(1, 2, 3))
    lap = F.conv2d(gray, LAPLACIAN).abs().mean(dim=(1, 2, 3))
    dx = gray.diff(dim=-1).abs()  # column j holds |x[j + 1] - x[j]|: j % 8 == 7 crosses a JPEG block edge
    edge = (torch.arange(dx.shape[-1]) % 8) == 7
    blocky = dx[..., edge].mean(dim=(1, 2, 3)) / dx[..., ~edge].mean(dim=(1, 2, 3)).clamp_min(1e-6)
    return torch.stack([-10 * torch.log10(mse), sigma, lap, blocky, lq.mean(dim=(1, 2, 3)) * 255], 1)


class BasicsrSide:
    """BasicSR's ``RealESRNetModel.feed_data``, unbound, on a CPU stand-in (queue off, crop = whole image)."""

    def __init__(self, opt, usm=None):
        basicsr_realesrnet.filter2D = filter2d  # BasicSR's own, made contiguous (DiffJPEG: channels-last on CPU)
        self.model = SimpleNamespace(opt=opt, device=torch.device('cpu'), is_train=True,
                                     jpeger=DiffJPEG(differentiable=False), usm_sharpener=usm or BasicsrUSMSharp(),
                                     _dequeue_and_enqueue=lambda: None)

    def __call__(self, data):
        basicsr_realesrnet.RealESRNetModel.feed_data(self.model, data)
        return self.model.lq, self.model.gt  # gt: the pixel-loss target (sharpened when gt_usm)


class OursSide(RealWorldSynthesis):
    """``RealWorldSynthesis.feed_data`` (what our real-world models run), queue off, crop = whole image."""

    def __init__(self, opt):
        self.opt, self.is_train, self.device, self.scale = opt, True, torch.device('cpu'), SCALE
        self._init_synthesis()
        self.queue = lambda *batch: batch

    def __call__(self, data):
        self.feed_data(data)
        return self.lq, self.gt


def permutation_p(diff, rounds, rng):
    """Two-sided paired permutation (sign-flip) test of mean(diff) == 0; diff: (N, S) -> (S,) p-values."""
    observed = np.abs(diff.mean(0))
    signs = rng.choice((-1.0, 1.0), size=(rounds, diff.shape[0]))
    null = np.abs(signs @ diff / diff.shape[0])  # (rounds, S)
    return (1 + (null >= observed - 1e-12).sum(0)) / (1 + rounds)


def compare(images, batches, batch, size, seed, control='none', override=None, settings=None, basicsr_usm=None,
            rounds=9999):
    """Batch means of both sides and the tests: a dict with 'basicsr', 'ours' ((batches, S) arrays),
    'perm_p', 'ks_p' ((S,) arrays) and 'target_diff' (max |BasicSR - ours| of the pixel target)."""
    if control not in CONTROLS:
        raise ValueError(f'control must be one of {CONTROLS}, got {control!r}')
    opt = {**REAL_ESRGAN_DEGRADATION, **(settings or {}), 'scale': SCALE, 'gt_usm': True, 'gt_size': size}
    theirs = BasicsrSide(dict(opt), basicsr_usm)
    ours_opt = {**opt, **(override or {})}
    if control == 'unsharpened':
        ours_opt['gt_usm'] = False
    ours = BasicsrSide(dict(opt), basicsr_usm) if control == 'basicsr' else OursSide(ours_opt)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    means = {'basicsr': [], 'ours': []}
    target_diff = 0.0
    for _ in range(batches):
        crops = []
        for _ in range(batch):
            img = random.choice(images)
            top, left = random.randint(0, img.shape[1] - size), random.randint(0, img.shape[2] - size)
            crops.append(img[:, top:top + size, left:left + size])
        gt = torch.stack(crops)
        draws = [sample_kernels(REAL_ESRGAN_KERNELS) for _ in range(batch)]
        data = {'gt': gt, **{k: torch.stack([d[k] for d in draws]) for k in draws[0]}}
        for name, side in (('basicsr', theirs), ('ours', ours)):
            lq, target = side(dict(data))
            means[name].append(lr_stats(gt, lq).mean(0))
            if name == 'basicsr':
                ref_target = target
        target_diff = max(target_diff, (ref_target - target).abs().max().item())
    a, b = (torch.stack(means[k]).numpy().astype(np.float64) for k in ('basicsr', 'ours'))
    rng = np.random.default_rng(seed)
    return {'basicsr': a, 'ours': b, 'perm_p': permutation_p(b - a, rounds, rng),
            'ks_p': np.array([ks_2samp(a[:, j], b[:, j]).pvalue for j in range(a.shape[1])]),
            'target_diff': target_diff}


def load_images(folder, size):
    images = []
    for name in sorted(os.listdir(folder)):
        img = cv2.imread(osp.join(folder, name))
        if img is None:
            continue
        if min(img.shape[:2]) < size:
            raise SystemExit(f'{name} is {img.shape[0]}x{img.shape[1]}, smaller than --size {size}')
        images.append(torch.from_numpy(img[:, :, ::-1].astype(np.float32) / 255).permute(2, 0, 1))
    if not images:
        raise SystemExit(f'no images in {folder}')
    return images


def report(result, args):
    a, b = result['basicsr'], result['ours']
    second = 'BasicSR again' if args.control == 'basicsr' else 'ours'
    lines = [f'{len(a)} batches of {args.batch} ({args.size} px GT crops, scale {SCALE}, published settings unless '
             f'set, gt_usm: true), control: {args.control}' + (f', both sides: {args.set}' if args.set else '')
             + (f', ours overridden: {args.override}' if args.override else ''),
             f'| statistic (batch means) | BasicSR mean (sd) | {second} mean (sd) | paired permutation p | KS p |',
             '|---|---|---|---|---|']
    for j, name in enumerate(STATS):
        lines.append(f'| {name} | {a[:, j].mean():.3f} ({a[:, j].std():.3f}) | {b[:, j].mean():.3f} '
                     f'({b[:, j].std():.3f}) | {result["perm_p"][j]:.4f} | {result["ks_p"][j]:.4f} |')
    lines.append(f'pixel target: max |BasicSR - ours| = {result["target_diff"]:.2e} (8-bit level: 3.9e-03)')
    low = min(result['perm_p'].min(), result['ks_p'].min()) * len(STATS)
    lines.append(f'smallest p x {len(STATS)} statistics = {min(low, 1):.4f}: '
                 + ('difference detected' if low < 0.01 else 'no difference detected at this sample size'))
    return '\n'.join(lines)


def parse_settings(items):
    settings = {}
    for item in items:
        if '=' not in item:
            raise SystemExit(f'expected KEY=YAML, got {item!r} (e.g. "noise_range2=[1, 35]")')
        key, value = item.split('=', 1)
        settings[key] = yaml.safe_load(value)
    return settings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt', required=True, help='folder of HR images (each at least --size px a side)')
    parser.add_argument('--batches', type=int, default=400)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--size', type=int, default=80, help='GT crop side (>= 74 at the published resize_range)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--control', choices=CONTROLS, default='none',
                        help='unsharpened: ours degrades the clean GT (must be detected); basicsr: BasicSR on both '
                        'sides (p-values should look uniform)')
    parser.add_argument('--override', action='append', default=[], metavar='KEY=YAML',
                        help='change a setting for ours only (another negative control)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=YAML',
                        help='change a setting on both sides (narrower ranges: more power per batch)')
    args = parser.parse_args(argv)
    override, settings = parse_settings(args.override), parse_settings(args.set)
    unknown = sorted((set(override) | set(settings)) - set(REAL_ESRGAN_DEGRADATION))
    if unknown:
        raise SystemExit(f'unknown degradation key(s) {unknown}; known: {sorted(REAL_ESRGAN_DEGRADATION)}')
    result = compare(load_images(args.gt, args.size), args.batches, args.batch, args.size, args.seed, args.control,
                     override, settings)
    print(report(result, args))


if __name__ == '__main__':
    main()
