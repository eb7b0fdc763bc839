"""How far are the candidate zoom-in inputs from the LR the real-world teacher was trained on?

    python scripts/compare_zoom_in_sources.py --gt /path/to/hr_images --samples 8 --seed 0

For each GT image and sample: a random ``--crop`` px crop (the dataset's 400 px), kernels drawn as
RealESRGANDataset draws them, then three LR-sized inputs:

* ``lr``: the training LR (second-order degradation of the USM-sharpened crop, x4 smaller, centre patch);
* ``clean``: a tile of the clean crop (the paper's zoom-in);
* ``degraded``: a tile of the crop degraded at its own size by the same pipeline (scale 1);
* ``second``: the same with the second order only (the stage that acts near LR resolution in training);
* ``as_lr``: the (sharpened) tile upscaled x scale (bicubic) and put through the training pipeline
  itself, as if it were an HR patch: the LR pipeline's degradations at the LR pixel scale.

Printed per source: mean absolute Laplacian (high-frequency energy, 8-bit units) and Immerkaer's noise
sigma estimate (8-bit units), mean and standard deviation over all samples. An upcycled input whose
statistics sit near ``lr`` is inside the teacher's training distribution.
"""
import argparse
import os
import random
import sys
from os import path as osp

import cv2
import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import dukd_arch  # noqa: E402,F401
from dukd_arch.data.degradation import (REAL_ESRGAN_DEGRADATION, REAL_ESRGAN_KERNELS,  # noqa: E402
                                         SecondOrderDegradation, USMSharp, sample_kernels)

LAPLACIAN = torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]])
IMMERKAER = torch.tensor([[1., -2., 1.], [-2., 4., -2.], [1., -2., 1.]])


def gray(x):
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None] * 255


def hf_energy(x):
    return F.conv2d(gray(x), LAPLACIAN.view(1, 1, 3, 3)).abs().mean().item()


def noise_sigma(x):
    """Immerkaer (1996): sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|."""
    g = gray(x)
    h, w = g.shape[-2:]
    return (np.sqrt(np.pi / 2) / (6 * (w - 2) * (h - 2)) * F.conv2d(g, IMMERKAER.view(1, 1, 3, 3)).abs().sum()).item()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt', required=True)
    parser.add_argument('--samples', type=int, default=8)
    parser.add_argument('--crop', type=int, default=400)
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--gt-size', type=int, default=256)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    deg = SecondOrderDegradation(REAL_ESRGAN_DEGRADATION, args.scale)
    usm = USMSharp()
    names = sorted(n for n in os.listdir(args.gt) if n.lower().endswith(('.png', '.jpg', '.jpeg', '.bmp')))
    stats = {'lr': [], 'clean': [], 'degraded': [], 'second': [], 'as_lr': []}
    for i, name in enumerate(names):
        img = cv2.imread(osp.join(args.gt, name))[:, :, ::-1].astype(np.float32) / 255
        full = torch.from_numpy(img.copy()).permute(2, 0, 1)[None]
        for s in range(args.samples):
            seed = args.seed + 1000 * i + s
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            h, w = full.shape[-2:]
            c = min(args.crop, h, w)
            top, left = random.randint(0, h - c), random.randint(0, w - c)
            gt = full[..., top:top + c, left:left + c]
            k = {key: v[None] for key, v in sample_kernels(REAL_ESRGAN_KERNELS).items()}
            ks = (k['kernel1'], k['kernel2'], k['sinc_kernel'])
            sharp = usm(gt)
            lr = deg(sharp, *ks, seed=seed)
            t = min(args.gt_size // args.scale, lr.shape[-1])  # the LR patch side (training: 256 // 4)
            lt = (lr.shape[-1] - t) // 2
            cell_top, cell_left = random.randint(0, c // t - 1) * t, random.randint(0, c // t - 1) * t
            degraded = deg(sharp, *ks, seed=seed + 7919, scale=1)
            second = deg(sharp, *ks, seed=seed + 7919, scale=1, first_order=False)
            tile = sharp[..., cell_top:cell_top + t, cell_left:cell_left + t]
            up = F.interpolate(tile, scale_factor=args.scale, mode='bicubic', align_corners=False).clamp(0, 1)
            as_lr = deg(up, *ks, seed=seed + 7919)
            ref_lr = F.interpolate(sharp, size=lr.shape[-2:], mode='bicubic', antialias=True).clamp(0, 1)
            refs = {'lr': ref_lr[..., lt:lt + t, lt:lt + t], 'clean': tile * 0 + gt[..., cell_top:cell_top + t,
                                                                                      cell_left:cell_left + t]}
            for key in ('degraded', 'second', 'as_lr'):
                refs[key] = tile
            inputs = {
                'lr': lr[..., lt:lt + t, lt:lt + t],
                'clean': gt[..., cell_top:cell_top + t, cell_left:cell_left + t],
                'degraded': degraded[..., cell_top:cell_top + t, cell_left:cell_left + t],
                'second': second[..., cell_top:cell_top + t, cell_left:cell_left + t],
                'as_lr': as_lr,
            }
            for key, x in inputs.items():
                res = (x - refs[key]) * 255
                stats[key].append((hf_energy(x), noise_sigma(x), res.pow(2).mean().sqrt().item(),
                                   hf_energy(x - refs[key] + 0.5)))
    print(f'{len(names)} images x {args.samples} samples, crop {args.crop}, scale {args.scale}')
    cols = ('|Laplacian|', 'noise sigma', 'residual RMS', 'residual |Lap|')
    print(f'{"source":<10}' + ''.join(f'{c:>22}' for c in cols) + '   (mean (std), 8-bit units)')
    for key, rows in stats.items():
        a = np.array(rows)
        print(f'{key:<10}' + ''.join(f'{a[:, j].mean():>14.2f} ({a[:, j].std():5.2f})' for j in range(len(cols))))


if __name__ == '__main__':
    main()
