"""The gain study's fixed definitions (docs/gain_protocol.md) and the statistics over its per-run results.

Shared by ``benchmarks/bench_gain.py`` (which runs and reports the study) and ``scripts/demo.py`` (which trains
the cell the protocol's validation rule selects and prints the study's interval next to its own numbers).
A result is one JSON file per run in ``benchmarks/results/gain/``: row, capacity, photos, seed, ``val_psnr``
(the last validation PSNR, EMA weights) and ``test`` (``{'psnr', 'ssim'}`` on the held-out photos).
It lives in benchmarks/, outside the package: ``import dukd_arch`` and training never load the study.
"""
import glob
import json
import math
import statistics
from os import path as osp
from typing import Dict, List, Optional, Sequence, Tuple

RESULTS = 'benchmarks/results/gain'
OPT_DIR = 'options/gain'

# capacity name: (num_feat, num_conv) of Real-ESRGAN's compact network; the name is its parameter count
CAPACITIES = {'17k': (16, 4), '70k': (32, 6), '251k': (64, 6)}
# training iterations per capacity, fixed by the convergence pilot (docs/gain_protocol.md, section 4)
ITERS = {'17k': 8000, '70k': 4000, '251k': 2000}
PHOTO_SETS = {'all': 6, 'two': 2, 'one': 1}
DEMO_CAPACITY = '17k'

NO_LCR = {'train:dukd_opt:label_consistency': None}
ROWS = {  # name: (label, base option file in options/gain, changes)
    'scratch': ('scratch', 'train_student_scratch.yml', {}),
    'kd': ('output KD', 'train_student_kd.yml', {}),
    'dukd': ('DUKD', 'train_student_dukd.yml', {}),
    'dukd_geo': ('DUKD, LCR without colour inversion', 'train_student_dukd.yml', {
        'train:dukd_opt:label_consistency:ops': ['vflip', 'hflip', 'transpose']}),
    'no_lcr': ('KD + zoom-in + zoom-out (no LCR)', 'train_student_dukd.yml', dict(NO_LCR)),
    'zoom_in': ('KD + zoom-in', 'train_student_dukd.yml', {
        **NO_LCR, 'train:dukd_opt:zoom_out': False,
        'datasets:train:upcycling': {'zoom_in_tiles': 1, 'positions': 'grid', 'zoom_out': False}}),
    'zoom_out': ('KD + zoom-out', 'train_student_dukd.yml', {
        **NO_LCR, 'train:dukd_opt:zoom_in': 0,
        'datasets:train:upcycling': {'zoom_in_tiles': 0, 'positions': 'grid', 'zoom_out': True}}),
}
MAIN_ROWS = ('scratch', 'kd', 'dukd', 'dukd_geo')
DUKD_VARIANTS = ('dukd', 'dukd_geo')
SELECTION_SEEDS = (0, 1, 2)  # the protocol's demo rule looks at these seeds' validation PSNR only


def load_results(results_dir: str = RESULTS) -> List[dict]:
    rows = []
    for path in sorted(glob.glob(osp.join(results_dir, '*.json'))):
        with open(path) as f:
            rows.append(json.load(f))
    return rows


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Tuple[float, Optional[float]]:
    """Mean, and the half-width of its two-sided t-interval (None for fewer than two values)."""
    from scipy import stats
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, None
    return mean, stats.t.ppf(0.5 + confidence / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)


def _score(result: dict, split: str) -> Optional[float]:
    return result.get('test', {}).get('psnr') if split == 'test' else result.get('val_psnr')


def paired(results: Sequence[dict], cap: str, photos: str, a: str, b: str, split: str = 'test',
           seeds: Optional[Sequence[int]] = None) -> Dict[int, float]:
    """Per-seed PSNR differences ``a - b`` on ``split`` ('test' or 'val') over the seeds both rows have."""
    by = {(r['row'], r['seed']): _score(r, split) for r in results if r['capacity'] == cap and r['photos'] == photos}
    by = {k: v for k, v in by.items() if v is not None}
    return {s: by[(a, s)] - by[(b, s)] for (row, s) in sorted(by)
            if row == a and (b, s) in by and (seeds is None or s in seeds)}


def fmt_interval(diffs: Sequence[float]) -> str:
    if not diffs:
        return '-'
    mean, half = t_interval(diffs)
    return f'{mean:+.3f}' + (f' [{mean - half:+.3f}, {mean + half:+.3f}]' if half is not None else '') + \
        f' (n={len(diffs)})'


def select_demo_cell(results: Sequence[dict]) -> dict:
    """The protocol's demo rule (section 8): at the demo's capacity, the (photo set, DUKD variant) whose paired
    *validation* difference to KD over seeds 0-2 has the largest lower 95 % bound. Test scores are never read.

    ``final`` is False while some candidate lacks one of those seeds; the choice is then provisional and ranks
    by the lower bound where two or more seeds exist, else by the single difference.
    """
    candidates = []
    for photos in PHOTO_SETS:
        for variant in DUKD_VARIANTS:
            diffs = list(paired(results, DEMO_CAPACITY, photos, variant, 'kd', 'val', SELECTION_SEEDS).values())
            if not diffs:
                continue
            mean, half = t_interval(diffs)
            lower = mean - half if half is not None else None
            candidates.append({'photos': photos, 'variant': variant, 'val_mean': mean, 'val_lower': lower,
                               'seeds': len(diffs)})
    if not candidates:
        return {'photos': 'all', 'variant': 'dukd', 'final': False, 'candidates': [],
                'why': 'no study results yet: the default cell (all photos, DUKD)'}
    ranked = sorted(candidates, key=lambda c: (c['seeds'] >= 2, c['val_lower'] if c['seeds'] >= 2 else c['val_mean']),
                    reverse=True)
    best = ranked[0]
    final = len(candidates) == len(PHOTO_SETS) * len(DUKD_VARIANTS) and \
        all(c['seeds'] == len(SELECTION_SEEDS) for c in candidates)
    why = ('largest lower 95 % bound of the validation difference to KD over seeds 0-2' if final else
           f'provisional: {sum(c["seeds"] for c in candidates)} of {len(PHOTO_SETS) * len(DUKD_VARIANTS) * 3} '
           'validation differences the rule needs are in')
    return {'photos': best['photos'], 'variant': best['variant'], 'final': final, 'candidates': ranked, 'why': why}


def run_name(row: str, cap: str, photos: str, seed: int, iters: Optional[int] = None, prefix: str = 'gain') -> str:
    suffix = f'_it{iters}' if iters else ''
    return f'{prefix}_{row}_{cap}_{photos}_s{seed}{suffix}'


def channels_last(row: str, cap: str, seed: int, prefix: str = 'gain') -> bool:
    """Whether a run trains in the NHWC layout: every run with a teacher (KDModel/DUKDModel read
    ``train.channels_last``; the scratch row is BasicSR's SRModel), except the study's 17k seeds 0-2, which had
    started in the default layout when it was adopted (protocol, section 9). The layout only reorders fp32
    arithmetic; on the 2-core CPU a DUKD step of this study runs 1.25x faster (benchmarks/bench_precision.py)."""
    return row != 'scratch' and not (prefix == 'gain' and cap == DEMO_CAPACITY and seed in SELECTION_SEEDS)


def make_run(row: str, cap: str, photos: str, seed: int, val_root: str, demo_root: str = 'datasets/demo',
             iters: Optional[int] = None, extra: Optional[dict] = None, prefix: str = 'gain'):
    """One run of the study: ``options/gain/<row's file>`` with the capacity, training photos, seed and
    iterations of its cell, validated on ``val_root``; ``extra`` changes go last (another teacher, say)."""
    from dukd_arch.demo.pipeline import Run
    label, base, changes = ROWS[row]
    train = f'{demo_root}/train' + ('' if photos == 'all' else f'/subsets/{photos}')
    feat, conv = CAPACITIES[cap]
    total = iters or ITERS[cap]
    every = max(1, total // 20)
    ch = {
        'manual_seed': seed,
        'network_g:num_feat': feat, 'network_g:num_conv': conv,
        'datasets:train:name': f'demo_train_{photos}',
        'datasets:train:dataroot_gt': f'{train}/HR.lmdb',
        'datasets:train:dataroot_lq': f'{train}/LR_bicubic_X4.lmdb',
        'datasets:val:dataroot_gt': f'{val_root}/HR',
        'datasets:val:dataroot_lq': f'{val_root}/LR_bicubic/X4',
        'train:total_iter': total, 'train:scheduler:periods': [total],
        'val:val_freq': every, 'logger:print_freq': every, 'logger:save_checkpoint_freq': max(1, total // 4),
        **changes, **(extra or {}),
    }
    if channels_last(row, cap, seed, prefix):  # added only when on, so the stamps of earlier runs are unchanged
        ch['train:channels_last'] = True
    return Run(f'{label} [{cap}, {photos}, seed {seed}]', osp.join(OPT_DIR, base),
               run_name(row, cap, photos, seed, iters, prefix), ch)


def headline(results: Sequence[dict], planned: Sequence[str]) -> str:
    """One sentence with the study's DUKD - KD so far at the demo's capacity, per number of training photos, and
    at the larger capacities on all photos (``planned``: the protocol's run names, to say how far the study is)."""
    def difference(cap, photos):
        diffs = list(paired(results, cap, photos, 'dukd', 'kd').values())
        if not diffs:
            return None, None, None
        mean, half = t_interval(diffs)
        interval = f' [{mean - half:+.2f}, {mean + half:+.2f}]' if half is not None else ''
        return f'{mean:+.2f} dB{interval} (n={len(diffs)})', mean, half

    parts, holds, intervals = [], [], 0
    for photos in ('one', 'two', 'all'):
        text, mean, half = difference(DEMO_CAPACITY, photos)
        if text is None:
            continue
        parts.append(f'{text} with {PHOTO_SETS[photos]}')
        intervals += half is not None
        if half is not None and mean - half > 0:
            holds.append(str(PHOTO_SETS[photos]))
    larger = []
    for cap in CAPACITIES:
        text = difference(cap, 'all')[0]
        if cap != DEMO_CAPACITY and text:
            larger.append(f'{text} at {cap[:-1]} k')
    done = len({r['name'] for r in results} & set(planned))
    if not parts:
        return f'The gain study has no DUKD - output KD pair yet ({done} of {len(planned)} runs).'
    if holds:
        verdict = f"its 95 % interval is above 0 with {' and '.join(holds)} training photo(s)"
    elif intervals:
        verdict = 'no 95 % interval excludes 0 yet'
    else:
        verdict = 'single seeds so far, so no interval and no verdict yet'
    listed = ', '.join(parts[:-1]) + (' and ' if len(parts) > 1 else '') + parts[-1]
    capacity = (f'; larger students trained on all {PHOTO_SETS["all"]} photos score ' + ' and '.join(larger)
                if larger else '')
    progress = (f'Gain study (all {done} protocol runs' if done == len(planned)
                else f'Gain study so far ({done} of {len(planned)} runs')
    return (f'{progress}; paired by seed, mean [95 % t-interval]): a 17 k-parameter '
            f'DUKD student minus its output-KD twin, both distilled from a teacher that saw more photos, scores '
            f'{listed} training photo(s), on held-out photos; {verdict}{capacity}.')
