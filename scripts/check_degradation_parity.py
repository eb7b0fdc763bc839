"""Does ``SecondOrderDegradation`` draw the same LR distribution as BasicSR's ``RealESRNetModel.feed_data``?

    python scripts/check_degradation_parity.py --gt /path/to/hr_images --calls 32 --seed 0

BasicSR's ``feed_data`` is called unbound on a stand-in model (CPU, queue off, crop = whole image) with
its ``filter2D`` made contiguous; ours runs on the same GT batches and kernels. The two use different
random streams, so the check is statistical: per-sample LR statistics (RMS difference to the antialiased
bicubic downscale of the GT, high-frequency energy, mean) compared with a two-sample Kolmogorov-Smirnov
test. Large p-values mean no detectable difference; ``--override noise_range2=[1,35]`` (ours only) is a
negative control that the test should notice. Samples of one call share its resize draws, so they are
not independent and the p-values are optimistic.
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
import dukd_arch  # noqa: E402,F401
import basicsr.models.realesrnet_model as basicsr_realesrnet  # noqa: E402
from dukd_arch.data.degradation import (REAL_ESRGAN_DEGRADATION, REAL_ESRGAN_KERNELS,  # noqa: E402
                                         SecondOrderDegradation, USMSharp, filter2d, sample_kernels)
from basicsr.utils.diffjpeg import DiffJPEG  # noqa: E402

LAPLACIAN = torch.tensor([[0., 1., 0.], [1., -4., 1.], [0., 1., 0.]]).view(1, 1, 3, 3)


def sample_stats(gt, lq):
    ref = F.interpolate(gt, size=lq.shape[-2:], mode='bicubic', antialias=True).clamp(0, 1)
    gray = (0.299 * lq[:, 0] + 0.587 * lq[:, 1] + 0.114 * lq[:, 2])[:, None] * 255
    rms = ((lq - ref) * 255).pow(2).mean(dim=(1, 2, 3)).sqrt()
    hf = F.conv2d(gray, LAPLACIAN).abs().mean(dim=(1, 2, 3))
    return torch.stack([rms, hf, lq.mean(dim=(1, 2, 3)) * 255], 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt', required=True)
    parser.add_argument('--calls', type=int, default=32)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--override', action='append', default=[], metavar='KEY=YAML',
                        help='change a setting for ours only (a negative control: the test should notice)')
    args = parser.parse_args(argv)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    basicsr_realesrnet.filter2D = filter2d  # BasicSR's own, made contiguous (channels-last on the CPU)
    opt = {**REAL_ESRGAN_DEGRADATION, 'scale': 4, 'gt_usm': False, 'gt_size': args.size}
    stand_in = SimpleNamespace(opt=opt, device=torch.device('cpu'), is_train=True,
                               jpeger=DiffJPEG(differentiable=False), usm_sharpener=USMSharp(),
                               _dequeue_and_enqueue=lambda: None)
    ours_opt = dict(opt)
    for item in args.override:
        key, value = item.split('=', 1)
        ours_opt[key] = yaml.safe_load(value)
    ours = SecondOrderDegradation(ours_opt, 4)
    images = []
    for name in sorted(os.listdir(args.gt)):
        img = cv2.imread(osp.join(args.gt, name))
        if img is not None:
            images.append(torch.from_numpy(img[:, :, ::-1].astype(np.float32) / 255).permute(2, 0, 1))
    stats = {'basicsr': [], 'ours': []}
    for _ in range(args.calls):
        crops = []
        for _ in range(args.batch):
            img = random.choice(images)
            top = random.randint(0, img.shape[1] - args.size)
            left = random.randint(0, img.shape[2] - args.size)
            crops.append(img[:, top:top + args.size, left:left + args.size])
        gt = torch.stack(crops)
        draws = [sample_kernels(REAL_ESRGAN_KERNELS) for _ in range(args.batch)]
        kernels = {k: torch.stack([d[k] for d in draws]) for k in draws[0]}
        basicsr_realesrnet.RealESRNetModel.feed_data(stand_in, {'gt': gt, **kernels})
        stats['basicsr'].append(sample_stats(gt, stand_in.lq))
        stats['ours'].append(sample_stats(gt, ours(gt, kernels['kernel1'], kernels['kernel2'], kernels['sinc_kernel'])))
    theirs, mine = torch.cat(stats['basicsr']).numpy(), torch.cat(stats['ours']).numpy()
    print(f'{len(theirs)} samples each, {args.size} px GT crops, scale 4, published settings')
    print(f'{"statistic":<22}{"BasicSR mean (sd)":>20}{"ours mean (sd)":>20}{"KS p-value":>12}')
    for j, name in enumerate(('RMS to bicubic (8b)', 'abs Laplacian (8b)', 'mean level (8b)')):
        p = ks_2samp(theirs[:, j], mine[:, j]).pvalue
        print(f'{name:<22}{theirs[:, j].mean():>12.2f} ({theirs[:, j].std():5.2f}){mine[:, j].mean():>12.2f} '
              f'({mine[:, j].std():5.2f}){p:>12.3f}')


if __name__ == '__main__':
    main()
