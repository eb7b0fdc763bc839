"""Real-world rows on the demo photos (issue 5): scratch, output KD and DUKD students on Real-ESRGAN's
second-order degradation, scored on a fixed-seed degraded copy of the demo's held-out photos.

What runs (all through train.py's ``train_pipeline`` and test.py, seed 0, CPU or whatever ``num_gpu: auto`` finds):

1. demo data (``scripts/make_demo_data.py``: 85 HR sub-images of 192 px for training, chelsea + coffee held out);
2. ``scripts/make_degraded_val.py --seed 0`` on the held-out HR -> ``datasets/demo_realworld_val_x4/{gt,lq}``
   (degradation settings of options/realworld/scratch_realesrnet_x4.yml);
3. a small real-world teacher (SRVGGNetCompact 32 ch x 8 convs, the demo teacher's size) trained from scratch
   with ``ScratchRealESRNetModel``;
4. three students (SRVGGNetCompact 16 ch x 4 convs, the demo student) with the same seed, data and iterations:
   ``ScratchRealESRNetModel``, ``KDRealESRNetModel``, ``DUKDRealESRNetModel`` (the shipped option files in
   options/realworld/ with the data, networks, crop sizes, batch and schedule changed; derived files land in
   experiments/_derived_options/brw_*.yml);
5. test.py on the degraded pairs: PSNR / SSIM (RGB, border 4, as in options/realworld/test/) against the clean GT,
   NIQE of the SR output.

Crop cost: BasicSR's RealESRGANDataset pads or crops every GT to a hard-coded 400 px before the degradation,
so on the 192 px demo sub-images most of each 400 px degraded image is reflection padding and a step costs
seconds on a CPU. The train process registers ``DemoCropRealESRGANDataset`` (this file only; not part of
dukd_arch): BasicSR's dataset, then a random ``pre_crop`` px crop of the un-padded top-left ``source_size``
region (BasicSR pads at the bottom/right), so the model degrades ``pre_crop`` px images and crops ``gt_size``.

    PYTHONPATH=$PWD python benchmarks/bench_realworld.py --threads 1                   # reuses finished runs
    PYTHONPATH=$PWD python benchmarks/bench_realworld.py --threads 1 --teacher-iters 1000 --iters 800 --batch 8 --force
"""
import argparse
import copy
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from os import path as osp

import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
OUT = osp.join('experiments', 'bench_realworld')
VAL = 'datasets/demo_realworld_val_x4'
BASE = {'scratch': 'options/realworld/scratch_realesrnet_x4.yml', 'kd': 'options/realworld/kd_realesrnet_x4.yml',
        'dukd': 'options/realworld/dukd_realesrnet_x4.yml'}
TEACHER_NET = {'type': 'SRVGGNetCompact_basicsr', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_conv': 8,
               'upscale': 4, 'act_type': 'prelu'}
STUDENT_NET = dict(TEACHER_NET, num_feat=16, num_conv=4)
ROWS = [('scratch', 'student from scratch'), ('kd', 'output KD'), ('dukd', 'DUKD')]


def register_small_crop_dataset():
    """Only inside the train subprocess: BasicSR's RealESRGANDataset without the 400 px working size."""
    import dukd_arch  # noqa: F401  (patches basicsr's torchvision import first)
    from basicsr.data.realesrgan_dataset import RealESRGANDataset
    from basicsr.utils.registry import DATASET_REGISTRY

    @DATASET_REGISTRY.register()
    class DemoCropRealESRGANDataset(RealESRGANDataset):
        def __getitem__(self, index):
            d = super().__getitem__(index)
            size, src = int(self.opt['pre_crop']), int(self.opt['source_size'])
            top, left = random.randint(0, src - size), random.randint(0, src - size)
            d['gt'] = d['gt'][:, top:top + size, left:left + size].contiguous()
            return d


def train_subprocess(opt_file):
    register_small_crop_dataset()
    from basicsr.train import train_pipeline
    sys.argv = ['train.py', '-opt', opt_file]
    train_pipeline(ROOT)


def env(threads):
    e = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), PYTHONWARNINGS='ignore')
    if threads:
        e['OMP_NUM_THREADS'] = e['MKL_NUM_THREADS'] = str(threads)
    return e


def run(cmd, log, threads):
    t = time.time()
    with open(log, 'w') as f:
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env(threads), cwd=ROOT)
    if p.returncode:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{" ".join(cmd)} failed (log {log}):\n{tail}')
    return time.time() - t


def derived(key, name, iters, args, teacher_weights=None):
    with open(BASE[key]) as f:
        opt = yaml.safe_load(f)
    opt['name'] = name
    opt['num_gpu'] = 'auto'
    opt['manual_seed'] = args.seed if teacher_weights else 0  # the teacher is always the seed-0 one
    opt['gt_size'] = args.gt_size
    opt['queue_size'] = args.batch * 4
    tr = opt['datasets']['train']
    tr.update(name='demo_train_hr', type='DemoCropRealESRGANDataset', dataroot_gt='datasets/demo/train/HR',
              meta_info=osp.join(OUT, 'meta_info_demo_train.txt'), gt_size=args.gt_size, pre_crop=args.pre_crop,
              source_size=192, num_worker_per_gpu=0, batch_size_per_gpu=args.batch, dataset_enlarge_ratio=100)
    opt['datasets']['val'].update(name='demo_heldout_realworld_seed0', dataroot_gt=f'{VAL}/gt', dataroot_lq=f'{VAL}/lq')
    opt['network_g'] = copy.deepcopy(STUDENT_NET if teacher_weights else TEACHER_NET)
    if key != 'scratch':
        opt['network_t'] = copy.deepcopy(TEACHER_NET)
        opt['path'].update(pretrain_network_t=teacher_weights, param_key_t='params_ema', strict_load_t=True)
    t = opt['train']
    t['ema_decay'] = 0.99  # as in the demo: 0.999 averages over more iterations than the whole run
    t['optim_g']['lr'] = 1e-3
    t['scheduler']['milestones'] = [max(1, iters * 3 // 4)]
    t['total_iter'] = iters
    opt['val']['val_freq'] = 10 ** 9  # scored once at the end with test.py
    opt['logger'].update(print_freq=max(1, iters // 10), save_checkpoint_freq=10 ** 9, use_tb_logger=False)
    os.makedirs('experiments/_derived_options', exist_ok=True)
    path = f'experiments/_derived_options/brw_{name.split("brw_")[-1]}.yml'
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def test_opt(name, weights, net):
    opt = {'name': f'test_{name}', 'model_type': 'SRModel', 'scale': 4, 'num_gpu': 'auto', 'manual_seed': 0,
           'datasets': {'test_1': {'name': 'demo_heldout_realworld_seed0', 'type': 'PairedImageDataset',
                                   'dataroot_gt': f'{VAL}/gt', 'dataroot_lq': f'{VAL}/lq', 'io_backend': {'type': 'disk'}}},
           'network_g': net, 'path': {'pretrain_network_g': weights, 'param_key_g': 'params_ema', 'strict_load_g': True},
           'val': {'save_img': False, 'suffix': None, 'metrics': {
               'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': False},
               'ssim': {'type': 'calculate_ssim', 'crop_border': 4, 'test_y_channel': False},
               'niqe': {'type': 'calculate_niqe', 'crop_border': 4}}}}
    path = f'experiments/_derived_options/brw_test_{name}.yml'
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def parse_metrics(log):
    with open(log) as f:
        text = f.read()
    found = {m: float(v) for m, v in re.findall(r'# (psnr|ssim|niqe): ([-\d.naif]+)', text)}
    if 'psnr' not in found:
        raise RuntimeError(f'no PSNR in {log}')
    return found


def niqe_of_lr(threads):
    """NIQE of the degraded LR inputs themselves (BasicSR's implementation, border 0)."""
    code = ('import glob,cv2,dukd_arch\nfrom basicsr.metrics import calculate_niqe\n'
            f'for p in sorted(glob.glob("{VAL}/lq/*.png")):\n'
            '    img=cv2.imread(p)\n'
            '    try: print(p, img.shape, calculate_niqe(img, 0, input_order="HWC", convert_to="y"))\n'
            '    except Exception as e: print(p, img.shape, "failed:", repr(e))\n')
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env(threads), cwd=ROOT)
    return (p.stdout + p.stderr[-500:]).strip()


def bicubic_row():
    """MATLAB-bicubic x4 of the degraded LR, scored like the test.py rows (RGB, border 4; NIQE border 4)."""
    import cv2
    import numpy as np
    import dukd_arch  # noqa: F401
    from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
    from dukd_arch.data.sr_data import bicubic_upscale
    vals = []
    for name in sorted(os.listdir(f'{VAL}/gt')):
        gt, lr = cv2.imread(f'{VAL}/gt/{name}'), cv2.imread(f'{VAL}/lq/{name}')
        up = bicubic_upscale(lr, 4)
        vals.append((calculate_psnr(up, gt, 4), calculate_ssim(up, gt, 4), calculate_niqe(up, 4)))
    psnr, ssim, niqe = (float(np.mean(v)) for v in zip(*vals))
    return {'label': 'bicubic x4 of the degraded LR', 'iters': 0, 'psnr': psnr, 'ssim': ssim, 'niqe': niqe}


def load_avg():
    return ' '.join(f'{v:.2f}' for v in os.getloadavg())


def main():
    if len(sys.argv) == 3 and sys.argv[1] == '--_train':
        os.chdir(ROOT)
        return train_subprocess(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--teacher-iters', type=int, default=1000)
    p.add_argument('--iters', type=int, default=800, help='student iterations (all three rows)')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--gt-size', type=int, default=64, help='HR training crop (LR crop is gt_size / 4)')
    p.add_argument('--pre-crop', type=int, default=128, help='px of the GT the degradation works on (>= 74)')
    p.add_argument('--rows', nargs='+', choices=[k for k, _ in ROWS])
    p.add_argument('--threads', type=int)
    p.add_argument('--seed', type=int, default=0, help='student seed (rows of seed s > 0 are keyed <row>_s<s>)')
    p.add_argument('--force', action='store_true', help='retrain even if weights exist')
    args = p.parse_args()
    os.chdir(ROOT)
    os.makedirs(osp.join(OUT, 'logs'), exist_ok=True)
    run([sys.executable, 'scripts/make_demo_data.py', '--no-lmdb'], osp.join(OUT, 'logs', 'data.log'), args.threads)
    with open(osp.join(OUT, 'meta_info_demo_train.txt'), 'w') as f:
        f.write(''.join(n + '\n' for n in sorted(os.listdir('datasets/demo/train/HR')) if n.endswith('.png')))
    if not osp.isdir(f'{VAL}/lq'):
        run([sys.executable, 'scripts/make_degraded_val.py', '--gt', 'datasets/demo/val/HR', '--out', VAL, '--scale', '4',
             '--seed', '0', '--opt', BASE['scratch']], osp.join(OUT, 'logs', 'val.log'), args.threads)
    json_path = osp.join(OUT, 'rows.json')
    results = json.load(open(json_path)) if osp.isfile(json_path) else {}
    jobs = [('teacher', 'scratch', 'brw_teacher', args.teacher_iters, 'teacher (32 ch x 8, scratch)')]
    sfx = f'_s{args.seed}' if args.seed else ''
    jobs += [(k + sfx, k, f'brw_student_{k}{sfx}', args.iters, label + (f' (seed {args.seed})' if args.seed else ''))
             for k, label in ROWS if not args.rows or k in args.rows]
    tw = osp.join('experiments', 'brw_teacher', 'models', 'net_g_latest.pth')
    for key, base, name, iters, label in jobs:
        opt_file = derived(base, name, iters, args, None if key == 'teacher' else tw)
        weights = osp.join('experiments', name, 'models', 'net_g_latest.pth')
        secs, load0 = None, load_avg()
        stamp = {'seed': args.seed if key != 'teacher' else 0, 'iters': iters, 'batch': args.batch, 'gt_size': args.gt_size, 'pre_crop': args.pre_crop}
        if args.force or not osp.isfile(weights) or results.get(key, {}).get('stamp') != stamp:
            shutil.rmtree(osp.join('experiments', name), ignore_errors=True)
            secs = run([sys.executable, osp.abspath(__file__), '--_train', opt_file],
                       osp.join(OUT, 'logs', f'train_{name}.log'), args.threads)
        tlog = osp.join(OUT, 'logs', f'test_{name}.log')
        net = TEACHER_NET if key == 'teacher' else STUDENT_NET
        tsecs = run([sys.executable, 'test.py', '-opt', test_opt(name, weights, net)], tlog, args.threads)
        row = dict(results.get(key, {}), label=label, iters=iters, stamp=stamp, option_file=opt_file, **parse_metrics(tlog),
                   test_seconds=tsecs, finished=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))
        if secs is not None:
            row.update(train_seconds=secs, load_avg_before=load0, load_avg_after=load_avg())
        results[key] = row
        with open(json_path, 'w') as f:
            json.dump(results, f, indent=1)
    results['bicubic'] = bicubic_row()
    md = table(results, args)
    md += '\n\nNIQE of the degraded LR inputs (BasicSR calculate_niqe, border 0):\n\n```\n' + niqe_of_lr(args.threads) + '\n```'
    print(md)
    with open(osp.join(OUT, 'rows.md'), 'w') as f:
        f.write(md + '\n')


def table(results, args):
    lines = [f'batch {args.batch}, gt_size {args.gt_size}, degradation on {args.pre_crop} px crops, student seed(s) in the row labels, else 0; '
             f'{os.cpu_count()} CPUs', '',
             '| row | iters | PSNR (dB) | SSIM | NIQE of SR (lower better) | train wall (s) | load avg before -> after |',
             '|---|---|---|---|---|---|---|']
    keys = [k for k, _ in ROWS]
    keys += sorted((k for k in results if k.rsplit('_s', 1)[0] in keys and k not in keys),
                   key=lambda k: (int(k.rsplit('_s', 1)[1]), keys.index(k.rsplit('_s', 1)[0])))
    for key in ['bicubic', 'teacher'] + keys:
        r = results.get(key)
        if r is None:
            lines.append(f'| {key} | - | not run | | | | |')
            continue
        niqe = f"{r['niqe']:.3f}" if 'niqe' in r else 'n/a'
        secs = f"{r['train_seconds']:.0f}" if r.get('train_seconds') else '-'
        lines.append(f"| {r['label']} | {r['iters']} | {r['psnr']:.3f} | {r['ssim']:.4f} | {niqe} | {secs} | "
                     f"{r.get('load_avg_before', '-')} -> {r.get('load_avg_after', '-')} |")
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
