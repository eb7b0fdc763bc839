"""Shared by bench_feature_kd.py and bench_quantization.py: train (or reuse) rows through train.py, score them
with test.py on the demo's held-out photos, and write a Markdown table.

A row is a ``pipeline.Run`` (base option file + changes, written to experiments/_derived_options/<name>.yml)
plus the test option file that builds its network. Finished runs with an unchanged stamp are reused, exactly
as in scripts/demo.py and benchmarks/bench_quality.py.
"""
import json
import os
import platform
import time
from os import path as osp

from dukd_arch.demo import pipeline
from dukd_arch.demo.data import build_demo_set
from dukd_arch.demo.pipeline import Run

TEACHER = Run('teacher', 'options/demo/train_teacher.yml', 'demo_teacher')


def load_avg() -> str:
    try:
        return ' '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        return 'n/a'


def run_rows(rows, bench: str, threads=None, only=None):
    """``rows``: list of (key, Run, test option file). Returns (teacher row, {key: row}) and writes
    experiments/<bench>/rows.json (merged across calls, so ``only`` can rerun a subset)."""
    out_dir = osp.join('experiments', bench)
    log_dir = osp.join(out_dir, 'logs')
    os.makedirs(log_dir, exist_ok=True)
    manifest = build_demo_set('datasets/demo', verbose=False)
    stems = [osp.splitext(n)[0] for n in manifest['files']['val']]
    scale = manifest['settings']['scale']
    pipeline.train(TEACHER, log_dir, threads=threads)
    t_row = pipeline.test(TEACHER, 'options/demo/test_teacher.yml', log_dir, threads=threads)
    json_path = osp.join(out_dir, 'rows.json')
    results = {}
    if osp.isfile(json_path):
        with open(json_path) as f:
            results = json.load(f).get('rows', {})
    for key, run, test_opt in rows:
        if only and key not in only:
            continue
        t = time.time()
        load_before = load_avg()
        seconds = pipeline.train(run, log_dir, threads=threads)
        row = pipeline.test(run, test_opt, log_dir, threads=threads)
        row['psnr_to_teacher'] = pipeline.fidelity_to(t_row['images'], t_row['suffix'], row['images'],
                                                      row['suffix'], stems, scale)
        prev = results.get(key, {})
        row.update(label=run.label, name=run.name, iters=run.total_iter(),
                   option_file=run.option_file(), test_opt=test_opt,
                   train_seconds=seconds if seconds is not None else prev.get('train_seconds'),
                   reused=seconds is None, wall_seconds=time.time() - t,
                   load_avg_before=load_before, load_avg_after=load_avg(),
                   finished=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))
        results[key] = row
        with open(json_path, 'w') as f:
            json.dump({'teacher': t_row, 'rows': results, 'machine': machine()}, f, indent=1)
    return t_row, results


def machine() -> str:
    return f'{platform.platform()}, {os.cpu_count()} CPUs'


def table(t_row, results, keys, extra_cols=()):
    """Markdown table in the order of ``keys`` (missing rows are marked not run)."""
    head = '| row | iters | PSNR (dB) | SSIM | PSNR to teacher output (dB) | train wall (s) |'
    lines = [f"Teacher {t_row['psnr']:.2f} dB / {t_row['ssim']:.4f}; machine {machine()}", '', head,
             '|---|---|---|---|---|---|']
    for key, label in keys:
        r = results.get(key)
        if r is None:
            lines.append(f'| {label} | - | not run | | | |')
            continue
        secs = r.get('train_seconds')
        secs = f'{secs:.0f}' if secs else 'reused'
        lines.append(f"| {label} | {r['iters']} | {r['psnr']:.3f} | {r['ssim']:.4f} | {r['psnr_to_teacher']:.2f} "
                     f'| {secs} |')
    return '\n'.join(lines)
