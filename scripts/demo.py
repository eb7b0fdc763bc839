"""The one-command demo (``make demo``): DUKD end to end on real photos, on a CPU, in about ten minutes.

1. builds datasets/demo from scikit-image's bundled colour photos (x4 MATLAB-bicubic LR, train / held-out);
2. trains the compact teacher (options/demo/train_teacher.yml) unless it exists;
3. trains one student three ways, same data / seed / iterations: scratch, output KD, DUKD;
4. tests bicubic, teacher and students on the held-out photos with test.py (PSNR / SSIM on Y, border 4);
5. writes demo_output/: results.md (the table), side_by_side.png, psnr_vs_iter.png, logs/.

Re-running reuses finished runs with the same options; --force retrains everything.
"""
import argparse
import json
import os
import platform
import sys
import time
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's dukd_arch first

import cv2  # noqa: E402

import dukd_arch  # noqa: E402,F401  (basicsr import shim)
from dukd_arch.demo import figures, pipeline  # noqa: E402
from dukd_arch.demo.data import build_demo_set  # noqa: E402
from dukd_arch.demo.pipeline import Run  # noqa: E402

STUDENTS = (('scratch', 'student from scratch'), ('kd', 'output KD'), ('dukd', 'DUKD'))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--force', action='store_true', help='rebuild the data and retrain the teacher and students')
    p.add_argument('--force-students', action='store_true', help='retrain the students only')
    p.add_argument('--teacher-iters', type=int, help='teacher iterations (default: the option file, 800)')
    p.add_argument('--student-iters', type=int, help='student iterations (default: the option file, 800)')
    p.add_argument('--seed', type=int, help='student seed (default: the option files, 0)')
    p.add_argument('--threads', type=int, help='torch CPU threads per run (OMP_NUM_THREADS); 1 is much faster on '
                   'a machine whose cores are already busy')
    p.add_argument('--out', default='demo_output', help='output folder (default: %(default)s)')
    return p.parse_args(argv)


def student_runs(args):
    runs = []
    for key, label in STUDENTS:
        changes = pipeline.iteration_changes(args.student_iters) if args.student_iters else {}
        name = f'demo_student_{key}'
        if args.seed is not None:
            changes['manual_seed'] = args.seed
            name += f'_seed{args.seed}'
        runs.append(Run(label, f'options/demo/train_student_{key}.yml', name, changes))
    return runs


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

    teacher = Run('teacher', 'options/demo/train_teacher.yml', 'demo_teacher',
                  pipeline.iteration_changes(args.teacher_iters) if args.teacher_iters else {})
    timings['train teacher'] = pipeline.train(teacher, log_dir, force=args.force, threads=args.threads)
    students = student_runs(args)
    for run in students:
        timings[f'train {run.label}'] = pipeline.train(run, log_dir, force=args.force or args.force_students,
                                                       threads=args.threads)

    t = time.time()
    rows = {'bicubic': pipeline.bicubic_baseline('datasets/demo/val', scale, osp.join(out, 'bicubic'))}
    for run, test_opt in zip(students, [f'options/demo/test_student_{k}.yml' for k, _ in STUDENTS]):
        rows[run.label] = pipeline.test(run, test_opt, log_dir, threads=args.threads)
    rows['teacher'] = pipeline.test(teacher, 'options/demo/test_teacher.yml', log_dir, threads=args.threads)
    timings['evaluate'] = time.time() - t

    stems = [osp.splitext(n)[0] for n in manifest['files']['val']]
    teacher_row = rows['teacher']
    for label, row in rows.items():
        if label != 'teacher':
            row['psnr_to_teacher'] = pipeline.fidelity_to(teacher_row['images'], teacher_row['suffix'], row['images'],
                                                          row['suffix'], stems, scale)
    curves = {run.label: pipeline.curve(run) for run in students}

    # ---- table
    kd, dukd = rows['output KD']['psnr'], rows['DUKD']['psnr']
    lines = [
        f"Held-out photos: {', '.join(stems)} (x{scale}, PSNR/SSIM on Y, border {scale}; "
        f"students: {students[0].total_iter()} iterations each, seed {args.seed if args.seed is not None else 0})",
        '',
        '| method | PSNR (dB) | SSIM | PSNR to teacher output (dB) |',
        '|---|---|---|---|',
    ]
    for label, row in rows.items():
        to_t = f"{row['psnr_to_teacher']:.2f}" if 'psnr_to_teacher' in row else '-'
        lines.append(f"| {label} | {row['psnr']:.2f} | {row['ssim']:.4f} | {to_t} |")
    lines += ['', f'DUKD - output KD: {dukd - kd:+.3f} dB; '
              f"DUKD - scratch: {dukd - rows['student from scratch']['psnr']:+.3f} dB"]

    # ---- pictures
    panel_stem = stems[0]
    hr = cv2.imread(osp.join('datasets/demo/val/HR', f'{panel_stem}.png'))[..., ::-1]
    lr = cv2.imread(osp.join(f'datasets/demo/val/LR_bicubic/X{scale}', f'{panel_stem}.png'))[..., ::-1]
    size = min(128, hr.shape[0], hr.shape[1]) // scale * scale
    top, left = figures.most_textured_window(hr, size)
    top, left = top // scale * scale, left // scale * scale
    panels = [('LR (x4 nearest)', lr)]
    for label in ('bicubic', 'student from scratch', 'output KD', 'DUKD', 'teacher'):
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
        f'Machine: {platform.platform()}, {os.cpu_count()} CPUs; threads per run: {args.threads or "torch default"}']
    report = '\n'.join(lines + timing_lines)
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write('# dukd demo results\n\n' + report + f'\n\n![side by side](side_by_side.png)\n'
                f'![PSNR vs iteration](psnr_vs_iter.png)\n')
    with open(osp.join(out, 'results.json'), 'w') as f:
        json.dump({'rows': rows, 'curves': curves, 'timings': timings, 'args': vars(args)}, f, indent=1)
    print('\n' + report)
    print(f'\nWrote {out}/results.md, {side_path}, {curve_path}')
    return rows


def _crop_psnr(img, hr, top, left, size):
    from basicsr.metrics import calculate_psnr
    return calculate_psnr(img[top:top + size, left:left + size], hr[top:top + size, left:left + size], 0,
                          test_y_channel=True)


if __name__ == '__main__':
    main()
