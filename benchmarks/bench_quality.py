"""The demo's comparison over several seeds (mean and spread), plus the paper's ablation rows.

Every row trains the demo student (options/demo) with the same data, iterations and seed, against the
demo teacher (trained first if missing), through train.py, and scores the EMA weights with test.py on the
held-out photos (PSNR / SSIM on Y, border 4). Finished runs are reused (same stamp as scripts/demo.py).

Rows (``--variants``):
  scratch        L1 to the GT (SRModel)
  kd             + output KD (KDModel)
  zoom_in        KD + zoom-in upcycling only            (DUKDModel)
  zoom_out       KD + zoom-out upcycling only
  zoom_in_out    KD + zoom-in + zoom-out
  dukd           KD + zoom-in + zoom-out + label consistency (the full method, = the demo's DUKD)
  kd_pix5, dukd_pix5   the same with the published EDSR pixel-loss weight 5 (zoom-out's LR label follows it)

    python benchmarks/bench_quality.py --seeds 0 1 2                        # everything (long)
    python benchmarks/bench_quality.py --seeds 0 1 2 --variants scratch kd dukd --threads 1
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import dukd_arch  # noqa: E402,F401
from dukd_arch.demo import pipeline  # noqa: E402
from dukd_arch.demo.data import build_demo_set  # noqa: E402
from dukd_arch.demo.pipeline import Run  # noqa: E402

NO_LCR = {'train:dukd_opt:label_consistency': None}
VARIANTS = {  # name: (label, base option file, changes)
    'scratch': ('scratch', 'train_student_scratch.yml', {}),
    'kd': ('output KD', 'train_student_kd.yml', {}),
    'zoom_in': ('KD + zoom-in', 'train_student_dukd.yml', {
        **NO_LCR, 'train:dukd_opt:zoom_out': False,
        'datasets:train:upcycling': {'zoom_in_tiles': 1, 'positions': 'grid', 'zoom_out': False}}),
    'zoom_out': ('KD + zoom-out', 'train_student_dukd.yml', {
        **NO_LCR, 'train:dukd_opt:zoom_in': 0,
        'datasets:train:upcycling': {'zoom_in_tiles': 0, 'positions': 'grid', 'zoom_out': True}}),
    'zoom_in_out': ('KD + zoom-in + zoom-out', 'train_student_dukd.yml', dict(NO_LCR)),
    'dukd': ('DUKD (zoom-in + zoom-out + LCR)', 'train_student_dukd.yml', {}),
    # the published EDSR weighting (pixel L1 x5): less pull towards a teacher that is close to its student
    'kd_pix5': ('output KD, pixel weight 5', 'train_student_kd.yml', {'train:pixel_opt:loss_weight': 5.0}),
    'dukd_pix5': ('DUKD, pixel weight 5', 'train_student_dukd.yml', {'train:pixel_opt:loss_weight': 5.0}),
}


DEMO_RUNS = ('scratch', 'kd', 'dukd')  # the runs scripts/demo.py trains (experiments/demo_student_<variant>)


def mean_std(values):
    if not values:
        return float('nan'), float('nan')
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument('--iters', type=int, help='student iterations (default: the demo option files, 800)')
    p.add_argument('--threads', type=int, help='OMP_NUM_THREADS per run (1 helps on a busy machine)')
    p.add_argument('--json', default='experiments/bench_quality/quality.json', help='results file (merged across calls)')
    args = p.parse_args()
    os.chdir(ROOT)
    log_dir = osp.join('experiments', 'bench_quality', 'logs')
    os.makedirs(log_dir, exist_ok=True)
    manifest = build_demo_set('datasets/demo', verbose=False)
    stems = [osp.splitext(n)[0] for n in manifest['files']['val']]
    teacher = Run('teacher', 'options/demo/train_teacher.yml', 'demo_teacher')
    pipeline.train(teacher, log_dir, threads=args.threads)
    t_row = pipeline.test(teacher, 'options/demo/test_teacher.yml', log_dir, threads=args.threads)

    results = {}
    if osp.isfile(args.json):
        with open(args.json) as f:
            results = json.load(f).get('runs', {})
    for seed in args.seeds:
        for variant in args.variants:
            label, opt_file, changes = VARIANTS[variant]
            opt_path = osp.join('options', 'demo', opt_file)
            base = Run(label, opt_path, f'demo_student_{variant}')
            if variant in DEMO_RUNS and not changes and not args.iters and seed == base.options()['manual_seed']:
                run = base  # exactly the demo's run: reuse it when scripts/demo.py has trained it
            else:
                changes = {**changes, 'manual_seed': seed}
                if args.iters:
                    changes.update(pipeline.iteration_changes(args.iters))
                iters_tag = f'_it{args.iters}' if args.iters else ''
                run = Run(f'{label} seed {seed}', opt_path, f'bq_{variant}_s{seed}{iters_tag}', changes)
            t = time.time()
            seconds = pipeline.train(run, log_dir, threads=args.threads)
            row = pipeline.test(run, 'options/demo/test_student_scratch.yml', log_dir, threads=args.threads)
            row['psnr_to_teacher'] = pipeline.fidelity_to(t_row['images'], t_row['suffix'], row['images'], row['suffix'],
                                                          stems, manifest['settings']['scale'])
            row.update(variant=variant, seed=seed, iters=run.total_iter(), train_seconds=seconds,
                       wall_seconds=time.time() - t)
            results[run.name] = row
            with open(args.json, 'w') as f:
                json.dump({'teacher': t_row, 'runs': results}, f, indent=1)

    iters = {r['iters'] for r in results.values()}
    lines = [f"teacher {t_row['psnr']:.2f} dB; held-out {', '.join(stems)}; machine {platform.platform()}, "
             f'{os.cpu_count()} CPUs', '',
             '| row | iters | seeds | PSNR mean ± std (dB) | SSIM mean | PSNR to teacher mean (dB) |',
             '|---|---|---|---|---|---|']
    for it in sorted(iters):
        for variant, (label, _, _) in VARIANTS.items():
            rows = [r for r in results.values() if r['variant'] == variant and r['iters'] == it]
            if not rows:
                continue
            m, s = mean_std([r['psnr'] for r in rows])
            lines.append(f"| {label} | {it} | {','.join(str(r['seed']) for r in sorted(rows, key=lambda r: r['seed']))} "
                         f"| {m:.3f} ± {s:.3f} | {statistics.mean(r['ssim'] for r in rows):.4f} | "
                         f"{statistics.mean(r['psnr_to_teacher'] for r in rows):.2f} |")
        for a, b in (('dukd', 'kd'), ('kd', 'scratch'), ('dukd', 'scratch'), ('dukd_pix5', 'kd_pix5')):
            gains = []
            for r in results.values():
                if r['variant'] == a and r['iters'] == it:
                    other = [o for o in results.values() if o['variant'] == b and o['seed'] == r['seed']
                             and o['iters'] == it]
                    if other:
                        gains.append(r['psnr'] - other[0]['psnr'])
            if gains:
                m, s = mean_std(gains)
                lines.append(f'\n{a} - {b} at {it} iters, paired by seed (n={len(gains)}): {m:+.3f} ± {s:.3f} dB')
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
