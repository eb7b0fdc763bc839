"""Teacher-label store on the demo: students trained with stored labels vs the live teacher, and how the labels differ.

1. Builds the store for the demo teacher (``python -m dukd_arch.teacher_labels``) into
   datasets/demo/train/teacher_X4.lmdb (rebuilt when the teacher changed).
2. Label differences, per training patch (LR 24 px, the demo's patch): PSNR between the live teacher's
   output on the patch and the stored label cropped (and flipped) like it, split into what causes them:
   16-bit rounding (whole-image output vs its stored label), border context (patch vs whole image, no flip)
   and flips (T(d(patch)) vs d(T(patch)) over the 7 non-identity dihedral transforms), and all together as
   training draws them (random crop, BasicSR's hflip / rot).
3. For each seed, the demo's output-KD student (options/demo/train_student_kd.yml, 800 iterations) with the
   live teacher and with the stored labels (TeacherLabelPairedImageDataset + dataroot_teacher; same seed, so
   the same patches), scored with test.py on the held-out photos (Y PSNR, border 4). Reports the paired PSNR
   difference with its 95 % t-interval.

Needs datasets/demo (python scripts/make_demo_data.py) and the demo teacher
(python train.py -opt options/demo/train_teacher.yml).

    python benchmarks/bench_teacher_labels.py --seeds 0 1 2 --threads 1
"""
import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import dukd_arch  # noqa: E402,F401
from dukd_arch.demo import pipeline  # noqa: E402
from dukd_arch.demo.pipeline import Run  # noqa: E402

KD_OPT = 'options/demo/train_student_kd.yml'
STORE = 'datasets/demo/train/teacher_X4.lmdb'
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def runs(seed: int):
    base = {'manual_seed': seed}
    live = Run(f'output KD, live teacher, seed {seed}', KD_OPT, f'tl_kd_live_s{seed}', base)
    stored = Run(f'output KD, stored labels, seed {seed}', KD_OPT, f'tl_kd_labels_s{seed}', {
        **base, 'datasets:train:type': 'TeacherLabelPairedImageDataset', 'datasets:train:dataroot_teacher': STORE})
    return live, stored


def build_store(run: Run) -> None:
    from dukd_arch.teacher_labels import main as build
    from dukd_arch.data.label_store import LabelStoreError
    args = ['-opt', run.option_file(), '--out', STORE]
    try:
        build(args)
    except LabelStoreError as err:  # made by an earlier demo teacher: rebuild
        print(f'[labels] {err}\n[labels] rebuilding {STORE}')
        import shutil
        shutil.rmtree(STORE)
        build(args)


def psnr(mse: float) -> float:
    return 10 * math.log10(1 / mse) if mse > 0 else float('inf')


def label_differences(opt_file: str, patches_per_image: int = 4, lr_patch: int = 24, seed: int = 0) -> dict:
    """Mean squared differences (as PSNR, dB) between live and stored labels on training patches, by cause."""
    import numpy as np
    import torch
    from basicsr.data.transforms import augment
    from basicsr.utils import FileClient, img2tensor, imfrombytes

    from dukd_arch.card import load_options
    from dukd_arch.ops import DIHEDRAL_TRANSFORMS, forward_padded, transform
    from dukd_arch.data.label_store import decode_label, label_to_float, lmdb_meta_sizes
    from dukd_arch.archs.teacher import build_teacher, window_multiple

    opt = load_options(opt_file)
    scale = int(opt['scale'])
    net = build_teacher(opt, torch.device('cpu'))
    lq_root = opt['datasets']['train']['dataroot_lq']
    lq_client = FileClient('lmdb', db_paths=[lq_root], client_keys=['lq'])
    t_client = FileClient('lmdb', db_paths=[STORE], client_keys=['t'])
    rng = random.Random(seed)
    sums = {k: [0.0, 0] for k in ('rounding', 'border', 'flips', 'training')}

    def add(key, a, b):
        sums[key][0] += float(((a - b)**2).mean())
        sums[key][1] += 1

    def teacher(x):
        return forward_padded(net, x, window_multiple(net), scale).float()

    with torch.no_grad():
        for key in sorted(lmdb_meta_sizes(lq_root)):
            lq = imfrombytes(lq_client.get(key, 'lq'), float32=True)
            label = label_to_float(decode_label(t_client.get(key, 't'), key))
            whole = teacher(img2tensor(lq, bgr2rgb=True, float32=True)[None])[0]
            stored = img2tensor(label, bgr2rgb=True, float32=True)
            add('rounding', whole.clamp(0, 1), stored)
            h, w = lq.shape[:2]
            for _ in range(patches_per_image):
                top, left = rng.randint(0, h - lr_patch), rng.randint(0, w - lr_patch)
                patch = img2tensor(lq[top:top + lr_patch, left:left + lr_patch], bgr2rgb=True, float32=True)[None]
                crop = stored[None, :, top * scale:(top + lr_patch) * scale, left * scale:(left + lr_patch) * scale]
                live = teacher(patch)
                add('border', live, crop)
                for ops in DIHEDRAL_TRANSFORMS[1:]:
                    add('flips', teacher(transform(patch, ops)), transform(live, ops))
                # as training draws it: BasicSR's hflip / rot on the LR patch and on the label crop alike
                # (copies: BasicSR's augment flips in place)
                lq_np = lq[top:top + lr_patch, left:left + lr_patch].copy()
                lab_np = label[top * scale:(top + lr_patch) * scale, left * scale:(left + lr_patch) * scale].copy()
                lq_aug, lab_aug = augment([lq_np, lab_np], True, True)
                live_aug = teacher(img2tensor(lq_aug.copy(), bgr2rgb=True, float32=True)[None])
                add('training', live_aug, img2tensor(lab_aug.copy(), bgr2rgb=True, float32=True)[None])
    out = {k: psnr(s / n) for k, (s, n) in sums.items()}
    out['patches'] = sums['border'][1]
    out['lr_patch'] = lr_patch
    return out


DIV2K_HR = (1356, 2040)  # the most common DIV2K HR size (800 training images)


def store_estimate(pair: str = 'edsr_x4', lr_size: int = 24, repeats: int = 3) -> dict:
    """Label-store size and build time for DIV2K's 800 training images with a published teacher, from: the
    16-bit PNG size (level 0: 6 bytes per pixel plus headers; level 9: the compression ratio measured on the
    demo store's labels) and the teacher's forward time per LR pixel on this CPU (random weights: same cost)."""
    import statistics as st
    import time

    import cv2
    import numpy as np
    import torch
    from basicsr.archs import build_network
    from basicsr.utils import FileClient

    from dukd_arch.card import load_options
    from dukd_arch.ops import forward_padded
    from dukd_arch.data.label_store import lmdb_meta_sizes
    from dukd_arch.data.sr_data import crop_positions
    from dukd_arch.archs.teacher import freeze, window_multiple

    client = FileClient('lmdb', db_paths=[STORE], client_keys=['t'])
    raw = level9 = 0
    for key in sorted(lmdb_meta_sizes(STORE)):
        img = cv2.imdecode(np.frombuffer(client.get(key, 't'), np.uint8), cv2.IMREAD_UNCHANGED)
        raw += len(cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 0])[1])
        level9 += len(cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1])
    opt = load_options(osp.join(ROOT, 'options', f'kd_{pair}.yml'))
    net = freeze(build_network(dict(opt['network_t'])))
    x = torch.rand(1, 3, lr_size, lr_size)
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            forward_padded(net, x, window_multiple(net), int(opt['scale']))
            times.append(time.perf_counter() - t)
    per_pixel = st.median(times) / lr_size**2
    h, w = DIV2K_HR
    scale = int(opt['scale'])
    image_bytes = h * w * 3 * 2
    # the published options train on 480 px sub-images with stride 240 (datasets/README.md): labelled one by one
    subs = len(crop_positions(h, 480, 240, 0)) * len(crop_positions(w, 480, 240, 0))
    sub_bytes = 480 * 480 * 3 * 2
    iteration_px = 16 * 48**2  # the teacher's LR pixels in one published x4 training iteration (batch 16, LR 48)
    return {'pair': pair, 'lr_size': lr_size, 'torch_threads': torch.get_num_threads(), 'load_avg': os.getloadavg(),
            'level0_mib_per_image': image_bytes / 2**20, 'level0_gib_div2k': 800 * image_bytes / 2**30,
            'level9_ratio_demo': level9 / raw, 'level9_gib_div2k': 800 * image_bytes * level9 / raw / 2**30,
            'subimages_per_image': subs, 'level0_gib_div2k_subimages': 800 * subs * sub_bytes / 2**30,
            'level9_gib_div2k_subimages': 800 * subs * sub_bytes * level9 / raw / 2**30,
            'build_in_training_iterations': 800 * h * w / scale**2 / iteration_px,
            'build_in_training_iterations_subimages': 800 * subs * (480 // scale)**2 / iteration_px,
            'teacher_s_per_image': per_pixel * h * w / scale**2,
            'build_hours_div2k': 800 * per_pixel * h * w / scale**2 / 3600}


def t_interval(diffs):
    n = len(diffs)
    mean = statistics.mean(diffs)
    if n < 2:
        return mean, float('nan'), float('nan')
    half = T975[n - 1] * statistics.stdev(diffs) / math.sqrt(n)
    return mean, mean - half, mean + half


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--threads', type=int, default=1, help='OMP_NUM_THREADS per run')
    p.add_argument('--json', default='experiments/bench_teacher_labels/results.json')
    p.add_argument('--no-label-differences', action='store_true', help='skip step 2 (e.g. when running seeds '
                   'in parallel processes; a last run over all seeds reuses their students)')
    p.add_argument('--only', choices=['live', 'stored'], help='train only these students (parallel processes)')
    p.add_argument('--store-estimate', action='store_true', help='only estimate the store size and build time '
                   'for DIV2K with the published EDSR x4 teacher on this CPU')
    args = p.parse_args()
    os.chdir(ROOT)
    if args.store_estimate:
        print(json.dumps(store_estimate(), indent=1))
        return
    teacher = 'experiments/demo_teacher/models/net_g_latest.pth'
    if not osp.isfile(teacher) or not osp.isdir('datasets/demo/train'):
        raise SystemExit('needs the demo data and teacher: python scripts/make_demo_data.py && '
                         'python train.py -opt options/demo/train_teacher.yml')
    log_dir = osp.join('experiments', 'bench_teacher_labels', 'logs')
    os.makedirs(log_dir, exist_ok=True)
    build_store(runs(args.seeds[0])[1])
    diffs = {} if args.no_label_differences else label_differences(runs(args.seeds[0])[1].option_file())
    print('label differences (PSNR, dB): ' + json.dumps(diffs))
    rows = {}
    for seed in args.seeds:
        for kind, run in zip(('live', 'stored'), runs(seed)):
            if args.only and kind != args.only:
                continue
            seconds = pipeline.train(run, log_dir, threads=args.threads)
            row = pipeline.test(run, 'options/demo/test_student_kd.yml', log_dir, threads=args.threads)
            rows[f'{kind}_s{seed}'] = {'seed': seed, 'kind': kind, 'psnr': row['psnr'], 'ssim': row['ssim'],
                                      'train_seconds': seconds}
            os.makedirs(osp.dirname(args.json), exist_ok=True)
            with open(args.json, 'w') as f:
                json.dump({'label_differences': diffs, 'rows': rows}, f, indent=1)
    lines = [f'machine {platform.platform()}, {os.cpu_count()} CPUs; OMP_NUM_THREADS={args.threads}', '',
             '| seed | live teacher PSNR (dB) | stored labels PSNR (dB) | stored - live (dB) | train s live / stored |',
             '|---|---|---|---|---|']
    gaps = []
    if args.only:
        return
    for seed in args.seeds:
        live, stored = rows[f'live_s{seed}'], rows[f'stored_s{seed}']
        gaps.append(stored['psnr'] - live['psnr'])
        secs = '/'.join('reused' if r['train_seconds'] is None else f"{r['train_seconds']:.0f}" for r in (live, stored))
        lines.append(f"| {seed} | {live['psnr']:.4f} | {stored['psnr']:.4f} | {gaps[-1]:+.4f} | {secs} |")
    mean, lo, hi = t_interval(gaps)
    lines += ['', f'stored - live, paired by seed (n={len(gaps)}): {mean:+.4f} dB, '
              f'95 % t-interval [{lo:+.4f}, {hi:+.4f}]']
    if diffs:
        lines += ['', 'label differences on training patches (PSNR live vs stored, dB): ' + ', '.join(
            f'{k} {v:.2f}' for k, v in diffs.items() if k not in ('patches', 'lr_patch'))
            + f" ({diffs['patches']} patches of {diffs['lr_patch']} px)"]
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
