"""Are the zoom-in tiles as degraded as the training LR? Degradation statistics side by side.

    OMP_NUM_THREADS=1 python scripts/compare_zoom_in_sources.py --gt /path/to/hr_images --batches 20 --batch 64
    OMP_NUM_THREADS=1 python scripts/compare_zoom_in_sources.py --content pink --batches 20 --batch 64

Each batch, as in training: ``--batch`` ``--crop`` px GT crops, USM-sharpened, kernels drawn as
RealESRGANDataset draws them, one pipeline call per batch (a batch shares its resize draws). Content:
random crops of ``--gt`` photos, or synthetic (``flat``: uniform colours, so the residual is the
degradation's noise and JPEG alone; ``pink``: 1/f textures, alike at every scale, so a tile and an LR
show equally busy content and blur compares too). Four inputs of the LR's size (``crop / scale`` px):

* ``lr``: the training LR (second-order degradation of the sharpened crop at ``scale``);
* ``degraded`` (the default zoom-in source): a grid cell of the sharpened crop degraded like the LR
  (``SecondOrderDegradation.degrade_like_lr``: the tile upscaled x scale, then the pipeline at ``scale``);
* ``scale1`` (the previous default, for reference): the sharpened crop degraded at its own size
  (the pipeline at scale 1), the same grid cell cut out;
* ``clean``: the grid cell of the clean crop (the paper's zoom-in).

Each input is compared with its clean counterpart on the same pixel grid, the antialiased bicubic
downscale of what the pipeline was given (the sharpened crop for ``lr``, the upscaled tile for
``degraded``, the sharpened tile itself for ``scale1``; ``clean`` is its own). Grey channel, 8-bit units:

* noise sigma: Immerkaer's (1996) estimator on the residual (input - counterpart);
* gradient-energy ratio: sum |grad input|^2 / sum |grad counterpart|^2 (blur lowers it, noise raises it;
  undefined for a flat counterpart);
* residual RMS;
* clean RMS gradient: how busy the counterpart is (content, not degradation).

Printed: median [25th, 75th percentile] over all samples, as a markdown table.
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

IMMERKAER = torch.tensor([[1., -2., 1.], [-2., 4., -2.], [1., -2., 1.]]).view(1, 1, 3, 3)
SOURCES = ('lr', 'degraded', 'scale1', 'clean')
STATS = ('noise sigma', 'gradient-energy ratio', 'residual RMS', 'clean RMS gradient')


def gray(x):
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None] * 255


def noise_sigma(g):
    """Immerkaer (1996): sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|, per sample."""
    h, w = g.shape[-2:]
    return np.sqrt(np.pi / 2) / (6 * (w - 2) * (h - 2)) * F.conv2d(g, IMMERKAER).abs().sum(dim=(1, 2, 3))


def grad_energy(g):
    return (g.diff(dim=-1).pow(2).sum(dim=(1, 2, 3)) + g.diff(dim=-2).pow(2).sum(dim=(1, 2, 3)))


def ideal_downscale(x, scale):
    """The clean counterpart of a pipeline output: its input shrunk by the antialiased bicubic."""
    return F.interpolate(x, scale_factor=1 / scale, mode='bicubic', antialias=True).clamp(0, 1)


def degradation_stats(x, ref):
    """(N, 4): noise sigma of the residual, gradient-energy ratio, residual RMS, RMS gradient of the counterpart."""
    gx, gr = gray(x), gray(ref)
    res = gx - gr
    ref_energy = grad_energy(gr)
    ratio = torch.where(ref_energy > 1e-3, grad_energy(gx) / ref_energy.clamp_min(1e-3), torch.nan)  # flat: none
    h, w = gr.shape[-2:]
    clean_grad = (ref_energy / (2 * h * w)).sqrt()  # content, not degradation: how busy the clean counterpart is
    return torch.stack([noise_sigma(res), ratio, res.pow(2).mean(dim=(1, 2, 3)).sqrt(), clean_grad], 1)


def load_images(folder):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(('.png', '.jpg', '.jpeg', '.bmp')))
    if not names:
        raise SystemExit(f'no images in {folder}')
    return [torch.from_numpy(cv2.imread(osp.join(folder, n))[:, :, ::-1].astype(np.float32) / 255).permute(2, 0, 1)
            for n in names]


def photo_crops(images, batch, crop):
    crops = []
    for _ in range(batch):
        img = random.choice(images)
        h, w = img.shape[-2:]
        if min(h, w) < crop:
            raise SystemExit(f'an image of {h}x{w} is smaller than --crop {crop}')
        top, left = random.randint(0, h - crop), random.randint(0, w - crop)
        crops.append(img[:, top:top + crop, left:left + crop])
    return torch.stack(crops)


def flat_fields(batch, crop, rng):
    """Uniform colours in [0.2, 0.8]: the residual is the degradation's noise and JPEG alone."""
    return torch.from_numpy(rng.uniform(0.2, 0.8, (batch, 3, 1, 1))).float().expand(-1, -1, crop, crop).contiguous()


def pink_textures(batch, crop, rng):
    """Grey-scale 1/f textures (power spectrum ~ 1/f^2, the natural-image law) in colour: statistically alike
    at every scale, so a tile and an x4-downscaled crop show the same kind of content per pixel."""
    f = np.sqrt(np.fft.fftfreq(crop)[:, None]**2 + np.fft.fftfreq(crop)[None]**2)
    f[0, 0] = 1
    spec = (rng.standard_normal((batch, crop, crop)) + 1j * rng.standard_normal((batch, crop, crop))) / f
    spec[:, 0, 0] = 0
    tex = np.fft.ifft2(spec).real
    tex = 0.5 + 0.12 * tex / tex.std(axis=(1, 2), keepdims=True)
    tint = rng.uniform(0.8, 1.2, (batch, 3, 1, 1))
    return torch.from_numpy(np.clip(tex[:, None] * tint, 0, 1)).float()


def measure(images, batches, batch, crop, scale, seed, content='photos', opt=None):
    """{source: (batches * batch, 4) statistics}."""
    deg = SecondOrderDegradation(opt or REAL_ESRGAN_DEGRADATION, scale)
    usm = USMSharp()
    t = crop // scale
    out = {k: [] for k in SOURCES}
    random.seed(seed)
    np.random.seed(seed)
    rng = np.random.default_rng(seed)
    for b in range(batches):
        if content == 'photos':
            gt = photo_crops(images, batch, crop)
        else:
            gt = (flat_fields if content == 'flat' else pink_textures)(batch, crop, rng)
        draws = [sample_kernels(REAL_ESRGAN_KERNELS) for _ in range(batch)]
        ks = [torch.stack([d[k] for d in draws]) for k in ('kernel1', 'kernel2', 'sinc_kernel')]
        sharp = usm(gt)
        r, c = random.randrange(scale) * t, random.randrange(scale) * t  # one grid cell per batch, as zoom_in's grid
        tile = sharp[..., r:r + t, c:c + t]
        pseudo_hr = F.interpolate(tile, scale_factor=scale, mode='bicubic', align_corners=False).clamp(0, 1)
        inputs = {
            'lr': (deg(sharp, *ks, seed=seed + 3 * b), ideal_downscale(sharp, scale)),
            'degraded': (deg.degrade_like_lr(tile, *ks, seed=seed + 3 * b + 1), ideal_downscale(pseudo_hr, scale)),
            'scale1': (deg(sharp, *ks, seed=seed + 3 * b + 2, scale=1)[..., r:r + t, c:c + t], tile),
            'clean': (gt[..., r:r + t, c:c + t], gt[..., r:r + t, c:c + t]),
        }
        for key, (x, ref) in inputs.items():
            out[key].append(degradation_stats(x, ref))
        print(f'batch {b + 1}/{batches}', file=sys.stderr, flush=True)
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def table(stats):
    lines = ['| source | ' + ' | '.join(STATS) + ' |', '|---' * (len(STATS) + 1) + '|']
    for key, a in stats.items():
        cells = [f'{np.nanmedian(a[:, j]):.2f} [{np.nanpercentile(a[:, j], 25):.2f}, '
                 f'{np.nanpercentile(a[:, j], 75):.2f}]' if not np.isnan(a[:, j]).all() else '-'
                 for j in range(len(STATS))]
        lines.append(f'| {key} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt', help='folder of HR images (each at least --crop px a side), for --content photos')
    parser.add_argument('--content', choices=('photos', 'flat', 'pink'), default='photos',
                        help='photos: crops of --gt; flat: uniform colours (noise and JPEG alone); pink: 1/f '
                        'textures (content alike at the tile and the LR scale, so blur compares too)')
    parser.add_argument('--batches', type=int, default=20)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--crop', type=int, default=128, help='GT crop side (>= 74 at the published resize_range)')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.crop % args.scale:
        raise SystemExit(f'--crop {args.crop} must be a multiple of --scale {args.scale}')
    if args.content == 'photos' and not args.gt:
        raise SystemExit('--content photos needs --gt <folder of HR images>')
    images = load_images(args.gt) if args.content == 'photos' else None
    stats = measure(images, args.batches, args.batch, args.crop, args.scale, args.seed, args.content)
    print(f'content: {args.content}; {args.batches} batches x {args.batch} samples, {args.crop} px GT crops, '
          f'scale {args.scale}, published '
          'settings; median [25th, 75th percentile], grey channel, 8-bit units')
    print(table(stats))
    flat = int(np.isnan(stats['clean'][:, 1]).sum())
    if 0 < flat < len(stats['clean']):  # a featureless counterpart has no gradient energy to compare with
        print(f'gradient-energy ratio over the {len(stats["clean"]) - flat} samples whose clean tile is not flat')


if __name__ == '__main__':
    main()
