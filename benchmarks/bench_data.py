"""Data-side costs of DUKD: UpcyclingPairedImageDataset throughput, and batched vs per-image zoom-out.

1. samples/s of ``UpcyclingPairedImageDataset`` (crop, flip/rot, zoom-in tile, zoom-out) reading the demo
   set from PNG folders and from LMDB, with 0 and 2 loader workers;
2. zoom-out of a batch of LR patches: ``dukd_arch.ops.zoom_out`` (one batched MATLAB-bicubic, two matmuls,
   on the batch's device) against ``basicsr.utils.matlab_functions.imresize`` called per image on numpy
   (what the authors' code does inside the training step).

    python scripts/make_demo_data.py && python benchmarks/bench_data.py
"""
import argparse
import os
import platform
import statistics
import sys
import time
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

import dukd_arch  # noqa: E402,F401


def dataset_opt(backend, root, gt_size):
    train = osp.join(root, 'train')
    if backend == 'lmdb':
        gt, lq = osp.join(train, 'HR.lmdb'), osp.join(train, 'LR_bicubic_X4.lmdb')
    else:
        gt, lq = osp.join(train, 'HR'), osp.join(train, 'LR_bicubic', 'X4')
    return {'name': f'bench_{backend}', 'type': 'UpcyclingPairedImageDataset', 'phase': 'train', 'scale': 4,
            'dataroot_gt': gt, 'dataroot_lq': lq, 'io_backend': {'type': backend}, 'gt_size': gt_size,
            'use_hflip': True, 'use_rot': True, 'upcycling': {'zoom_in_tiles': 1, 'positions': 'grid', 'zoom_out': True}}


def loader_throughput(backend, workers, args):
    from dukd_arch.data.upcycling_paired_image_dataset import UpcyclingPairedImageDataset

    ds = UpcyclingPairedImageDataset(dataset_opt(backend, args.root, args.gt_size))
    sampler = torch.utils.data.RandomSampler(ds, replacement=True, num_samples=10**9,
                                             generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, sampler=sampler, num_workers=workers,
                                         persistent_workers=workers > 0, drop_last=True)
    it = iter(loader)
    for _ in range(args.warmup_batches):
        next(it)
    t = time.perf_counter()
    for _ in range(args.batches):
        next(it)
    seconds = time.perf_counter() - t
    del it, loader
    return args.batches * args.batch / seconds


def zoom_out_throughput(batch, lr_size, repeats):
    import numpy as np
    from basicsr.utils.matlab_functions import imresize

    from dukd_arch.ops import zoom_out

    lq = torch.rand(batch, 3, lr_size, lr_size)
    zoom_out(lq, 4)  # builds and caches the resize matrices
    batched = []
    for _ in range(repeats):
        t = time.perf_counter()
        zoom_out(lq, 4)
        batched.append(time.perf_counter() - t)
    per_image = []
    imgs = [x.permute(1, 2, 0).numpy().astype(np.float64) for x in lq]
    for _ in range(max(1, repeats // 10)):
        t = time.perf_counter()
        out = [imresize(img, 0.25) for img in imgs]
        torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()
        per_image.append(time.perf_counter() - t)
    return batch / statistics.median(batched), batch / statistics.median(per_image)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default='datasets/demo', help='the demo set (python scripts/make_demo_data.py)')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--gt-size', type=int, default=96)
    p.add_argument('--batches', type=int, default=30)
    p.add_argument('--warmup-batches', type=int, default=3)
    p.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    p.add_argument('--zoom-sizes', type=int, nargs='+', default=[24, 48], help='LR patch sizes for zoom-out')
    args = p.parse_args()
    os.chdir(ROOT)
    if not osp.isfile(osp.join(args.root, 'manifest.json')):
        raise SystemExit(f'{args.root} is missing; run: python scripts/make_demo_data.py')

    print(f'UpcyclingPairedImageDataset, batch {args.batch}, HR patch {args.gt_size}, zoom-in 1 tile + zoom-out, '
          f'{args.batches} batches after {args.warmup_batches} warm-up')
    print('| backend | workers | samples/s |\n|---|---|---|')
    for backend in ('disk', 'lmdb'):
        for workers in args.workers:
            print(f'| {backend} | {workers} | {loader_throughput(backend, workers, args):.0f} |', flush=True)

    print(f'\nzoom-out (x1/4 MATLAB bicubic) of a batch of {args.batch} LR patches, torch threads '
          f'{torch.get_num_threads()}')
    print('| LR patch | batched dukd_arch.ops.zoom_out (samples/s) | per-image basicsr imresize (samples/s) | speed-up |')
    print('|---|---|---|---|')
    for size in args.zoom_sizes:
        batched, per_image = zoom_out_throughput(args.batch, size, repeats=50)
        print(f'| {size}x{size} | {batched:.0f} | {per_image:.0f} | {batched / per_image:.0f}x |', flush=True)
    print(f'\nmachine: {platform.platform()}, {os.cpu_count()} CPUs')


if __name__ == '__main__':
    main()
