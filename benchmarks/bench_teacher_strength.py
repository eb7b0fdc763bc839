"""Does DUKD beat output KD once the demo teacher is stronger? (the demo's students, a longer-trained teacher)

The demo teacher (options/demo/train_teacher.yml, 800 iterations) is only ~0.3 dB above its students, and
DUKD lands 0.036 dB below output KD with it (docs/RESULTS.md section 3). This benchmark continues training
that teacher from its EMA weights for ``--extra-iters`` more iterations at a lower learning rate (halved at
1/2 and 3/4 of the run), tests it, and trains the demo student three ways (scratch / output KD / DUKD,
exactly options/demo/train_student_*.yml except the teacher weights and the seed) against it.
Everything goes through train.py / test.py; finished runs are reused (same stamps as scripts/demo.py).

    python benchmarks/bench_teacher_strength.py --seeds 0 --threads 1
    python benchmarks/bench_teacher_strength.py --seeds 0 1 --extra-iters 1600 --lr 2e-4 --threads 1
    python benchmarks/bench_teacher_strength.py --seeds 0 1 --extra-iters 0 --threads 1   # reference rows

With ``--baseline experiments/bench_quality/quality.json`` (written by benchmarks/bench_quality.py) the
table also shows the same seeds' rows against the 800-iteration teacher.
"""
import argparse
import json
import os
import platform
import sys
import time
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import dukd_arch  # noqa: E402,F401
from dukd_arch.demo import pipeline  # noqa: E402
from dukd_arch.demo.data import build_demo_set  # noqa: E402
from dukd_arch.demo.pipeline import Run  # noqa: E402

STUDENTS = {  # variant: (label, option file); the order they are trained in
    'kd': ('output KD', 'train_student_kd.yml'),
    'dukd': ('DUKD', 'train_student_dukd.yml'),
    'scratch': ('scratch', 'train_student_scratch.yml'),  # ignores the teacher; PSNR-to-teacher still changes
}


def teacher_changes(base_weights, extra_iters, lr):
    """Continue the demo teacher from its EMA weights: same data and loss, lower LR, longer schedule."""
    return {'path:pretrain_network_g': base_weights, 'path:param_key_g': 'params_ema',
            'train:total_iter': extra_iters, 'train:optim_g:lr': lr,
            'train:scheduler:milestones': [extra_iters // 2, extra_iters * 3 // 4],
            'val:val_freq': max(1, extra_iters // 8), 'logger:print_freq': max(1, extra_iters // 16),
            'logger:save_checkpoint_freq': max(1, extra_iters // 2)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--extra-iters', type=int, default=1600,
                   help='iterations added to the 800-iteration teacher (0: the demo teacher itself)')
    p.add_argument('--lr', type=float, default=2e-4, help='learning rate of the continuation')
    p.add_argument('--variants', nargs='+', default=list(STUDENTS), choices=list(STUDENTS))
    p.add_argument('--threads', type=int, help='OMP_NUM_THREADS per run (1 helps on a busy machine)')
    p.add_argument('--json', default='experiments/bench_teacher_strength/results.json',
                   help='results file (merged across calls with the same teacher)')
    p.add_argument('--baseline', default='experiments/bench_quality/quality.json',
                   help="bench_quality.py's results with the 800-iteration teacher (shown when present)")
    args = p.parse_args()
    os.chdir(ROOT)
    log_dir = osp.join('experiments', 'bench_teacher_strength', 'logs')
    os.makedirs(log_dir, exist_ok=True)
    manifest = build_demo_set('datasets/demo', verbose=False)
    stems = [osp.splitext(n)[0] for n in manifest['files']['val']]
    scale = manifest['settings']['scale']
    test_teacher, test_student = 'options/demo/test_teacher.yml', 'options/demo/test_student_scratch.yml'

    base = Run('demo teacher (800 it)', 'options/demo/train_teacher.yml', 'demo_teacher')
    pipeline.train(base, log_dir, threads=args.threads)
    base_row = pipeline.test(base, test_teacher, log_dir, threads=args.threads)
    if args.extra_iters:
        strong = Run(f'teacher +{args.extra_iters} it', 'options/demo/train_teacher.yml',
                     f'ts_teacher_plus{args.extra_iters}_lr{args.lr:g}',
                     teacher_changes(base.weights, args.extra_iters, args.lr))
        t = time.time()
        seconds = pipeline.train(strong, log_dir, threads=args.threads)
        t_row = pipeline.test(strong, test_teacher, log_dir, threads=args.threads)
        t_row.update(train_seconds=seconds, wall_seconds=time.time() - t, iters=800 + args.extra_iters,
                     curve=pipeline.curve(strong))
    else:  # the reference rows: the demo teacher itself, trained with the same code as the other rows
        strong, t_row = base, dict(base_row, train_seconds=None, iters=800)

    results = {}
    if osp.isfile(args.json):  # merged across calls (e.g. a second seed later) when the teacher is the same
        with open(args.json) as f:
            previous = json.load(f)
        if previous['teacher']['suffix'] == t_row['suffix']:
            results = previous['runs']
    for seed in args.seeds:
        for variant in args.variants:
            label, opt_file = STUDENTS[variant]
            changes = {'manual_seed': seed}
            if variant != 'scratch':
                changes['path:pretrain_network_t'] = strong.weights
            tag = '' if variant == 'scratch' else f'_{strong.name}'
            run = Run(f'{label} seed {seed}', osp.join('options', 'demo', opt_file),
                      f'ts_{variant}_s{seed}{tag}', changes)
            t = time.time()
            seconds = pipeline.train(run, log_dir, threads=args.threads)
            row = pipeline.test(run, test_student, log_dir, threads=args.threads)
            row['psnr_to_teacher'] = pipeline.fidelity_to(t_row['images'], t_row['suffix'], row['images'],
                                                          row['suffix'], stems, scale)
            row.update(variant=variant, seed=seed, train_seconds=seconds, wall_seconds=time.time() - t)
            results[run.name] = row
            with open(args.json, 'w') as f:
                json.dump({'base_teacher': base_row, 'teacher': t_row, 'runs': results,
                           'extra_iters': args.extra_iters, 'lr': args.lr}, f, indent=1)

    baseline = {}
    if args.baseline and osp.isfile(args.baseline):
        with open(args.baseline) as f:
            for r in json.load(f)['runs'].values():
                if r['iters'] == 800 and r['variant'] in STUDENTS:
                    baseline[(r['variant'], r['seed'])] = r
    lines = [f"held-out {', '.join(stems)}; machine {platform.platform()}, {os.cpu_count()} CPUs", '',
             f"teacher 800 it: {base_row['psnr']:.3f} dB; teacher 800+{args.extra_iters} it (lr {args.lr:g}): "
             f"{t_row['psnr']:.3f} dB (train {t_row['train_seconds'] or 0:.0f} s)", '',
             '| seed | student | PSNR (dB) | PSNR to teacher (dB) | train (s) | PSNR with 800-it teacher (dB) |',
             '|---|---|---|---|---|---|']
    for r in sorted(results.values(), key=lambda r: (r['seed'], list(STUDENTS).index(r['variant']))):
        old = baseline.get((r['variant'], r['seed']))
        lines.append(f"| {r['seed']} | {STUDENTS[r['variant']][0]} | {r['psnr']:.3f} | {r['psnr_to_teacher']:.2f} "
                     f"| {r['train_seconds'] or 0:.0f} | {old['psnr']:.3f} |" if old else
                     f"| {r['seed']} | {STUDENTS[r['variant']][0]} | {r['psnr']:.3f} | {r['psnr_to_teacher']:.2f} "
                     f"| {r['train_seconds'] or 0:.0f} | - |")
    for a, b in (('dukd', 'kd'), ('kd', 'scratch'), ('dukd', 'scratch')):
        for seed in sorted({r['seed'] for r in results.values()}):
            ra = [r for r in results.values() if r['variant'] == a and r['seed'] == seed]
            rb = [r for r in results.values() if r['variant'] == b and r['seed'] == seed]
            if ra and rb:
                old = ''
                if (a, seed) in baseline and (b, seed) in baseline:
                    old = f" (800-it teacher: {baseline[(a, seed)]['psnr'] - baseline[(b, seed)]['psnr']:+.3f} dB)"
                lines.append(f"{a} - {b}, seed {seed}: {ra[0]['psnr'] - rb[0]['psnr']:+.3f} dB{old}")
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
