"""Step time of the demo's three students, with the live teacher, with stored teacher labels, and with stored
labels plus decoded images kept in memory (what the demo runs), side by side.

    python benchmarks/bench_demo_steps.py [--iters 300] [--repeats 2] [--threads 1] [--json out.json]

Each configuration is the demo's own run (``scripts/demo.py``'s options for the study-selected cell, the shipped
teacher) trained through ``train.py`` without validation or checkpoints, once for ``--iters`` iterations and
once for 20; the difference over the extra iterations is the step time without start-up. Configurations take
turns within each repeat, so load changes hit them alike. Prints seconds per iteration, the stored / live
and cached / live ratios, and the demo's projected training time at the study's budget under the demo's schedule (DUKD on one
core; output KD, then scratch, on the other): the longer of the two lanes.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [ROOT, osp.join(ROOT, 'scripts'), osp.join(ROOT, 'benchmarks')]

import demo  # noqa: E402  (scripts/demo.py: the demo's runs)
import gain_study  # noqa: E402
from dukd_arch.demo import pipeline  # noqa: E402
from dukd_arch.demo.data import build_demo_set  # noqa: E402
from dukd_arch.demo.pipeline import Run  # noqa: E402

SHORT = 20
# the real-pair teacher output: live; from the label store; from the store with decoded images kept (the demo's)
MODES = ('cached', 'stored', 'live')
QUIET = {'val:val_freq': 10**9, 'logger:save_checkpoint_freq': 10**9}


def configs(iters):
    """The demo's runs and arguments, and per configuration (row, live or stored, a Run for n iterations)."""
    args = demo.parse_args(['--student-iters', str(iters)])
    selection = gain_study.select_demo_cell(gain_study.load_results(args.results))
    args.photos, variant = selection['photos'], selection['variant']
    runs = demo.student_runs(args, variant, {}, 'reference')
    out = []
    for row, run in runs.items():
        for mode in (('live', ) if row == 'scratch' else MODES):
            changes = dict(run.changes)
            if mode == 'live':
                changes.pop('datasets:train:dataroot_teacher', None)
                if changes.get('datasets:train:type') == 'TeacherLabelPairedImageDataset':
                    del changes['datasets:train:type']  # back to the option file's PairedImageDataset
            speed = run.speed if mode == 'cached' else {}

            def make(n, row=row, mode=mode, changes=changes, speed=speed, base=run.opt):
                ch = {**changes, **QUIET, 'train:total_iter': n, 'train:scheduler:periods': [n], 'logger:print_freq': n}
                return Run(f'{row} {mode}', base, f'bench_demo_{row}_{mode}_it{n}', ch, dict(speed))
            out.append((row, mode, make))
    return runs, args, out


def timed(run, threads):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, 'train.py', '-opt', run.option_file()], env=pipeline.subprocess_env(threads),
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(run.exp_dir, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{run.name} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}')
    return seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--iters', type=int, default=300)
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', help='also write the numbers here')
    args = p.parse_args(argv)
    if args.iters <= SHORT:
        p.error(f'--iters must exceed {SHORT}')
    os.chdir(ROOT)
    build_demo_set('datasets/demo')
    runs, demo_args, cfgs = configs(args.iters)
    kd = runs['kd']
    pipeline.teacher_labels(kd, kd.options()['datasets']['train']['dataroot_teacher'], 'experiments/bench_demo_logs',
                            threads=args.threads)
    per_it = {(row, mode): [] for row, mode, _ in cfgs}
    for rep in range(args.repeats):
        for row, mode, make in cfgs:
            long_s, short_s = timed(make(args.iters), args.threads), timed(make(SHORT), args.threads)
            per_it[(row, mode)].append((long_s - short_s) / (args.iters - SHORT))
            print(f'[repeat {rep + 1}/{args.repeats}] {row:8s} {mode:6s} {per_it[(row, mode)][-1]:.4f} s/it',
                  flush=True)
    mean = {k: sum(v) / len(v) for k, v in per_it.items()}
    budget = gain_study.ITERS[gain_study.DEMO_CAPACITY]
    dukd_row = next(r for r in runs if r not in ('scratch', 'kd'))

    def lanes(mode):
        first = mean[(dukd_row, mode)] * budget
        second = (mean[('kd', mode)] + mean[('scratch', 'live')]) * budget
        return max(first, second), first, second

    lines = [f'Demo students ({demo_args.photos} photo(s), {dukd_row}), {args.threads} thread(s) per run, '
             f'{args.iters} - {SHORT} iterations, {args.repeats} repeat(s), configurations alternating:', '',
             '| student | live teacher (s/it) | stored labels (s/it) | stored + decoded cache (s/it) | stored / live '
             '| cached / live |', '|---|---|---|---|---|---|']
    for row in ('scratch', 'kd', dukd_row):
        live = mean[(row, 'live')]
        cells = [mean.get((row, mode)) for mode in ('stored', 'cached')]
        lines.append(f'| {row} | {live:.4f} | ' + ' | '.join('-' if c is None else f'{c:.4f}' for c in cells) + ' | '
                     + ' | '.join('-' if c is None else f'{c / live:.2f}' for c in cells) + ' |')
    lines.append('')
    for mode in ('live', 'stored', 'cached'):
        total, first, second = lanes(mode)
        lines.append(f'projected training at {budget} iterations, {mode}: {total / 60:.1f} min '
                     f'(DUKD lane {first / 60:.1f} min, KD + scratch lane {second / 60:.1f} min)')
    print('\n'.join(lines))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'per_iter': {f'{r} {m}': v for (r, m), v in per_it.items()}, 'mean': {f'{r} {m}': v for (r, m), v
                       in mean.items()}, 'args': vars(args), 'budget': budget}, f, indent=1)
    return mean


if __name__ == '__main__':
    main()
