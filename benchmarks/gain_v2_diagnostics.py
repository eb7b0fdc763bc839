"""Study v2, post hoc: what needs the runs' checkpoints under ``experiments/`` (present on the machine that ran
them), never a choice of the study. Nothing here trains unless asked (``--retrain``).

    python benchmarks/gain_v2_diagnostics.py imitation --bench-root DIR [--retrain]
        imitation (PSNR to PAN's output on Set5 / Set14) for runs scored before the runner computed it
    python benchmarks/gain_v2_diagnostics.py crops --bench-root DIR
        docs/img/gain_v2_crops.png: the deciding cell's students, PAN and bicubic side by side
    python benchmarks/gain_v2_diagnostics.py provenance
        which commit each run trained with, and whether files of the training path changed before it was scored
"""
import argparse
import datetime
import os
import subprocess
import sys
import time
from os import path as osp

import cv2
import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import bench_gain_v2 as v2  # noqa: E402  (puts the repository on the path, registers dukd_arch)
from dukd_arch.data.sr_data import bicubic_upscale, crop_positions  # noqa: E402


def add_imitation(args):
    """Imitation for runs scored before the study computed it. A run's checkpoint is re-scored on the imitation
    sets and must give its stored per-image PSNR (so it holds the weights that were scored) before the value is
    added to its JSON; ``--retrain`` first retrains a run whose checkpoint is gone (a check that training is
    deterministic, too)."""
    from bench_gain import git_commit
    from dukd_arch.demo import pipeline
    missing, mismatched = [], []
    for result in v2.load(args.results):
        if 'test' not in result or 'imitation' in result['test']:
            continue
        iters = None if result['iters'] == v2.ITERS[result['capacity']] else result['iters']
        run = v2.make_run(result['row'], result['capacity'], result['regime'], result['seed'], args.data_root,
                          iters, args.teacher)
        retrained = not osp.isfile(run.weights) and args.retrain
        if retrained:
            pipeline.train(run, osp.join('experiments', '_gain_v2_logs'), threads=args.threads, resume=True)
        if not osp.isfile(run.weights):
            missing.append(f'{run.name}: no checkpoint ({run.weights})')
            continue
        assert run.name == result['name'], (run.name, result['name'])
        test = v2.score(run, args.bench_root, args.threads, args.teacher, v2.IMITATION_SETS)
        worst = max((abs(v[0] - result['test']['images'][k][0]) for k, v in test['images'].items()), default=None)
        if worst is None:
            mismatched.append(f'{run.name} (no image of {v2.IMITATION_SETS} scored)')
            continue
        if worst > 1e-3:
            mismatched.append(f'{run.name} (per-image PSNR differs by up to {worst:.4f} dB)')
            continue
        result['test']['imitation'] = test['imitation']
        result['imitation_added'] = {'commit': git_commit(), 'date': time.strftime('%Y-%m-%d %H:%M:%S'),
                                     'retrained': retrained, 'max_psnr_difference': round(worst, 6)}
        v2.write_result(osp.join(args.results, f'{run.name}.json'), result)
        print(f"[gain v2] {run.name}: imitation {test['imitation']} (checkpoint matches its scores within "
              f'{worst:.1e} dB)', flush=True)
    for line in missing:
        print(f'[gain v2] {line}; --retrain trains it again', flush=True)
    for line in mismatched:
        print(f'[gain v2] {line}: not the scored checkpoint, imitation not added', flush=True)


CROP = 96  # HR pixels shown per panel


def _detailed_window(hr):
    """Top-left of the CROP x CROP window with the most gradient energy (chosen from the HR alone)."""
    grey = cv2.cvtColor(hr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    energy = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    cands = [(float(energy[t:t + CROP, l:l + CROP].sum()), t, l)
             for t in crop_positions(hr.shape[0], CROP, CROP // 2, 0)
             for l in crop_positions(hr.shape[1], CROP, CROP // 2, 0)]
    return max(cands)[1:]


def crops(args):
    """docs/img/gain_v2_crops.png: the deciding cell's students, the teacher and bicubic on the two images where
    DUKD (EDSR setting) − output KD, averaged over seeds, is largest and smallest; the crop is the HR's most
    detailed window, so no method chooses it. Needs the runs' checkpoints under experiments/."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from dukd_arch.benchmark import load_model, y_metrics
    results = v2.load(args.results)
    diff = v2.per_image(results, v2.DECIDING, 'dukd_edsr', 'kd')
    n_seeds = len(v2.paired(results, v2.DECIDING, 'dukd_edsr', 'kd', v2.ALL))
    cap, regime, _ = v2.DECIDING
    runs = {s: {row: v2.make_run(row, cap, regime, s, args.data_root, teacher=args.teacher) for row in v2.ROWS}
            for s in v2.SEEDS}
    scored = {(r['row'], r['seed']) for r in v2.cell_runs(results, v2.DECIDING)}
    seeds = [s for s in v2.SEEDS if all(osp.isfile(r.weights) and (row, s) in scored for row, r in runs[s].items())]
    if not diff or not seeds:
        sys.exit('crops: needs one seed of the deciding cell with all four runs scored and their checkpoints in '
                 'experiments/')
    seed = seeds[0]
    torch.set_num_threads(args.threads or 1)
    images = {f'{name}/{stem}': (hr, lr)
              for name, items, _ in v2.benchmark_sets(args.bench_root) for stem, hr, lr in items}
    stored = {r['row']: r['test']['images'] for r in v2.cell_runs(results, v2.DECIDING) if r['seed'] == seed}
    models = {'PAN teacher': v2.load_teacher(args.teacher)}
    for row, run in runs[seed].items():
        up = load_model(run.weights, run.option_file(), device='cpu')
        # the checkpoint must be the scored one (not retrained or overwritten since): its Set5 scores must match
        for key in (k for k in stored[row] if k.startswith('Set5/')):
            hr, lr = images[key]
            if abs(y_metrics(up.enhance(lr), hr, v2.SCALE)[0] - stored[row][key][0]) > 1e-3:
                sys.exit(f'crops: {run.weights} does not reproduce its stored score on {key}: not the scored weights')
        models[v2.ROWS[row]] = up
    picks = [(max(diff, key=diff.get), 'largest'), (min(diff, key=diff.get), 'smallest')]
    fig, axes = plt.subplots(len(picks), len(models) + 2, figsize=(2.2 * (len(models) + 2), 2.6 * len(picks)))
    for (key, which), ax_row in zip(picks, axes):
        hr, lr = images[key]
        outputs = {'HR': hr, 'bicubic': bicubic_upscale(lr, v2.SCALE)}
        outputs.update({label: up.enhance(lr) for label, up in models.items()})
        t, l = _detailed_window(hr)
        for ax, (label, img) in zip(ax_row, outputs.items()):
            ax.imshow(img[t:t + CROP, l:l + CROP, ::-1], interpolation='nearest')
            title = label if label == 'HR' else f'{label}\n{y_metrics(img, hr, v2.SCALE)[0]:.2f} dB'
            ax.set_title(title.replace(' (', '\n('), fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(f'{key}\n({which} gain, {diff[key]:+.3f} dB,\nmean over {n_seeds} seeds)', fontsize=6)
    fig.suptitle(f'study v2, 17k students, full corpus, seed {seed}: crop = the HR\'s most detailed {CROP} px window; '
                 'dB = whole-image Y-PSNR', fontsize=7)
    fig.tight_layout()
    out = osp.join('docs', 'img', 'gain_v2_crops.png')
    fig.savefig(out, dpi=150)
    plt.close(fig)
    print(f'[gain v2] {out}: {picks[0][0]} ({diff[picks[0][0]]:+.3f} dB) and {picks[1][0]} ({diff[picks[1][0]]:+.3f} '
          f'dB), seed {seed}')


# what train.py runs for a study run: a change here between a run's start and its scoring may change its numbers
TRAINING_PATH = ('train.py', 'options/gain_v2', 'dukd_arch/archs', 'dukd_arch/compat.py', 'dukd_arch/data',
                 'dukd_arch/losses', 'dukd_arch/models', 'dukd_arch/ops', 'dukd_arch/training')


def _git(*cmd):
    return subprocess.run(['git', *cmd], cwd=v2.ROOT, capture_output=True, text=True).stdout.strip()


def provenance(args):
    """A run's JSON ``commit`` is HEAD when it was scored. Runs scored before the runner also wrote
    ``train_commit`` (HEAD when its last training segment started) are dated here: the newest commit before
    ``finished − train_seconds``. For a resumed run that sum leaves out the pauses between its segments, so its
    start is placed late and a change before it can be missed."""
    rows, changed = [], 0
    for result in v2.load(args.results):
        started = result.get('train_commit')
        if started is None:
            start = (datetime.datetime.strptime(result['finished'], '%Y-%m-%d %H:%M:%S')
                     - datetime.timedelta(seconds=result.get('train_seconds') or 0))
            started = _git('rev-list', '-1', f'--before={start.isoformat()}+00:00', 'HEAD')
        scored = result.get('commit') or ''
        files = _git('diff', '--name-only', started.removesuffix('+dirty'), scored.removesuffix('+dirty'), '--',
                     *TRAINING_PATH).split() if started != scored else []
        changed += bool(files)
        rows.append(f"| {result['name']} | {result.get('train_segments', '?')} | {started[:7]} | {scored[:7]} | "
                    f"{', '.join(f.removeprefix('dukd_arch/') for f in files) or '-'} |")
    print('| run | segments | trained at | scored at | training-path files changed in between |')
    print('|---|---|---|---|---|')
    print('\n'.join(rows))
    print(f'\n{changed} of {len(rows)} runs: files of the training path changed between the commit they trained at '
          'and the one their JSON records.')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('command', choices=('imitation', 'crops', 'provenance'))
    p.add_argument('--bench-root', help='folder holding Set5/ Set14/ BSD68/ Urban100/ (HR images)')
    p.add_argument('--data-root', default=v2.DATA)
    p.add_argument('--results', default=v2.RESULTS)
    p.add_argument('--teacher', default=None, help='PAN x4 checkpoint (default: the option file\'s)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--retrain', action='store_true', help='imitation: retrain runs whose checkpoint is gone')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(v2.ROOT)
    if args.command == 'provenance':
        return provenance(args)
    if not args.bench_root:
        sys.exit(f'{args.command}: give --bench-root DIR (a folder holding Set5/ Set14/ BSD68/ Urban100/)')
    (add_imitation if args.command == 'imitation' else crops)(args)


if __name__ == '__main__':
    main()
