"""Gain study v2: DUKD against output KD with a public DF2K teacher, the published x4 shape, scored on the
standard benchmarks (docs/gain_protocol_v2.md fixes the plan; this file only carries it out).

Teacher: PAN x4 (272 k parameters, the authors' DF2K checkpoint; it reproduces its published Set5/Set14
table with ``python -m dukd_arch.benchmark``). Students: Real-ESRGAN's compact network at 17 k and 70 k
parameters. LR patch 48 (HR 192), batch 16. Corpus: the Debian photographs of ``scripts/fetch_photos.py
--set corpus``, reduced to DIV2K's size and cut like DIV2K. Every run trains through train.py, validates
on the corpus's validation photos, and is scored once at its end on Set5 / Set14 / BSD68 / Urban100 (Y
PSNR / SSIM, border 4, EMA weights, per image). Each finished run is one JSON under
``benchmarks/results/gain_v2/`` (commit them as they finish); a stopped run resumes from its checkpoint.

    python scripts/fetch_photos.py --set corpus             # once: the 37 photographs
    python benchmarks/bench_gain_v2.py data                 # datasets/gain_v2: LMDBs, validation crops, corpus.json
    python benchmarks/bench_gain_v2.py labels               # PAN's output on every training LR (teacher-label store)
    python benchmarks/bench_gain_v2.py pilot                # convergence pilot (validation only)
    python benchmarks/bench_gain_v2.py run --jobs 2 --bench-root DIR   # the protocol's runs, in its order
    python benchmarks/bench_gain_v2.py bicubic --bench-root DIR    # bicubic's scores, the report's reference row
    python benchmarks/bench_gain_v2.py report               # docs/RESULTS.md section "gain study v2"

Post-hoc commands that read the runs' checkpoints (imitation for early runs, the crops figure) are in
``gain_v2_diagnostics.py``.
"""
import argparse
import glob
import json
import os
import platform
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

import dukd_arch  # noqa: E402,F401
from dukd_arch.ops import matlab_imresize_uint8  # noqa: E402
from dukd_arch.data.sr_data import (  # noqa: E402
    bicubic_downsample, bicubic_upscale, crop_positions, make_lmdb, modcrop, write_image)

DATA = 'datasets/gain_v2'
RESULTS = 'benchmarks/results/gain_v2'
BASE_OPT = 'options/gain_v2/train_student.yml'
PHOTO_ROOT = 'datasets/photos'
PHOTO_SETS = ('mate_nature', 'plasma_photos', 'lomiri_photos', 'lomiri2004_photos')
BENCH_SETS = ('Set5', 'Set14', 'BSD68', 'Urban100')
IMITATION_SETS = ('Set5', 'Set14')  # PSNR of the student's output to the teacher's (protocol, section 7)
SCALE = 4
LONG_SIDE = 2040           # DIV2K's HR images are 2040 px on their long side
SUB_CROP, SUB_STEP = 480, 240  # BasicSR's extract_subimages.py for DIV2K (HR; LR = / 4)
VAL_PHOTOS, SMALL_PHOTOS = 5, 2  # held out for validation; the data-scarce regime's training photos
VAL_CROP = 256             # two HR crops per validation photo (the most textured, deterministic)
SPLIT_SEED = 0

CAPACITIES = {'17k': (16, 4), '70k': (32, 6)}  # SRVGGNetCompact (num_feat, num_conv)
ROWS = {  # name: label; options/gain_v2/train_student_<name>.yml holds the row's settings
    'scratch': 'scratch',
    'kd': 'output KD',
    'dukd_edsr': 'DUKD, EDSR x4 setting (zoom-in, zoom-out, LCR)',
    'dukd_no_zoom_out': 'DUKD, SwinIR x4 setting (zoom-in, LCR)',
}
REGIMES = {'full': 'train', 'small': 'train_small'}  # data regime: folder under DATA
ITERS = {'17k': 2000, '70k': 2000}  # fixed by the convergence pilot, at most 2000 (docs/gain_protocol_v2.md, section 4)
# cells: (capacity, regime, iterations); the protocol's four, and the deciding cell again at the smallest pilot budget
# whose scratch student beats bicubic on the validation crops (section 9 amendment: at 2000 every student is below it)
CELLS = tuple((cap, regime, ITERS[cap]) for cap in CAPACITIES for regime in REGIMES)
DECIDING, LONG = CELLS[0], ('17k', 'full', 4000)
REPORT_CELLS = (DECIDING, LONG) + CELLS[1:]
BICUBIC = 'bicubic.json'  # bicubic's scores on the benchmarks and the validation crops, for reference
TEACHER_SCORES = 'benchmarks/results/benchmark/pan_x4.json'  # PAN scored by dukd_arch.benchmark (RESULTS 0a)
PILOT = (('70k', 4000), ('17k', 1000), ('17k', 2000), ('17k', 4000), ('70k', 1000), ('70k', 2000))  # longest first
SEEDS = (0, 1, 2)
DECODED_CACHE_MIB = 4096  # per run; two runs at a time fit the 24 GiB machine


def plan():
    """The protocol's runs as (row, capacity, regime, seed, iterations or None for the capacity's T), in the
    order they run: the deciding cell first; the long cell right after the runs that were in flight when section
    9 added it (the small regime's seed 0)."""
    def cell(cap, regime, iters=None):
        return [(row, cap, regime, seed, iters) for seed in SEEDS for row in ROWS]
    small = cell('17k', 'small')
    return cell('17k', 'full') + small[:len(ROWS)] + cell(*LONG) + small[len(ROWS):] + cell('70k', 'full') + \
        cell('70k', 'small')


def make_run(row, cap, regime, seed, data_root=DATA, iters=None, teacher=None, prefix='gain2'):
    from dukd_arch.demo.pipeline import Run
    feat, conv = CAPACITIES[cap]
    total = iters or ITERS[cap]
    every = max(1, total // 20)
    train = f'{data_root}/{REGIMES[regime]}'
    changes = {
        'manual_seed': seed, 'network_g:num_feat': feat, 'network_g:num_conv': conv,
        'datasets:train:name': f'gain_v2_{regime}',
        'datasets:train:dataroot_gt': f'{train}/HR.lmdb', 'datasets:train:dataroot_lq': f'{train}/LR_bicubic_X4.lmdb',
        'datasets:val:dataroot_gt': f'{data_root}/val/HR', 'datasets:val:dataroot_lq': f'{data_root}/val/LR_bicubic/X4',
        'train:total_iter': total, 'train:scheduler:periods': [total],
        'val:val_freq': every, 'logger:print_freq': every, 'logger:save_checkpoint_freq': max(1, total // 6),
    }
    if row != 'scratch':
        changes['datasets:train:dataroot_teacher'] = f'{train}/teacher_PAN_x4.lmdb'
        changes['train:channels_last'] = True  # NHWC: PAN's 20-channel convolutions run 1.3x faster on CPU
        if teacher:
            changes['path:pretrain_network_t'] = teacher
    name = f'{prefix}_{row}_{cap}_{regime}_s{seed}' + (f'_it{iters}' if iters else '')
    # decoded images in memory (about 2.6 GiB for the full corpus with labels): the same batches, decoded once
    speed = {'datasets:train:decoded_cache_mib': DECODED_CACHE_MIB} if row != 'scratch' else {}
    return Run(f'{ROWS[row]} [{cap}, {regime}, seed {seed}]', f'options/gain_v2/train_student_{row}.yml', name, changes,
               speed)


# ------------------------------------------------------------------------------------------------- data
def _photos():
    """(set, name, path) of every corpus photo, each checked against its set's SHA256SUMS."""
    from dukd_arch.io.shipped import sha256_file
    out = []
    for photo_set in PHOTO_SETS:
        folder = osp.join(PHOTO_ROOT, photo_set)
        sums = osp.join(folder, 'SHA256SUMS')
        if not osp.isfile(sums):
            sys.exit(f'{folder} is missing: run `python scripts/fetch_photos.py --set corpus` first.')
        for line in open(sums).read().split('\n'):
            if line.strip():
                digest, name = line.split()
                path = osp.join(folder, name)
                if sha256_file(path) != digest:
                    sys.exit(f'{path} does not match {sums}: run `python scripts/fetch_photos.py --set corpus --force`.')
                out.append((photo_set, name, path, digest))
    return out


def split(photos):
    """Roles by one seeded permutation of the sorted names: 5 validation photos, the next 2 form the small
    regime (a subset of the full one), the rest train."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(photos))
    roles = {}
    for rank, i in enumerate(order):
        roles[photos[i][1]] = 'val' if rank < VAL_PHOTOS else 'small' if rank < VAL_PHOTOS + SMALL_PHOTOS else 'train'
    return roles


def reduce_to_div2k(img):
    """MATLAB-bicubic reduction so the long side is 2040 px (DIV2K's), then a multiple of 4; smaller stays."""
    long_side = max(img.shape[:2])
    if long_side > LONG_SIDE:
        t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        img = matlab_imresize_uint8(t, LONG_SIDE / long_side).to(torch.uint8).numpy().transpose(1, 2, 0)
    return modcrop(np.ascontiguousarray(img), SCALE)


def _thumb(img):
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    t = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    return (t - t.mean()) / (t.std() + 1e-8)


def overlap_with_benchmarks(images, bench_root):
    """Largest thumbnail correlation between any corpus photo and any benchmark image (1.0 = the same picture)."""
    bench = [p for s in BENCH_SETS for p in sorted(glob.glob(osp.join(bench_root, s, '**', '*.png'), recursive=True))]
    if not bench:
        return None
    thumbs = np.stack([_thumb(cv2.imread(p)) for p in bench])
    best = (-1.0, None, None)
    for name, img in images:
        corr = thumbs @ _thumb(img) / thumbs.shape[1]
        i = int(corr.argmax())
        if corr[i] > best[0]:
            best = (float(corr[i]), name, osp.relpath(bench[i], bench_root))
    return {'max_correlation': best[0], 'corpus_photo': best[1], 'benchmark_image': best[2], 'benchmark_images': len(bench)}


def build_data(args):
    photos = _photos()
    roles = split(photos)
    card = {'photos': [], 'scale': SCALE, 'sub_crop': SUB_CROP, 'sub_step': SUB_STEP, 'long_side': LONG_SIDE}
    reduced = []
    for regime_dir in ('train', 'train_small', 'val'):
        for kind in ('HR', 'LR_bicubic/X4'):
            os.makedirs(osp.join(args.data_root, regime_dir, 'folders', kind) if regime_dir != 'val'
                        else osp.join(args.data_root, 'val', kind), exist_ok=True)
    for photo_set, name, path, digest in tqdm(photos, desc='corpus photos', unit='photo'):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        original = img.shape[:2]
        img = reduce_to_div2k(img)
        reduced.append((name, img))
        lr, = bicubic_downsample([img], SCALE)
        stem = osp.splitext(name)[0]
        role = roles[name]
        entry = {'set': photo_set, 'name': name, 'sha256': digest, 'original': list(original),
                 'reduced': list(img.shape[:2]), 'role': role}
        if role == 'val':
            crops = _val_crops(img)
            for k, (top, left) in enumerate(crops):
                write_image(osp.join(args.data_root, 'val', 'HR', f'{stem}_{k}.png'),
                            img[top:top + VAL_CROP, left:left + VAL_CROP])
                t, l, c = top // SCALE, left // SCALE, VAL_CROP // SCALE
                write_image(osp.join(args.data_root, 'val', 'LR_bicubic/X4', f'{stem}_{k}.png'), lr[t:t + c, l:l + c])
            entry['val_crops'] = len(crops)
        else:
            count = 0
            for top in crop_positions(img.shape[0], SUB_CROP, SUB_STEP, 0):
                for left in crop_positions(img.shape[1], SUB_CROP, SUB_STEP, 0):
                    count += 1
                    out = f'{stem}_s{count:03d}.png'
                    hr_crop = img[top:top + SUB_CROP, left:left + SUB_CROP]
                    t, l, c = top // SCALE, left // SCALE, SUB_CROP // SCALE
                    for regime_dir in ('train', 'train_small') if role == 'small' else ('train', ):
                        base = osp.join(args.data_root, regime_dir, 'folders')
                        write_image(osp.join(base, 'HR', out), hr_crop)
                        write_image(osp.join(base, 'LR_bicubic/X4', out), lr[t:t + c, l:l + c])
            entry['sub_images'] = count
        card['photos'].append(entry)
    for regime_dir in ('train', 'train_small'):
        base = osp.join(args.data_root, regime_dir)
        make_lmdb(osp.join(base, 'folders', 'HR'), osp.join(base, 'HR.lmdb'), overwrite=True, quiet=True)
        make_lmdb(osp.join(base, 'folders', 'LR_bicubic/X4'), osp.join(base, 'LR_bicubic_X4.lmdb'), overwrite=True,
                  quiet=True)
    card['overlap_with_benchmarks'] = overlap_with_benchmarks(reduced, args.bench_root) if args.bench_root else None
    for role in ('train', 'small', 'val'):
        card[f'{role}_photos'] = sum(p['role'] == role for p in card['photos'])
    card['sub_images_full'] = sum(p.get('sub_images', 0) for p in card['photos'])
    card['sub_images_small'] = sum(p.get('sub_images', 0) for p in card['photos'] if p['role'] == 'small')
    card['val_images'] = sum(p.get('val_crops', 0) for p in card['photos'])
    os.makedirs(args.results, exist_ok=True)
    with open(osp.join(args.results, 'corpus.json'), 'w') as f:
        json.dump(card, f, indent=1)
    print(f"[gain v2] corpus: {card['train_photos'] + card['small_photos']} training photos "
          f"({card['sub_images_full']} sub-images of {SUB_CROP} px; small regime: {card['small_photos']} photos, "
          f"{card['sub_images_small']} sub-images), {card['val_photos']} validation photos ({card['val_images']} crops)"
          + (f"; max thumbnail correlation with the benchmarks {card['overlap_with_benchmarks']['max_correlation']:.2f}"
             if card['overlap_with_benchmarks'] else ''))


def _val_crops(img):
    """The two most textured VAL_CROP squares of a grid over the photo (deterministic)."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    cands = [(float(grey[t:t + VAL_CROP, l:l + VAL_CROP].std()), t, l)
             for t in crop_positions(img.shape[0], VAL_CROP, VAL_CROP, 0)
             for l in crop_positions(img.shape[1], VAL_CROP, VAL_CROP, 0)]
    return [(t, l) for _, t, l in sorted(cands, reverse=True)[:2]]


# ------------------------------------------------------------------------------------------- training
_SETS = {}


def benchmark_sets(bench_root):
    """The four benchmark sets, read once per process (HR cropped to x4, MATLAB-bicubic LR)."""
    from dukd_arch.benchmark import read_set
    if not _SETS:
        for name in BENCH_SETS:
            folder = osp.join(bench_root, name)
            if not osp.isdir(folder):
                sys.exit(f'--bench-root {bench_root}: no {name}/ (the four benchmark sets are needed to score runs)')
            _SETS[name] = read_set(folder, SCALE)
    return [_SETS[n] for n in BENCH_SETS]


_TEACHER_OUTPUTS = {}  # (bench_root, checkpoint) -> outputs; execute() fills it before its threads start


def load_teacher(teacher=None):
    """The study's teacher (PAN x4) as an upsampler: ``teacher`` or the option file's checkpoint."""
    from dukd_arch.benchmark import load_model
    opt = make_run('kd', '17k', 'full', 0).options()
    return load_model(teacher or opt['path']['pretrain_network_t'], network=opt['network_t'], device='cpu')


def teacher_outputs(bench_root, teacher=None):
    """The teacher's SR of the imitation sets, the reference of the imitation metric (once per process)."""
    from dukd_arch.benchmark import score_model
    key = (bench_root, teacher)
    if key not in _TEACHER_OUTPUTS:
        sets = [s for s in benchmark_sets(bench_root) if s[0] in IMITATION_SETS]
        _TEACHER_OUTPUTS[key] = score_model(load_teacher(teacher), sets, SCALE, 'teacher', keep_outputs=True)[3]
    return _TEACHER_OUTPUTS[key]


def score(run, bench_root, threads, teacher=None, set_names=BENCH_SETS):
    """The run's EMA weights on the benchmarks: per-image Y-PSNR / SSIM (the one scoring of this run) and, on
    the imitation sets, the set's mean PSNR to the teacher's output."""
    from dukd_arch.benchmark import load_model, score_model, summarise
    torch.set_num_threads(threads or 1)
    up = load_model(run.weights, run.option_file(), device='cpu')
    sets = [s for s in benchmark_sets(bench_root) if s[0] in set_names]
    rows, _, _, _ = score_model(up, sets, SCALE, run.name, teacher_outputs(bench_root, teacher))
    summary = summarise(rows, set_names)
    imitation = {n: round(summary[n].pop('psnr_to_reference'), 5) for n in IMITATION_SETS if n in summary}
    return {'sets': summary, 'imitation': imitation,
            'images': {f"{r['set']}/{r['image']}": [round(r['psnr'], 5), round(r['ssim'], 6)] for r in rows}}


def write_result(out, result):
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out + '.tmp', 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(out + '.tmp', out)  # atomic: a kill never leaves half a JSON


def _run_and_result(spec, args, pilot):
    run = make_run(*spec[:4], args.data_root, spec[4], args.teacher, 'gain2pilot' if pilot else 'gain2')
    return run, osp.join(args.results + ('_pilot' if pilot else ''), f'{run.name}.json')


def train_and_score(spec, args, lock, board, pilot=False):
    """A run's JSON: read when it exists, else trained (or resumed), scored and written."""
    run, out = _run_and_result(spec, args, pilot)
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    board.start(run.name)
    try:
        result = _train_and_score(run, spec, args, board, pilot)
    except BaseException:
        board.finish(run.name, ok=False)
        raise
    with lock:
        write_result(out, result)
        test = ''.join(f", {k} {v['psnr']:.3f}" for k, v in result.get('test', {}).get('sets', {}).items())
        print(f"[gain v2] done {run.name}: val {result['val_psnr']} dB (last-20 % gain "
              f"{result['val_gain_last20']:+.3f}){test}", flush=True)
    board.finish(run.name)
    return result


def _train_and_score(run, spec, args, board, pilot):
    from bench_gain import convergence, git_commit
    from dukd_arch.demo import pipeline
    row, cap, regime, seed = spec[:4]
    log_dir = osp.join('experiments', '_gain_v2_logs')
    os.makedirs(log_dir, exist_ok=True)
    train_commit = git_commit()  # the code this (last) segment imports; HEAD may move while it trains
    pipeline.train(run, log_dir, threads=args.threads, resume=True, progress=False, report=board.reporter(run.name))
    curve = pipeline.curve(run)
    seconds, segments = pipeline.wall_seconds(run)
    total = run.total_iter()
    gain = convergence(curve, total)
    result = {'name': run.name, 'row': row, 'capacity': cap, 'regime': regime, 'seed': seed, 'iters': total,
              'val_curve': curve, 'val_psnr': curve[-1][1] if curve else None, 'val_gain_last20': gain,
              'converged': gain is not None and gain < 0.01, 'train_seconds': seconds, 'train_segments': segments,
              'threads': args.threads,
              'machine': f'{platform.platform()}, {os.cpu_count()} CPUs', 'commit': git_commit(),
              'train_commit': train_commit, 'finished': time.strftime('%Y-%m-%d %H:%M:%S')}
    if not pilot:
        result['test'] = score(run, args.bench_root, args.threads, args.teacher)
    return result


def execute(specs, args, pilot=False):
    lock = threading.Lock()
    if not pilot and not args.bench_root:
        sys.exit('run: give --bench-root DIR (a folder holding Set5/ Set14/ BSD68/ Urban100/) to score the runs')
    if not pilot:
        teacher_outputs(args.bench_root, args.teacher)  # fail before any training when a set or the teacher is missing
    from dukd_arch.demo.progress import ProgressBoard
    pending = {run.name: run.total_iter() for run, out in (_run_and_result(spec, args, pilot) for spec in specs)
               if not osp.isfile(out)}
    print(f'[gain v2] {len(specs)} runs ({len(pending)} to train), {args.jobs} at a time, {args.threads} thread(s) '
          'each', flush=True)
    # one line per running run (iterations, it/s, ETA, validation PSNR) at least every minute; the queue is only
    # counted: a DUKD step costs several KD steps, so no rate of the running runs predicts it
    board = ProgressBoard(pending, jobs=args.jobs, title='[gain v2]', interval=60, listed=('running', 'failed'),
                          queue_eta=False)
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            return list(pool.map(lambda spec: train_and_score(spec, args, lock, board, pilot), specs))
    finally:
        board.close()


def score_bicubic(args):
    """benchmarks/results/gain_v2/bicubic.json: bicubic's Y-PSNR / SSIM on the benchmarks (per set and over the
    187 images) and on the validation crops, the reference the report puts the students next to."""
    from bench_gain import git_commit
    from dukd_arch.benchmark import y_metrics
    torch.set_num_threads(args.threads or 1)
    sets, images = {}, []
    for name, items, _ in benchmark_sets(args.bench_root):
        scores = [y_metrics(bicubic_upscale(lr, SCALE), hr, SCALE) for _, hr, lr in items]
        sets[name] = {'psnr': float(np.mean([p for p, _ in scores])), 'ssim': float(np.mean([q for _, q in scores]))}
        images += [p for p, _ in scores]
    val = []
    for path in sorted(glob.glob(osp.join(args.data_root, 'val', 'HR', '*.png'))):
        lr = cv2.imread(path.replace(osp.join('val', 'HR'), osp.join('val', 'LR_bicubic', 'X4')))
        val.append(y_metrics(bicubic_upscale(lr, SCALE), cv2.imread(path), SCALE)[0])
    if not val:
        sys.exit(f'bicubic: no validation crops under {args.data_root}/val/HR (run `bench_gain_v2.py data` first)')
    out = {'sets': sets, 'all': float(np.mean(images)), 'images': len(images), 'val_psnr': float(np.mean(val)),
           'val_images': len(val), 'commit': git_commit(), 'finished': time.strftime('%Y-%m-%d %H:%M:%S')}
    write_result(osp.join(args.results, BICUBIC), out)
    print(f"[gain v2] bicubic: {out['all']:.3f} dB over {len(images)} benchmark images, {out['val_psnr']:.3f} dB on "
          f'{len(val)} validation crops', flush=True)


def labels(args):
    """PAN's output on every training LR image of both regimes (resumable: finished labels are kept)."""
    import subprocess
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))  # one thread per process beats oversubscription
    for regime in REGIMES:
        opt = make_run('kd', '17k', regime, 0, args.data_root, teacher=args.teacher).option_file()
        subprocess.run([sys.executable, '-m', 'dukd_arch.teacher_labels', '-opt', opt], check=True, env=env)


# ----------------------------------------------------------------------------------------------- report
COMPARISONS = (('dukd_edsr', 'kd'), ('dukd_no_zoom_out', 'kd'), ('dukd_edsr', 'dukd_no_zoom_out'), ('kd', 'scratch'),
               ('dukd_edsr', 'scratch'))
ALL = 'all 187'
SHORT = {('dukd_edsr', 'kd'): 'DUKD (EDSR setting) − KD', ('dukd_no_zoom_out', 'kd'): 'DUKD (no zoom-out) − KD',
         ('dukd_edsr', 'dukd_no_zoom_out'): 'the zoom-out term (EDSR setting − no zoom-out)',
         ('kd', 'scratch'): 'KD − scratch', ('dukd_edsr', 'scratch'): 'DUKD (EDSR setting) − scratch'}


def load(results_dir, prefix='gain2'):
    out = []
    for path in sorted(glob.glob(osp.join(results_dir, f'{prefix}_*.json'))):
        with open(path) as f:
            out.append(json.load(f))
    return out


def set_score(result, set_name):
    """A run's mean Y-PSNR on one set, or over every benchmark image (``ALL``)."""
    if set_name == ALL:
        return float(np.mean([v[0] for v in result['test']['images'].values()]))
    return result['test']['sets'][set_name]['psnr']


def imitation(result, set_name):
    """A run's mean PSNR to the teacher's output on one imitation set (None when the run has none yet)."""
    return result['test'].get('imitation', {}).get(set_name)


def cell_runs(results, cell, row=None):
    """The scored runs of one cell (capacity, regime, iterations), of one row if given."""
    return [r for r in results if 'test' in r and (r['capacity'], r['regime'], r['iters']) == tuple(cell)
            and (row is None or r['row'] == row)]


def cell_title(cell):
    return f'{cell[0]} student, {cell[1]} corpus, {cell[2]} iterations'


def paired(results, cell, a, b, set_name, value=set_score):
    by = {(r['row'], r['seed']): value(r, set_name) for r in cell_runs(results, cell)}
    return [by[(a, s)] - by[(b, s)] for (row, s) in sorted(by)
            if row == a and by[(a, s)] is not None and by.get((b, s)) is not None]


def per_image(results, cell, a, b):
    """Per benchmark image ('Set5/baby'): row a − row b, averaged over the seeds where both ran (dB)."""
    by = {(r['row'], r['seed']): r['test']['images'] for r in cell_runs(results, cell)}
    seeds = sorted(s for (row, s) in by if row == a and (b, s) in by)
    if not seeds:
        return {}
    return {k: float(np.mean([by[(a, s)][k][0] - by[(b, s)][k][0] for s in seeds])) for k in by[(a, seeds[0])]}


def per_image_table(results, cell):
    """How the paired differences spread over the 187 images: is a gain broad, or a few images' doing?"""
    lines = ['| per image (mean over seeds) | images above 0 | median (dB) | lowest (dB) | highest (dB) |',
             '|---|---|---|---|---|']
    for a, b in COMPARISONS:
        d = per_image(results, cell, a, b)
        if d:
            lo, hi = min(d, key=d.get), max(d, key=d.get)
            lines.append(f'| {ROWS[a]} − {ROWS[b]} | {sum(v > 0 for v in d.values())} of {len(d)} | '
                         f'{np.median(list(d.values())):+.3f} | {d[lo]:+.3f} ({lo}) | {d[hi]:+.3f} ({hi}) |')
    return lines if len(lines) > 2 else []


def imitation_tables(results, cell):
    """Imitation per row (mean ± std over the seeds where every row has it, so rows compare) and its paired
    differences (over the seeds where both rows have it)."""
    from gain_study import fmt_interval
    have = {row: {r['seed'] for r in cell_runs(results, cell, row) if imitation(r, IMITATION_SETS[0]) is not None}
            for row in ROWS}
    have = {row: seeds for row, seeds in have.items() if seeds}
    seeds = sorted(set.intersection(*have.values())) if have else []
    if not seeds:
        return []
    lines = ['| row | ' + ' | '.join(IMITATION_SETS) + ' | seeds |', '|---|' + '---|' * (len(IMITATION_SETS) + 1)]
    for row in have:
        rs = [r for r in cell_runs(results, cell, row) if r['seed'] in seeds]
        cells = [f'{np.mean(v):.3f}' + (f' ± {np.std(v, ddof=1):.3f}' if len(v) > 1 else '')
                 for v in ([imitation(r, s) for r in rs] for s in IMITATION_SETS)]
        lines.append(f'| {ROWS[row]} | ' + ' | '.join(cells) + f" | {', '.join(map(str, seeds))} |")
    lines += ['', '| imitation, paired by seed: mean [95 % t-interval] (dB) | ' + ' | '.join(IMITATION_SETS) + ' |',
              '|---|' + '---|' * len(IMITATION_SETS)]
    for a, b in COMPARISONS:
        if paired(results, cell, a, b, IMITATION_SETS[0], imitation):
            lines.append(f'| {ROWS[a]} − {ROWS[b]} | ' + ' | '.join(
                fmt_interval(paired(results, cell, a, b, s, imitation)) for s in IMITATION_SETS) + ' |')
    return lines


def cell_tables(results, cell, bicubic=None, teacher=None):
    from gain_study import fmt_interval
    cols = BENCH_SETS + (ALL, )
    lines = ['| row | ' + ' | '.join(f'{s} PSNR / SSIM' for s in BENCH_SETS) + f' | {ALL} PSNR | seeds | converged |',
             '|---|' + '---|' * (len(BENCH_SETS) + 3)]
    for label, ref in (('bicubic (MATLAB)', bicubic), ((teacher or {}).get('label'), teacher)):
        if ref:
            lines.append(f'| *{label}, for reference* | ' + ' | '.join(
                f"{ref['sets'][s]['psnr']:.3f} / {ref['sets'][s]['ssim']:.4f}" for s in BENCH_SETS) +
                f" | {ref['all']:.3f} | - | - |")
    for row, label in ROWS.items():
        rs = cell_runs(results, cell, row)
        if not rs:
            continue
        cells = []
        for s in cols:
            ps = [set_score(r, s) for r in rs]
            sd = f' ± {np.std(ps, ddof=1):.3f}' if len(ps) > 1 else ''
            ssim = '' if s == ALL else f" / {np.mean([r['test']['sets'][s]['ssim'] for r in rs]):.4f}"
            cells.append(f'{np.mean(ps):.3f}{sd}{ssim}')
        lines.append(f'| {label} | ' + ' | '.join(cells) + f" | {len(rs)} | {sum(r['converged'] for r in rs)}/{len(rs)} |")
    lines += ['', '| paired by seed: mean [95 % t-interval] (dB) | ' + ' | '.join(cols) + ' |',
              '|---|' + '---|' * len(cols)]
    for a, b in COMPARISONS:
        if paired(results, cell, a, b, ALL):
            lines.append(f'| {ROWS[a]} − {ROWS[b]} | ' +
                         ' | '.join(fmt_interval(paired(results, cell, a, b, s)) for s in cols) + ' |')
    return lines


def summary_table(results, bicubic=None):
    """Every cell in one table (all 187 images): where its rows stand against bicubic and each comparison, so
    the cells can be read side by side before their own tables."""
    from gain_study import fmt_interval
    lines = ['| cell | rows (dB) | ' + ' | '.join(SHORT[c] for c in COMPARISONS) + ' |',
             '|---|---|' + '---|' * len(COMPARISONS)]
    for cell in REPORT_CELLS:
        means = [float(np.mean([set_score(r, ALL) for r in rs])) for rs in
                 (cell_runs(results, cell, row) for row in ROWS) if rs]
        if not means:
            continue
        where = f'{min(means):.2f}-{max(means):.2f}'
        if bicubic:
            where += (' (below bicubic)' if max(means) < bicubic['all'] else
                      ' (above bicubic)' if min(means) > bicubic['all'] else ' (around bicubic)')
        lines.append(f'| {cell_title(cell)} | {where} | ' + ' | '.join(
            fmt_interval(paired(results, cell, a, b, ALL)) for a, b in COMPARISONS) + ' |')
    return lines


def _difference(diffs):
    """'+0.08 dB [+0.07, +0.09] (95 % t-interval, above 0)' for paired differences (one seed: no interval)."""
    from gain_study import t_interval
    mean, half = t_interval(diffs)
    if half is None:
        return f'{mean:+.2f} dB (one seed: no interval yet)'
    verdict = 'above 0' if mean - half > 0 else 'below 0' if mean + half < 0 else 'which includes 0'
    return f'{mean:+.2f} dB [{mean - half:+.2f}, {mean + half:+.2f}] (95 % t-interval, {verdict})'


def _against_bicubic(results, cell, bicubic):
    """Where the cell's rows stand against bicubic interpolation over the 187 images (a student below it is not
    one anybody would deploy, whatever it gains over another)."""
    means = [float(np.mean([set_score(r, ALL) for r in rs])) for rs in (cell_runs(results, cell, row) for row in ROWS)
             if rs]
    if not bicubic or not means:
        return ''
    where = ('every row still below' if max(means) < bicubic['all'] else
             'every row above' if min(means) > bicubic['all'] else 'rows on both sides of')
    return f'{where} bicubic interpolation: {min(means):.2f}-{max(means):.2f} dB against {bicubic["all"]:.2f}'


def _cell_sentence(results, cell, against_scratch=False):
    edsr = paired(results, cell, 'dukd_edsr', 'kd', ALL)
    sentence = f'DUKD with the published EDSR x4 setting minus output KD scores {_difference(edsr)}'
    no_zoom_out = paired(results, cell, 'dukd_no_zoom_out', 'kd', ALL)
    zoom_out = paired(results, cell, 'dukd_edsr', 'dukd_no_zoom_out', ALL)
    if no_zoom_out and zoom_out:
        sentence += (f'; the RCAN / SwinIR setting (no zoom-out) minus output KD scores {_difference(no_zoom_out)}, '
                     f'so the zoom-out term is worth {_difference(zoom_out)}')
    kd_scratch = paired(results, cell, 'kd', 'scratch', ALL)
    if against_scratch and kd_scratch:
        sentence += f'; output KD minus scratch scores {_difference(kd_scratch)}'
    return sentence


def _cell_setting(results, cell, bicubic):
    """['2000 iterations, short of convergence', 'every row ... bicubic ...', '3 of 3 seeds'] for the headline."""
    runs = cell_runs(results, cell)
    short = ', short of convergence' if not all(r.get('converged') for r in runs) else ''
    where = _against_bicubic(results, cell, bicubic)
    seeds = len(paired(results, cell, 'dukd_edsr', 'kd', ALL))
    return [f'{cell[2]} iterations{short}'] + ([where] if where else []) + [f'{seeds} of {len(SEEDS)} seeds']


def headline(results, bicubic=None):
    """The 17k full-corpus result in one or two sentences, or how far it is: both DUKD settings against output KD,
    the zoom-out term, where the students stand against bicubic. The long cell (section 9: its students pass
    bicubic) leads once all its seeds are in; until then the deciding cell leads and the long one follows."""
    diffs = paired(results, DECIDING, 'dukd_edsr', 'kd', ALL)
    if not diffs:
        return 'Study v2 (public PAN teacher, Set5/Set14/BSD68/Urban100): no scored pair in its deciding cell yet.'
    long = paired(results, LONG, 'dukd_edsr', 'kd', ALL)
    lead, other = (LONG, DECIDING) if len(long) == len(SEEDS) else (DECIDING, LONG)
    text = (f'Study v2 (public PAN x4 teacher reproducing its published table; 17 k-parameter students; LR patch 48; '
            f'{"; ".join(_cell_setting(results, lead, bicubic))}), '
            f'over the 187 images of Set5, Set14, BSD68 and Urban100: {_cell_sentence(results, lead, True)}.')
    if paired(results, other, 'dukd_edsr', 'kd', ALL):
        iters, *rest = _cell_setting(results, other, bicubic)
        text += f' At {iters} ({"; ".join(rest)}): {_cell_sentence(results, other)}.'
    else:
        done = len(cell_runs(results, LONG))
        text += (f' The same cell at {LONG[2]} iterations, where a scratch student passes bicubic on the validation '
                 f'crops, has {done} of its {len(ROWS) * len(SEEDS)} runs scored so far.')
    return text


def plot_cells(results, out_dir):
    """One panel per comparison, one line per cell: the paired difference over all 187 images with its 95 %
    t-interval (a forest plot: the cells side by side)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from gain_study import t_interval
    cells = [c for c in REPORT_CELLS if cell_runs(results, c)]
    shown = [(a, b) for a, b in COMPARISONS if any(len(paired(results, c, a, b, ALL)) > 1 for c in cells)]
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 0.45 * len(cells) + 1.6), sharey=True,
                             squeeze=False)
    for ax, (a, b) in zip(axes[0], shown):
        for y, cell in enumerate(cells):
            d = paired(results, cell, a, b, ALL)
            if len(d) > 1:
                m, h = t_interval(d)
                colour = 'C2' if m - h > 0 else 'C3' if m + h < 0 else 'C7'
                ax.errorbar([m], [y], xerr=[h], fmt='o', color=colour, capsize=3)
                ax.annotate(f'n={len(d)}', (m, y), textcoords='offset points', xytext=(0, 5), fontsize=6,
                            ha='center')
        ax.axvline(0, color='grey', lw=0.8)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.set_title(SHORT[(a, b)].replace(' (EDSR setting − no zoom-out)', '\n(EDSR − no zoom-out)'), fontsize=7)
        ax.set_xlabel('Y-PSNR difference, all 187 images (dB)', fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0][0].set_yticks(range(len(cells)))
    axes[0][0].set_yticklabels([cell_title(c) for c in cells], fontsize=7)
    axes[0][0].set_ylim(len(cells) - 0.5, -0.8)  # first cell on top, room for its label
    fig.suptitle('study v2, every cell: paired by seed, mean and 95 % t-interval (green: above 0, red: below, '
                 'grey: includes 0)', fontsize=8)
    fig.tight_layout()
    path = osp.join(out_dir, 'gain_v2_cells.png')
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot(results, out_dir):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from gain_study import t_interval
    paths = []
    cols = BENCH_SETS + (ALL, )
    for regime in REGIMES:
        cells = [c for c in REPORT_CELLS if c[1] == regime and paired(results, c, 'kd', 'scratch', ALL)]
        if not cells:
            continue
        fig, axes = plt.subplots(1, len(cells), figsize=(5.5 * len(cells), 5.0), squeeze=False)
        for ax, cell in zip(axes[0], cells):
            for k, ((a, b), colour) in enumerate(zip(COMPARISONS, ('C0', 'C2', 'C3', 'C1', 'C4'))):
                xs, ms, hs = [], [], []
                for i, s in enumerate(cols):
                    d = paired(results, cell, a, b, s)
                    if d:
                        m, h = t_interval(d)
                        xs.append(i + (k - 2) * 0.1)
                        ms.append(m)
                        hs.append(h or 0.0)
                if xs:
                    ax.errorbar(xs, ms, yerr=hs, fmt='o', color=colour, capsize=3, label=f'{ROWS[a]} − {ROWS[b]}')
            ax.axhline(0, color='grey', lw=0.8)
            ax.set_xticks(range(len(cols)))
            ax.set_xticklabels(cols)
            ax.set_title(cell_title(cell), fontsize=9)
            ax.set_ylabel('Y-PSNR difference (dB)')
        # one legend under the panels, where it hides no interval
        handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
        fig.legend(list(handles.values()), list(handles), loc='lower center', fontsize=7, frameon=False)
        fig.suptitle('study v2, paired by seed: mean and 95 % t-interval', fontsize=8)
        fig.tight_layout(rect=(0, 0.25, 1, 1))
        path = osp.join(out_dir, f'gain_v2_{regime}.png')
        os.makedirs(out_dir, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def pilot_lines(results_dir, bicubic=None):
    rs = load(results_dir, 'gain2pilot')
    if not rs:
        return ['Pilot: not run yet.']
    lines = ['| capacity | iterations | val PSNR (dB) | last-20 % gain | train seconds |', '|---|---|---|---|---|']
    for r in sorted(rs, key=lambda r: (r['capacity'], r['iters'])):
        lines.append(f"| {r['capacity']} | {r['iters']} | {r['val_psnr']:.3f} | {r['val_gain_last20']:+.3f} | "
                     f"{r['train_seconds'] or 0:.0f} |")
    if bicubic:
        lines += ['', f"Bicubic (MATLAB) on the same validation crops: {bicubic['val_psnr']:.3f} dB."]
    return lines


def load_bicubic(results_dir):
    path = osp.join(results_dir, BICUBIC)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def load_teacher_scores(path=TEACHER_SCORES):
    """The teacher's row for the cell tables, from the table `python -m dukd_arch.benchmark` wrote for RESULTS 0a
    (same four sets, same scoring); None when that file is absent or lacks a set."""
    if not osp.isfile(path):
        return None
    with open(path) as f:
        table = json.load(f)
    model, counts = table['models'][0], {s: table['sets'].get(s, {}).get('images') for s in BENCH_SETS}
    if any(s not in model['sets'] or not counts[s] for s in BENCH_SETS):
        return None
    score = sum(model['sets'][s]['psnr'] * counts[s] for s in BENCH_SETS) / sum(counts.values())  # per-image mean
    return {'label': f"{model['name']} teacher, {model['params'] / 1e3:.0f} k", 'sets': model['sets'], 'all': score}


def report(args):
    from bench_gain import write_between
    results = load(args.results)
    bicubic, teacher = load_bicubic(args.results), load_teacher_scores()
    planned = {make_run(*spec[:4], iters=spec[4]).name for spec in plan()}
    done = planned & {r['name'] for r in results}
    lines = [f'Generated by `python benchmarks/bench_gain_v2.py report` from `{args.results}/`: {len(done)} of the '
             f'protocol\'s {len(planned)} runs done ([protocol](gain_protocol_v2.md)).', '',
             headline(results, bicubic), '',
             '**Every cell at a glance** (over all 187 images; paired by seed: mean [95 % t-interval] (dB); each '
             'cell\'s own tables follow):', '']
    lines += summary_table(results, bicubic) + ['']
    forest = plot_cells(results, 'docs/img')
    if forest:
        lines += [f'![{osp.basename(forest)}](img/{osp.basename(forest)})', '']
    lines += ['**Convergence pilot** (scratch, seed 0, full corpus; validation crops):', '']
    lines += pilot_lines(args.results + '_pilot', bicubic) + ['']
    for cell in REPORT_CELLS:
        if not cell_runs(results, cell):
            continue
        lines += [f'**{cell_title(cell)}** (Y-PSNR / SSIM, border 4, EMA weights; mean ± std over seeds):', ''] + \
            cell_tables(results, cell, bicubic, teacher) + ['']
        table = per_image_table(results, cell)
        if table:
            lines += table + ['']
        table = imitation_tables(results, cell)
        if table:
            lines += [f'*Imitation, {cell_title(cell)}*: Y-PSNR of the student\'s output to PAN\'s output (border 4; '
                      'higher = closer to the teacher):', ''] + table + ['']
    for path in plot(results, 'docs/img'):
        lines += [f'![{osp.basename(path)}](img/{osp.basename(path)})', '']
    write_between('docs/RESULTS.md', 'gain-v2', '\n' + '\n'.join(lines) + '\n')
    write_between('README.md', 'gain-v2-headline', headline(results, bicubic))
    print('\n'.join(lines))


# ------------------------------------------------------------------------------------------------- args
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('command', choices=('data', 'labels', 'pilot', 'run', 'bicubic', 'report'))
    p.add_argument('--data-root', default=DATA)
    p.add_argument('--results', default=RESULTS)
    p.add_argument('--bench-root', default=None, help='folder holding Set5/ Set14/ BSD68/ Urban100/ (HR images)')
    p.add_argument('--teacher', default=None, help='PAN x4 checkpoint (default: the option file\'s)')
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--threads', type=int, default=1)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    if args.command == 'data':
        build_data(args)
    elif args.command == 'labels':
        labels(args)
    elif args.command == 'pilot':
        execute([('scratch', cap, 'full', 0, iters) for cap, iters in PILOT], args, pilot=True)
    elif args.command == 'run':
        execute(plan(), args)
    elif args.command == 'bicubic':
        if not args.bench_root:
            sys.exit('bicubic: give --bench-root DIR (a folder holding Set5/ Set14/ BSD68/ Urban100/)')
        score_bicubic(args)
    else:
        report(args)


if __name__ == '__main__':
    main()
