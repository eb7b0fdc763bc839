"""Make a paired real-world validation set once: GT images -> Real-ESRGAN second-order degraded LR.

    python scripts/make_degraded_val.py --gt datasets/DIV2K/DIV2K_valid_HR --out datasets/realworld_val_x4 \
        --seed 0 --opt options/realworld/dukd_realesrnet_x4.yml [--max-size 512]

Writes ``<out>/gt/<name>.png`` (cropped to a multiple of the scale, centre-cropped to ``--max-size`` if
given) and ``<out>/lq/<name>.png``. Image ``i`` (in sorted order) is degraded under seed ``seed + i``:
the same command gives byte-identical files on any machine with the same library versions, and adding
images does not change the others.

The LR are made the way training makes them: with ``--opt`` (the training options file) the scale,
``gt_usm`` (degrade the USM-sharpened GT; BasicSR's default true), the top-level degradation keys and
the ``datasets.train`` kernel keys all come from it; without it, Real-ESRGAN's published values.
``--scale`` / ``--gt-usm`` / ``--no-gt-usm`` override (a ``--scale`` that contradicts ``--opt`` is an
error). The saved GT is the clean one (validation scores against the clean GT, as BasicSR's
Real-ESRGAN does). Evaluate with a PairedImageDataset on ``gt``/``lq`` (see
options/realworld/test/test_realworld_paired_x4.yml).
"""
import argparse
import os
import random
import sys
from os import path as osp

import cv2
import numpy as np
import torch
import yaml

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import dukd_arch  # noqa: E402,F401  (patches basicsr before its first use)
from dukd_arch.data.degradation import (KERNEL_KEYS, REAL_ESRGAN_DEGRADATION, REAL_ESRGAN_KERNELS,  # noqa: E402
                                         SecondOrderDegradation, USMSharp, sample_kernels)

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def load_settings(opt_path):
    """(degradation keys, kernel keys, scale or None, gt_usm) as training reads them from ``opt_path``."""
    deg, ker = dict(REAL_ESRGAN_DEGRADATION), dict(REAL_ESRGAN_KERNELS)
    scale, gt_usm = None, True  # RealESRNetModel sharpens unless gt_usm is false
    if opt_path:
        with open(opt_path) as f:
            opt = yaml.safe_load(f)
        deg.update({k: opt[k] for k in REAL_ESRGAN_DEGRADATION if k in opt})
        train = (opt.get('datasets') or {}).get('train') or {}
        ker.update({k: train[k] for k in KERNEL_KEYS if k in train})
        scale = opt.get('scale')
        gt_usm = bool(opt.get('gt_usm', True))
    return deg, ker, scale, gt_usm


def centre_crop(img, max_size, scale):
    h, w = img.shape[:2]
    th, tw = h, w
    if max_size:
        th, tw = min(h, max_size), min(w, max_size)
    th, tw = th - th % scale, tw - tw % scale
    if th < scale * 8 or tw < scale * 8:
        raise ValueError(f'image of {h}x{w} is too small for scale {scale} (need at least {scale * 8} px a side)')
    top, left = (h - th) // 2, (w - tw) // 2
    return img[top:top + th, left:left + tw]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt', required=True, help='folder of clean high-resolution images')
    parser.add_argument('--out', required=True, help='output folder (gets gt/ and lq/)')
    parser.add_argument('--scale', type=int, default=None, help='SR scale (default: from --opt, else 4)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--opt', default=None,
                        help='training options file: scale, gt_usm, degradation and kernel settings, as training '
                        'uses them')
    parser.add_argument('--gt-usm', action=argparse.BooleanOptionalAction, default=None,
                        help='degrade the USM-sharpened GT, as training with gt_usm: true does (default: gt_usm of '
                        '--opt, else true); the GT is saved unsharpened')
    parser.add_argument('--max-size', type=int, default=0, help='centre-crop GT to at most this many px a side')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)

    names = sorted(n for n in os.listdir(args.gt) if n.lower().endswith(IMG_EXTENSIONS))
    if not names:
        raise SystemExit(f'no images ({", ".join(IMG_EXTENSIONS)}) in {args.gt}')
    deg_opt, kernel_opt, opt_scale, opt_gt_usm = load_settings(args.opt)
    if args.scale is not None and opt_scale is not None and int(opt_scale) != args.scale:
        raise SystemExit(f'--scale {args.scale} contradicts scale: {opt_scale} in {args.opt}: the validation LR would '
                         'not match the training LR; drop --scale')
    args.scale = args.scale or int(opt_scale or 4)
    gt_usm = opt_gt_usm if args.gt_usm is None else args.gt_usm
    device = torch.device(args.device)
    degrade = SecondOrderDegradation(deg_opt, args.scale).to(device)
    usm = USMSharp().to(device)
    os.makedirs(osp.join(args.out, 'gt'), exist_ok=True)
    os.makedirs(osp.join(args.out, 'lq'), exist_ok=True)
    for i, name in enumerate(names):
        img = cv2.imread(osp.join(args.gt, name), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f'cannot read {osp.join(args.gt, name)}')
        img = centre_crop(img, args.max_size, args.scale)
        seed = args.seed + i
        random.seed(seed)
        np.random.seed(seed)
        kernels = {k: v[None].to(device) for k, v in sample_kernels(kernel_opt).items()}
        gt = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).float().div(255)[None]
        gt = gt.to(device)
        src = usm(gt) if gt_usm else gt
        lq = degrade(src, kernels['kernel1'], kernels['kernel2'], kernels['sinc_kernel'], seed=seed)
        lq = (lq[0].cpu().numpy().transpose(1, 2, 0)[:, :, ::-1] * 255).round().astype(np.uint8)
        stem = osp.splitext(name)[0]
        cv2.imwrite(osp.join(args.out, 'gt', f'{stem}.png'), img)
        cv2.imwrite(osp.join(args.out, 'lq', f'{stem}.png'), lq)
    print(f'{len(names)} pairs written to {args.out} (scale {args.scale}, seed {args.seed}, LR from the '
          f'{"USM-sharpened" if gt_usm else "clean"} GT, settings from {args.opt or "Real-ESRGAN published values"})')


if __name__ == '__main__':
    main()
