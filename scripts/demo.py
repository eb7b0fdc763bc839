"""The one-command demo (``make demo``): DUKD against output KD on real photos, on a CPU, with the shipped teacher.

1. builds datasets/demo from scikit-image's bundled colour photos (x4 MATLAB-bicubic LR, train / held-out);
2. uses the shipped reference teacher (dukd_arch/weights, SHA-256 checked); ``--train-teacher`` trains the small
   demo teacher (options/demo/train_teacher.yml) instead;
3. trains the 17 k-parameter student of the gain study three ways with the study's settings and iterations
   (options/gain, docs/gain_protocol.md): scratch, output KD and DUKD, on the training photos and DUKD variant
   that the study's validation-only rule selects (or --photos / --variant); KD and DUKD read the teacher's output
   on the real LR patches from a label store built here once per teacher;
4. tests bicubic, teacher and students on the held-out photos with test.py (PSNR / SSIM on Y, border 4);
5. prints DUKD - KD next to the study's paired 95 % interval for the same cell (from benchmarks/results/gain);
6. writes demo_output/: results.md (the table), side_by_side.png, psnr_vs_iter.png, logs/ and
   dukd_student/student.safetensors (for python -m dukd_arch.infer).

Re-running reuses finished runs with the same options; --force retrains everything.
"""
import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's dukd_arch first
sys.path.insert(1, osp.join(ROOT, 'benchmarks'))  # the gain study's definitions (gain_study.py)

import cv2  # noqa: E402
import yaml  # noqa: E402

import dukd_arch  # noqa: E402,F401  (basicsr import shim)
import gain_study  # noqa: E402
from dukd_arch.demo import figures, pipeline  # noqa: E402
from dukd_arch.demo.data import build_demo_set  # noqa: E402
from dukd_arch.demo.pipeline import Run  # noqa: E402
from dukd_arch.demo.progress import ProgressBoard  # noqa: E402

CAPACITY = gain_study.DEMO_CAPACITY
DECODED_CACHE_MIB = 256  # the demo's training photo and its labels decoded: a few MiB
TEST_OPTS = {'scratch': 'options/demo/test_student_scratch.yml', 'kd': 'options/demo/test_student_kd.yml'}
LABELS = {'scratch': 'student from scratch', 'kd': 'output KD'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--force', action='store_true', help='rebuild the data and retrain every run')
    p.add_argument('--force-students', action='store_true', help='retrain the students only')
    p.add_argument('--train-teacher', action='store_true',
                   help='train the small demo teacher (options/demo/train_teacher.yml) instead of using the shipped one')
    p.add_argument('--teacher-iters', type=int, help='with --train-teacher: its iterations (default: the option file)')
    p.add_argument('--student-iters', type=int,
                   help=f'student iterations (default: the study\'s {gain_study.ITERS[CAPACITY]} for this capacity)')
    p.add_argument('--photos', choices=list(gain_study.PHOTO_SETS),
                   help='training photos: all six, two or one (default: the study\'s validation-selected cell)')
    p.add_argument('--variant', choices=list(gain_study.DUKD_VARIANTS),
                   help='dukd (the paper\'s LCR) or dukd_geo (LCR without colour inversion); default: selected')
    p.add_argument('--seed', type=int, default=0, help='student seed (default: %(default)s)')
    p.add_argument('--jobs', type=int, default=min(2, os.cpu_count() or 1),
                   help='students trained side by side (default: %(default)s, one per core up to 2)')
    p.add_argument('--threads', type=int,
                   help='torch CPU threads per run (OMP_NUM_THREADS; default: 1 when --jobs > 1, else torch\'s)')
    p.add_argument('--results', default=gain_study.RESULTS, help='the study\'s per-run results (default: %(default)s)')
    p.add_argument('--out', default='demo_output', help='output folder (default: %(default)s)')
    args = p.parse_args(argv)
    if args.teacher_iters and not args.train_teacher:
        p.error('--teacher-iters only applies with --train-teacher (the default teacher is the shipped one)')
    if args.threads is None and args.jobs > 1:
        args.threads = 1
    return args


def demo_teacher(args):
    """(label, Run or None, test option file, changes that point the students at it)."""
    if not args.train_teacher:
        return 'the shipped reference teacher (0.62 M parameters)', None, 'options/demo/test_reference_teacher.yml', {}
    changes = pipeline.iteration_changes(args.teacher_iters) if args.teacher_iters else {}
    run = Run('the demo teacher, trained here', 'options/demo/train_teacher.yml', 'demo_teacher', changes)
    net = run.options()['network_g']
    to_students = {**{f'network_t:{k}': v for k, v in net.items()},
                   'path:pretrain_network_t': run.weights, 'path:param_key_t': 'params_ema'}
    return run.label, run, 'options/demo/test_teacher.yml', to_students


def student_runs(args, variant, teacher_changes, teacher_tag):
    """The three students; KD and DUKD read the teacher's output on the real LR patches from a label store
    (``pipeline.teacher_labels``) instead of running the teacher on them: one teacher pass less per step; and
    keep their decoded images in memory (``decoded_cache_mib``)."""
    runs = {}
    for row in ('scratch', 'kd', variant):
        extra = dict(teacher_changes) if row != 'scratch' else {}
        runs[row] = gain_study.make_run(row, CAPACITY, args.photos, args.seed, 'datasets/demo/val',
                                        iters=args.student_iters, extra=extra, prefix='demo')
        if row != 'scratch':
            train = runs[row].options()['datasets']['train']
            runs[row].changes['datasets:train:dataroot_teacher'] = osp.join(
                osp.dirname(train['dataroot_lq']), f'teacher_labels_{teacher_tag}.lmdb')
            if train['type'] == 'PairedImageDataset':  # BasicSR's reads no labels; this one is it plus the labels
                runs[row].changes['datasets:train:type'] = 'TeacherLabelPairedImageDataset'
            runs[row].speed['datasets:train:decoded_cache_mib'] = DECODED_CACHE_MIB  # same batches, decoded once
    return runs


def train_all(runs, args, log_dir, timings):
    """Train the students, the longest first, ``args.jobs`` at a time; one progress line per student (iteration,
    it/s, ETA, latest held-out PSNR) and the total ETA, at least every 30 s."""
    force = args.force or args.force_students
    order = sorted(runs.values(), key=lambda r: ('dukd' not in r.name, 'kd' not in r.name))
    board = ProgressBoard({run.label: run.total_iter() for run in order}, jobs=args.jobs)

    def one(run):
        board.start(run.label)
        try:
            timings[f'train {run.label}'] = pipeline.train(run, log_dir, force=force, threads=args.threads,
                                                           progress=False, report=board.reporter(run.label))
        except BaseException:
            board.finish(run.label, ok=False)
            raise
        board.finish(run.label)
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(one, order))
    finally:
        board.close()


def study_lines(results, photos, variant, demo_diff):
    """DUKD - KD of this run next to the study's paired test interval for the same cell, and the verdict."""
    name = gain_study.ROWS[variant][0]
    diffs = list(gain_study.paired(results, CAPACITY, photos, variant, 'kd').values())
    lines = [f'{name} - output KD, this run (seed {demo_diff[1]}, demo held-out photos): {demo_diff[0]:+.3f} dB',
             f'{name} - output KD, the gain study at this cell ({CAPACITY} student, '
             f'{gain_study.PHOTO_SETS[photos]} training photo(s); paired by seed on its held-out test photos, '
             f'mean [95 % t-interval]): {gain_study.fmt_interval(diffs)}']
    holds = []
    for cell_photos in gain_study.PHOTO_SETS:
        for v in gain_study.DUKD_VARIANTS:
            d = list(gain_study.paired(results, CAPACITY, cell_photos, v, 'kd').values())
            if len(d) >= 2:
                mean, half = gain_study.t_interval(d)
                holds.append((mean - half, cell_photos, v, len(d)))
    if not holds:
        lines.append('The study has fewer than two seeds in every cell so far: no interval, no verdict yet.')
        return lines
    lower, cell_photos, v, n = max(holds)
    where = f'{gain_study.PHOTO_SETS[cell_photos]} photo(s), {gain_study.ROWS[v][0]}, n={n}'
    if lower > 0:
        lines.append(f'The study finds DUKD > output KD with a 95 % interval above 0 at {CAPACITY} ({where}).')
    else:
        cells = len(gain_study.PHOTO_SETS) * len(gain_study.DUKD_VARIANTS)
        lines.append(f'No cell of the study at {CAPACITY} so far gives DUKD > output KD with a 95 % interval '
                     f'excluding 0; the closest is {where} (lower bound {lower:+.3f} dB; {len(holds)} of {cells} '
                     'cells have two or more seeds yet).')
    return lines


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    start = time.time()
    out = args.out
    log_dir = osp.join(out, 'logs')
    os.makedirs(log_dir, exist_ok=True)
    timings = {}

    t = time.time()
    manifest = build_demo_set('datasets/demo', force=args.force)
    timings['data'] = time.time() - t
    scale = manifest['settings']['scale']

    results = gain_study.load_results(args.results)
    selection = gain_study.select_demo_cell(results)
    args.photos = args.photos or selection['photos']
    variant = args.variant or selection['variant']
    chosen_by = 'chosen on the command line' if (args.photos != selection['photos'] or variant != selection['variant']) \
        else f"the gain study's validation-only rule, {selection['why']}"
    print(f"[demo] cell: {CAPACITY} student, {gain_study.PHOTO_SETS[args.photos]} training photo(s), "
          f"{gain_study.ROWS[variant][0]} ({chosen_by})")

    teacher_label, teacher_run, teacher_test, to_students = demo_teacher(args)
    if teacher_run is not None:
        timings['train teacher'] = pipeline.train(teacher_run, log_dir, force=args.force, threads=args.threads)
    runs = student_runs(args, variant, to_students, 'demo_teacher' if args.train_teacher else 'reference')
    store = runs['kd'].options()['datasets']['train']['dataroot_teacher']
    timings['teacher labels'] = pipeline.teacher_labels(runs['kd'], store, log_dir, threads=args.threads)
    for row, run in runs.items():
        run.label = LABELS.get(row, 'DUKD' if row == 'dukd' else gain_study.ROWS[row][0])
    train_all(runs, args, log_dir, timings)

    t = time.time()
    rows = {'bicubic': pipeline.bicubic_baseline('datasets/demo/val', scale, osp.join(out, 'bicubic'))}
    for row, run in runs.items():
        rows[run.label] = pipeline.test(run, TEST_OPTS.get(row, 'options/demo/test_student_dukd.yml'), log_dir,
                                        threads=args.threads)
    if teacher_run is None:
        with open(teacher_test) as f:
            shipped = yaml.safe_load(f)['path']['pretrain_network_g']
        rows['teacher'] = pipeline.test(Run(teacher_label, teacher_test, 'demo_reference_teacher'), teacher_test,
                                        log_dir, threads=args.threads, weights=shipped)
    else:
        rows['teacher'] = pipeline.test(teacher_run, teacher_test, log_dir, threads=args.threads)
    timings['evaluate'] = time.time() - t
    students = list(runs.values())
    dukd_label = students[-1].label
    # the DUKD student as one self-describing file: python -m dukd_arch.infer --checkpoint <it>
    from dukd_arch.export import main as export_main
    if export_main(['-opt', students[-1].option_file(), '--checkpoint', students[-1].weights,
                    '--out', osp.join(out, 'dukd_student'), '--safetensors']) != 0:
        raise RuntimeError(f'could not export {students[-1].weights}')

    stems = [osp.splitext(n)[0] for n in manifest['files']['val']]
    teacher_row = rows['teacher']
    for label, row in rows.items():
        if label != 'teacher':
            row['psnr_to_teacher'] = pipeline.fidelity_to(teacher_row['images'], teacher_row['suffix'], row['images'],
                                                          row['suffix'], stems, scale)
    curves = {run.label: pipeline.curve(run) for run in students}

    # ---- table
    kd, dukd = rows['output KD']['psnr'], rows[dukd_label]['psnr']
    lines = [
        f"Held-out photos: {', '.join(stems)} (x{scale}, PSNR/SSIM on Y, border {scale}). Teacher: {teacher_label}. "
        f"Students: {CAPACITY} parameters, {gain_study.PHOTO_SETS[args.photos]} training photo(s), "
        f"{students[0].total_iter()} iterations each, seed {args.seed} ({chosen_by}).",
        '',
        '| method | PSNR (dB) | SSIM | PSNR to teacher output (dB) |',
        '|---|---|---|---|',
    ]
    for label, row in rows.items():
        to_t = f"{row['psnr_to_teacher']:.2f}" if 'psnr_to_teacher' in row else '-'
        lines.append(f"| {label} | {row['psnr']:.2f} | {row['ssim']:.4f} | {to_t} |")
    lines += [''] + study_lines(results, args.photos, variant, (dukd - kd, args.seed)) + \
        [f"{dukd_label} - scratch, this run: {dukd - rows['student from scratch']['psnr']:+.3f} dB"]

    # ---- pictures
    panel_stem = stems[0]
    hr = cv2.imread(osp.join('datasets/demo/val/HR', f'{panel_stem}.png'))[..., ::-1]
    lr = cv2.imread(osp.join(f'datasets/demo/val/LR_bicubic/X{scale}', f'{panel_stem}.png'))[..., ::-1]
    size = min(128, hr.shape[0], hr.shape[1]) // scale * scale
    top, left = figures.most_textured_window(hr, size)
    top, left = top // scale * scale, left // scale * scale
    panels = [('LR (x4 nearest)', lr)]
    for label in ('bicubic', 'student from scratch', 'output KD', dukd_label, 'teacher'):
        row = rows[label]
        img = cv2.imread(osp.join(row['images'], f"{panel_stem}_{row['suffix']}.png"))[..., ::-1]
        crop_psnr = _crop_psnr(img, hr, top, left, size)
        panels.append((f'{label}\n{crop_psnr:.2f} dB (crop)', img))
    panels.append(('HR', hr))
    side_path = osp.join(out, 'side_by_side.png')
    figures.side_by_side(panels, side_path, (top, left, size), scale,
                         title=f'held-out photo "{panel_stem}", {size}x{size} HR crop')
    curve_path = osp.join(out, 'psnr_vs_iter.png')
    figures.psnr_curves(curves, curve_path, {'bicubic': rows['bicubic']['psnr'], 'teacher': rows['teacher']['psnr']},
                        title='held-out PSNR of the EMA student during training')

    timings['total'] = time.time() - start
    timing_lines = ['', 'Wall time (s): ' + ', '.join(
        f"{k} {'reused' if v is None else f'{v:.0f}'}" for k, v in timings.items()),
        f'Machine: {platform.platform()}, {os.cpu_count()} CPUs; {args.jobs} run(s) side by side, '
        f'threads per run: {args.threads or "torch default"}']
    report = '\n'.join(lines + timing_lines)
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write('# dukd demo results\n\n' + report + '\n\n![side by side](side_by_side.png)\n'
                '![PSNR vs iteration](psnr_vs_iter.png)\n')
    with open(osp.join(out, 'results.json'), 'w') as f:
        json.dump({'rows': rows, 'curves': curves, 'timings': timings, 'args': vars(args), 'variant': variant,
                   'selection': selection}, f, indent=1)
    print('\n' + report)
    print(f'\nWrote {out}/results.md, {side_path}, {curve_path}')
    return rows


def _crop_psnr(img, hr, top, left, size):
    from basicsr.metrics import calculate_psnr
    return calculate_psnr(img[top:top + size, left:left + size], hr[top:top + size, left:left + size], 0,
                          test_y_channel=True)


if __name__ == '__main__':
    main()
