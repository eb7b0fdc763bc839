"""Why DUKD's gain over output KD shrinks: post-hoc diagnostics of the gain study's finished runs (no training).

Reads the runs' training logs and final EMA weights under ``experiments/`` (present on the machine that ran
them) and writes ``benchmarks/results/gain_diagnostics.json`` and the section between the
``gain-diagnostics`` markers of docs/RESULTS.md:

1. **losses**: each loss term averaged over a run's last 20 % of iterations (its log). Does DUKD fit the real
   training pairs (``l_pix``) worse than output KD, and how large are the upcycled terms next to them?
2. **photos**: per-photo PSNR of every row on the validation and test photos, and each student's PSNR to the
   teacher's output (how closely it imitates it). Is DUKD - KD uniform over photos? The per-photo test PSNR
   re-scores each run's final weights; its mean must equal the run's committed score (checked).
3. **labels**: the teacher's zoom-out labels. On random 24 px LR patches of the students' training photos,
   PSNR of teacher(zoom_out(LR)) to the LR patch (the zoom-out target), next to bicubic; and the teacher
   on the real LR patch against its HR patch, for scale.

Nothing here chooses a setting: it explains the committed results. ``python benchmarks/gain_diagnostics.py``
scores only the runs that are new or retrained since the JSON was written (``--rescore``: all of them).
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import dukd_arch  # noqa: E402,F401  (before basicsr: registers and patches)
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from basicsr.archs import build_network  # noqa: E402
from basicsr.metrics import calculate_psnr  # noqa: E402
from basicsr.utils import img2tensor, tensor2img  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench_gain import plan, post_hoc, write_between  # noqa: E402
from gain_study import CAPACITIES, ROWS, fmt_interval, load_results, make_run  # noqa: E402
from dukd_arch.ops import zoom_out  # noqa: E402
from dukd_arch.archs.teacher import build_teacher  # noqa: E402
from dukd_arch.io.network import load_weights  # noqa: E402

LOSS_RE = re.compile(r'(l_\w+): ([-\d.e+]+)')
ITER_RE = re.compile(r'iter:\s*([\d,]+)')
TERMS = ('l_pix', 'l_kd', 'l_zoom_in', 'l_zoom_out_lr', 'l_zoom_out_kd')


def tail_losses(exp_dir: str, total: int) -> dict:
    """Mean of each logged loss over iterations > 80 % of ``total`` (a resumed run's later log wins)."""
    by_iter = {}
    for log in sorted(glob.glob(osp.join(exp_dir, 'train_*.log'))):
        with open(log) as f:
            for line in f:
                m = ITER_RE.search(line)
                if m and 'l_' in line:
                    by_iter[int(m.group(1).replace(',', ''))] = {k: float(v) for k, v in LOSS_RE.findall(line)}
    tail = [v for it, v in by_iter.items() if it > 0.8 * total]
    return {k: statistics.fmean(d[k] for d in tail) for k in (tail[0] if tail else {})}


def read(path: str) -> torch.Tensor:
    return img2tensor(cv2.imread(path, cv2.IMREAD_COLOR).astype(np.float32) / 255., bgr2rgb=True, float32=True)[None]


@torch.no_grad()
def sr(net, lq: torch.Tensor) -> np.ndarray:
    return tensor2img(net(lq).clamp_(0, 1))  # BGR uint8, as test.py scores it


def psnr(a: np.ndarray, b: np.ndarray, border: int = 4) -> float:
    return float(calculate_psnr(a, b, crop_border=border, test_y_channel=True))


def photo_set(data_root: str, split: str) -> dict:
    names = sorted(osp.splitext(osp.basename(p))[0] for p in glob.glob(f'{data_root}/{split}/HR/*.png'))
    return {n: (read(f'{data_root}/{split}/LR_bicubic/X4/{n}.png'),
                cv2.imread(f'{data_root}/{split}/HR/{n}.png', cv2.IMREAD_COLOR)) for n in names}


def training_patches(demo_root: str, n: int, seed: int = 0):
    """``n`` random aligned (24 px LR, 96 px HR) patches of the students' six training photos."""
    lr_paths = sorted(glob.glob(f'{demo_root}/train/LR_bicubic/X4/*.png'))
    rng = np.random.default_rng(seed)
    lqs, gts = [], []
    for _ in range(n):
        p = lr_paths[rng.integers(len(lr_paths))]
        lq, gt = read(p), read(p.replace('LR_bicubic/X4', 'HR'))
        y, x = (int(rng.integers(s - 24 + 1)) for s in lq.shape[-2:])
        lqs.append(lq[..., y:y + 24, x:x + 24])
        gts.append(gt[..., 4 * y:4 * y + 96, 4 * x:4 * x + 96])
    return torch.cat(lqs), torch.cat(gts)


def patch_psnr(x: torch.Tensor, target: torch.Tensor) -> float:
    return statistics.fmean(psnr(tensor2img(a.clamp(0, 1)), tensor2img(b), 0) for a, b in zip(x, target))


@torch.no_grad()
def label_quality(teacher, lq: torch.Tensor, gt: torch.Tensor) -> dict:
    """Teacher and bicubic on zoom-out inputs (target: the LR patch) and on real LR patches (target: HR)."""
    small = zoom_out(lq, 4)
    bicubic = lambda x: F.interpolate(x, scale_factor=4, mode='bicubic', align_corners=False)  # noqa: E731
    t_small = teacher(small)
    return {'zoom_out_teacher': patch_psnr(t_small, lq), 'zoom_out_bicubic': patch_psnr(bicubic(small), lq),
            'zoom_out_teacher_l1': float((t_small.clamp(0, 1) - lq).abs().mean()),
            'real_teacher': patch_psnr(teacher(lq), gt), 'real_bicubic': patch_psnr(bicubic(lq), gt)}


def diagnose(args) -> dict:
    torch.set_num_threads(args.threads)
    results = {r['name']: r for r in load_results(args.results)}
    val_root = f'{args.data_root}/val'
    specs = plan() + post_hoc()
    runs = [(spec, make_run(*spec, val_root, args.demo_root)) for spec in specs]
    runs = [(spec, run) for spec, run in runs if run.name in results and osp.isfile(run.weights)]
    previous = {}
    if not args.rescore and osp.isfile(args.out):
        with open(args.out) as f:
            previous = json.load(f)['runs']
    if not runs:
        raise SystemExit(f'no finished run of the study has its weights under experiments/ (results: {args.results}); '
                         'the diagnostics need the machine that trained them. `--render-only` redraws the committed '
                         f'{args.out}.')
    photos = {split: photo_set(args.data_root, split) for split in ('val', 'test')}
    teacher = build_teacher(make_run('kd', '17k', 'all', 0, val_root, args.demo_root).options(), torch.device('cpu'))
    teacher_out = {n: sr(teacher, lq) for n, (lq, _) in photos['test'].items()}
    out = {'teacher': {'val': {n: psnr(sr(teacher, lq), gt) for n, (lq, gt) in photos['val'].items()},
                       'test': {n: psnr(teacher_out[n], gt) for n, (_, gt) in photos['test'].items()}},
           'runs': {}}
    lq, gt = training_patches(args.demo_root, args.patches)
    out['labels'] = label_quality(teacher, lq, gt)
    reused = 0
    for (row, cap, photo_set_name, seed), run in tqdm(runs, desc='runs', unit='run'):
        old = previous.get(run.name)
        if old is not None and old.get('finished') == results[run.name]['finished']:
            out['runs'][run.name] = old  # same weights as when it was scored (the run has not been retrained)
            reused += 1
            continue
        net = build_network(dict(run.options()['network_g']))
        load_weights(net, run.weights, 'params_ema', option='network_g')
        net.eval()
        entry = {'row': row, 'capacity': cap, 'photos': photo_set_name, 'seed': seed,
                 'finished': results[run.name]['finished'],
                 'losses': tail_losses(run.exp_dir, results[run.name]['iters'])}
        outs = {split: {n: sr(net, lq) for n, (lq, _) in ps.items()} for split, ps in photos.items()}
        for split, ps in photos.items():
            entry[split] = {n: psnr(outs[split][n], gt) for n, (_, gt) in ps.items()}
        entry['to_teacher'] = {n: psnr(outs['test'][n], teacher_out[n]) for n in photos['test']}
        entry['rescore_error'] = statistics.fmean(entry['test'].values()) - results[run.name]['test']['psnr']
        out['runs'][run.name] = entry
    print(f'[diagnostics] {len(runs)} runs: {len(runs) - reused} scored, {reused} reused from {args.out}',
          file=sys.stderr)
    return out


def cells(d):
    found = {(e['capacity'], e['photos']) for e in d['runs'].values()}
    return [(c, p) for c in CAPACITIES for p in ('all', 'two', 'one') if (c, p) in found]


def paired_by(d, cap, photos, a, b, value) -> list:
    by = {(e['row'], e['seed']): e for e in d['runs'].values() if e['capacity'] == cap and e['photos'] == photos}
    try:
        return [value(by[(a, s)]) - value(by[(b, s)]) for (row, s) in sorted(by) if row == a and (b, s) in by]
    except KeyError:  # a run whose log has no loss line in its last 20 %
        return []


def markdown(d) -> str:
    lab = d['labels']
    lines = ['', 'Generated by `python benchmarks/gain_diagnostics.py` (post hoc: it explains the committed runs '
             'and chooses nothing; 2-core CPU, no GPU). Differences are paired by seed: mean [95 % t-interval]. '
             f"Runs whose weights were on disk: {len(d['runs'])}; largest |re-scored test mean − committed score|: "
             f"{max((abs(e['rescore_error']) for e in d['runs'].values()), default=0):.4f} dB.", '',
             '**Training losses over the last 20 % of iterations** (mean over seeds; L1 on [0, 1] pixels). '
             '`l_pix` is the student\'s L1 to the ground truth on the real training pairs.', '',
             '| cell | row | seeds | ' + ' | '.join(TERMS) + ' |', '|---|---|---|' + '---|' * len(TERMS)]
    for cap, photos in cells(d):
        for row in ROWS:
            es = [e for e in d['runs'].values() if (e['capacity'], e['photos'], e['row']) == (cap, photos, row)]
            if not es:
                continue
            vals = []
            for k in TERMS:
                v = [e['losses'][k] for e in es if k in e['losses']]
                vals.append(f'{statistics.fmean(v):.5f}' if v else '-')
            lines.append(f"| {cap}, {photos} | {ROWS[row][0]} | {len(es)} | " + ' | '.join(vals) + ' |')
    lines += ['', '**Each distilled row with upcycling − output KD, per photo** (PSNR, dB; validation photos chose '
              'nothing here either), **imitation** (PSNR of the student\'s output to the teacher\'s on the test '
              'photos, mean over photos) and the real-pair training loss.', '']
    names = {s: sorted(d['teacher'][s]) for s in ('val', 'test')}
    header = [f'{n} ({s})' for s in ('val', 'test') for n in names[s]]
    lines += ['| cell | row − KD | ' + ' | '.join(header) + ' | imitation (dB) | l_pix (×1e-3) |',
              '|---|---|' + '---|' * (len(header) + 2)]
    for cap, photos in cells(d):
        for r in tuple(ROWS)[2:]:
            if not paired_by(d, cap, photos, r, 'kd', lambda e: 0.0):
                continue
            row = [fmt_interval(paired_by(d, cap, photos, r, 'kd', lambda e, s=s, n=n: e[s][n]))
                   for s in ('val', 'test') for n in names[s]]
            imitation = paired_by(d, cap, photos, r, 'kd', lambda e: statistics.fmean(e['to_teacher'].values()))
            row.append(fmt_interval(imitation))
            row.append(fmt_interval(paired_by(d, cap, photos, r, 'kd', lambda e: 1e3 * e['losses']['l_pix'])))
            lines.append(f'| {cap}, {photos} | {ROWS[r][0]} | ' + ' | '.join(row) + ' |')
    teacher_row = ' | '.join(f"{d['teacher'][s][n]:.2f}" for s in ('val', 'test') for n in names[s])
    lines += [f'| teacher PSNR | | {teacher_row} | | |', '',
              f"**The teacher's zoom-out labels** ({d['patches']} random 24 px LR patches of the six training photos): "
              f"teacher(zoom_out(LR)) is {lab['zoom_out_teacher']:.2f} dB from the LR patch it stands for (bicubic: "
              f"{lab['zoom_out_bicubic']:.2f} dB; mean L1 {lab['zoom_out_teacher_l1']:.4f}); on the real LR patch the "
              f"teacher is {lab['real_teacher']:.2f} dB from the HR patch (bicubic: {lab['real_bicubic']:.2f} dB). "
              'PSNR on RGB→Y, whole patch.', '']
    return '\n'.join(lines)


def plot_per_photo(d, path: str) -> str:
    """DUKD - KD per photo (mean over seeds) for each cell: test photos filled, validation photos hollow."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cs = cells(d)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for i, (split, name) in enumerate((s, n) for s in ('test', 'val') for n in sorted(d['teacher'][s])):
        means = [statistics.fmean(v) if (v := paired_by(d, c, p, 'dukd', 'kd', lambda e: e[split][name])) else None
                 for c, p in cs]
        xs = [x for x, m in enumerate(means) if m is not None]
        ax.plot(xs, [means[x] for x in xs], marker='o', color=f'C{i}', label=f'{name} ({split})',
                mfc='none' if split == 'val' else f'C{i}', ls='-' if split == 'test' else ':')
    ax.axhline(0, color='grey', lw=0.8)
    ax.set_xticks(range(len(cs)), [f'{c}\n{p} photo(s)' for c, p in cs])
    ax.set_ylabel('DUKD − output KD, PSNR (dB)')
    ax.set_title('DUKD − output KD per photo (mean over seeds, paired)', fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    os.makedirs(osp.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--results', default='benchmarks/results/gain')
    p.add_argument('--data-root', default='datasets/gain')
    p.add_argument('--demo-root', default='datasets/demo')
    p.add_argument('--patches', type=int, default=400, help='LR patches for the label measurement')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default='benchmarks/results/gain_diagnostics.json')
    p.add_argument('--report', default='docs/RESULTS.md')
    p.add_argument('--plot', default='docs/img/gain_per_photo.png')
    p.add_argument('--rescore', action='store_true',
                   help='score every run again (default: reuse --out entries of runs not retrained since)')
    p.add_argument('--render-only', action='store_true', help='rewrite the report and plot from --out, no scoring')
    args = p.parse_args(argv)
    os.chdir(ROOT)
    if args.render_only:
        with open(args.out) as f:
            d = json.load(f)
    else:
        d = diagnose(args)
        d['patches'] = args.patches
        with open(args.out, 'w') as f:
            json.dump(d, f, indent=1)
    text = markdown(d)
    figure = plot_per_photo(d, args.plot)
    text += f'\n![DUKD − KD per photo]({osp.relpath(figure, osp.dirname(args.report))})\n'
    write_between(args.report, 'gain-diagnostics', text)
    print(text)


if __name__ == '__main__':
    main()
