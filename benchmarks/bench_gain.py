"""The gain study: where does DUKD pay over output KD, and by how much? (docs/gain_protocol.md fixes the plan.)

Students of three capacities learn from the shipped reference teacher on all, two or one of the demo's six
training photos; every run trains through train.py, validates on the validation photos, and is scored once
on the held-out test photos (test.py, PSNR / SSIM on Y, border 4, EMA weights). Each finished run is saved
as one JSON file under ``benchmarks/results/gain/`` (commit them as they finish); a stopped run resumes from
its newest checkpoint. Two single-thread runs side by side use a 2-core CPU best (``--jobs 2 --threads 1``).

    python scripts/fetch_photos.py                          # once: the nature photographs (Debian package)
    python benchmarks/bench_gain.py data                    # datasets/gain (teacher / student / val / test)
    python benchmarks/bench_gain.py pilot                   # convergence pilot: scratch students, validation only
    python benchmarks/bench_gain.py run --jobs 2            # the protocol's runs, in its order (hours; resumable)
    python benchmarks/bench_gain.py report                  # docs/RESULTS.md section 0, docs/img/gain_*.png
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from os import path as osp
from typing import Callable, NamedTuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import yaml  # noqa: E402
from tqdm import tqdm  # noqa: E402

import dukd_arch  # noqa: E402,F401
from dukd_arch.demo import pipeline  # noqa: E402
from dukd_arch.demo.pipeline import Run  # noqa: E402
from gain_study import (CAPACITIES, ITERS, MAIN_ROWS, OPT_DIR, PHOTO_SETS, RESULTS,  # noqa: E402
                                      ROWS, fmt_interval, headline, load_results, make_run, paired, select_demo_cell,
                                      t_interval)
from dukd_arch.demo.runner import final_metrics, python_cmd, run_logged  # noqa: E402

PILOT_ITERS = (2000, 4000, 8000)


def plan():
    """The protocol's runs as (row, capacity, photos, seed), in the order they are run (most informative first)."""
    runs = []

    def add(rows, caps, photo_sets, seeds):
        for seed in seeds:
            for cap in caps:
                for photos in photo_sets:
                    for row in rows:
                        if (row, cap, photos, seed) not in runs:
                            runs.append((row, cap, photos, seed))

    add(MAIN_ROWS, ['17k'], ['all', 'two', 'one'], range(3))      # data regimes at the demo's capacity
    add(MAIN_ROWS, ['70k', '251k'], ['all'], range(3))             # capacity
    add(('no_lcr', 'zoom_in', 'zoom_out'), ['17k'], ['all'], range(3))  # per-term ablation
    add(MAIN_ROWS, ['17k'], ['all'], range(3, 5))                 # 5 seeds at the demo's capacity
    return runs


def post_hoc():
    """Runs added after results were seen (protocol section 9, dated): run after the protocol's, reported as
    post hoc, never counted among the protocol's runs. Zoom-in only and zoom-out only at 70k, where DUKD falls
    below output KD (which term does it?), then at 17k on one photo, where DUKD beats it (which term does it?)."""
    return [(row, cap, photos, seed) for cap, photos in (('70k', 'all'), ('17k', 'one'))
            for seed in range(3) for row in ('zoom_in', 'zoom_out')]


def convergence(curve, total):
    """Validation PSNR gain over the last 20 % of the iterations (the protocol's convergence rule: < 0.01 dB)."""
    if not curve:
        return None
    start = [v for it, v in curve if it <= 0.8 * total]
    return curve[-1][1] - (start[-1] if start else curve[0][1])


def git_commit():
    """HEAD, with ``+dirty`` when tracked files differ from it (that code is in no commit)."""
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', 'diff', '--quiet', 'HEAD'], cwd=ROOT, capture_output=True).returncode == 1
    except OSError:
        return None
    return f'{head}+dirty' if head and dirty else head


def score_on_test(run: Run, data_root: str, log_dir: str, threads, weights=None) -> dict:
    """test.py on the held-out test photos with the run's EMA weights (the one and only scoring of this run);
    ``weights``: a bare state dict instead (the shipped teacher)."""
    name = f'test_{run.name}'
    net = {k: v for k, v in run.changes.items() if k.startswith('network_g:')}
    opt_file = osp.join('experiments', '_derived_options', f'{name}.yml')
    with open(osp.join(OPT_DIR, 'test_student.yml')) as f:
        opt = yaml.safe_load(f)
    opt['name'] = name
    opt['path']['pretrain_network_g'] = weights or run.weights
    if weights:
        opt['path']['param_key_g'] = None
    opt['datasets']['test_1']['dataroot_gt'] = f'{data_root}/test/HR'
    opt['datasets']['test_1']['dataroot_lq'] = f'{data_root}/test/LR_bicubic/X4'
    for key, value in net.items():
        opt['network_g'][key.split(':', 1)[1]] = value
    os.makedirs(osp.dirname(opt_file), exist_ok=True)
    with open(opt_file, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    lines, _ = run_logged(python_cmd('test.py', opt_file), osp.join(log_dir, f'{name}.log'), f'test  {run.label}',
                          env=pipeline.subprocess_env(threads))
    metrics = final_metrics(lines)
    if 'psnr' not in metrics:
        raise RuntimeError(f'no PSNR in the test log of {run.name}; see {log_dir}/{name}.log')
    return {'psnr': metrics['psnr'], 'ssim': metrics.get('ssim')}


def run_and_result_file(spec, args, pilot=False):
    row, cap, photos, seed = spec[:4]
    iters = spec[4] if pilot else None
    extra = {'path:pretrain_network_t': args.teacher} if args.teacher and row != 'scratch' else {}
    run = make_run(row, cap, photos, seed, f'{args.data_root}/val', args.demo_root, iters, extra)
    return run, osp.join(args.results + ('_pilot' if pilot else ''), f'{run.name}.json')


def train_and_score(spec, args, log_dir, lock, pilot=False) -> dict:
    row, cap, photos, seed = spec[:4]
    run, out = run_and_result_file(spec, args, pilot)
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    seconds = pipeline.train(run, log_dir, threads=args.threads, resume=True, progress=args.jobs == 1)
    curve = pipeline.curve(run)
    total = run.total_iter()
    gain = convergence(curve, total)
    result = {
        'name': run.name, 'row': row, 'capacity': cap, 'photos': photos, 'seed': seed, 'iters': total,
        'val_curve': curve, 'val_psnr': curve[-1][1] if curve else None,
        'val_gain_last20': gain, 'converged': gain is not None and gain < 0.01,
        'train_seconds': seconds, 'threads': args.threads, 'channels_last': bool(run.changes.get('train:channels_last')),
        'machine': f'{platform.platform()}, {os.cpu_count()} CPUs',
        'commit': git_commit(), 'finished': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    if not pilot:
        result['test'] = score_on_test(run, args.data_root, log_dir, args.threads)
    with lock:
        os.makedirs(osp.dirname(out), exist_ok=True)
        with open(out + '.tmp', 'w') as f:
            json.dump(result, f, indent=1)
        os.replace(out + '.tmp', out)
        test = f", test {result['test']['psnr']:.3f} dB" if 'test' in result else ''
        print(f'[gain] done {run.name}: val {result["val_psnr"]} dB (last-20 % gain {gain:+.3f}){test}', flush=True)
    return result


def execute(specs, args, pilot=False):
    log_dir = osp.join('experiments', '_gain_logs')
    os.makedirs(log_dir, exist_ok=True)
    lock = threading.Lock()
    todo = [s for s in specs if not osp.isfile(run_and_result_file(s, args, pilot)[1])]
    print(f'[gain] {len(specs)} runs: {len(specs) - len(todo)} done, {len(todo)} to run, {args.jobs} at a time, '
          f'{args.threads} thread(s) each', flush=True)
    done = [train_and_score(s, args, log_dir, lock, pilot) for s in specs if s not in todo]  # read back
    if args.jobs == 1:
        return done + [train_and_score(s, args, log_dir, lock, pilot) for s in todo]
    # side by side: one bar over the runs (each run prints one line when it ends; its log is in log_dir)
    with ThreadPoolExecutor(args.jobs) as pool, tqdm(total=len(todo), desc='gain runs', unit='run') as bar:
        def one(spec):
            result = train_and_score(spec, args, log_dir, lock, pilot)
            bar.update(1)
            return result
        return done + list(pool.map(one, todo))


# ----------------------------------------------------------------------------------------------- report
def cell_table(results, cap, photos):
    lines = ['| row | test PSNR (dB), mean ± std | seeds | val PSNR (dB) | converged |', '|---|---|---|---|---|']
    for row in ROWS:
        rs = [r for r in results if r['row'] == row and r['capacity'] == cap and r['photos'] == photos and 'test' in r]
        if not rs:
            continue
        ps = [r['test']['psnr'] for r in rs]
        sd = f' ± {statistics.stdev(ps):.3f}' if len(ps) > 1 else ''
        conv = sum(r['converged'] for r in rs)
        lines.append(f"| {ROWS[row][0]} | {statistics.fmean(ps):.3f}{sd} | {len(rs)} | "
                     f"{statistics.fmean(r['val_psnr'] for r in rs):.3f} | {conv}/{len(rs)} |")
    diff_lines = []
    for a, b in (('dukd', 'kd'), ('dukd_geo', 'kd'), ('kd', 'scratch'), ('dukd', 'scratch'), ('no_lcr', 'kd'),
                 ('zoom_in', 'kd'), ('zoom_out', 'kd'), ('dukd_geo', 'dukd')):
        diffs = list(paired(results, cap, photos, a, b).values())
        if diffs:
            diff_lines.append(f'| {ROWS[a][0]} − {ROWS[b][0]} | {fmt_interval(diffs)} |')
    if diff_lines:
        lines += ['', '| paired difference (same seed) | mean [95 % t-interval] |', '|---|---|'] + diff_lines
    return lines


def draw_difference(ax, results, cells, a, b, colour, shift, line='-'):
    """One paired difference ``a - b`` over ``cells``: mean and t-interval per cell; one seed: hollow, no bar."""
    xs, means, halves, ns = [], [], [], []
    for i, (cap, photos) in enumerate(cells):
        diffs = list(paired(results, cap, photos, a, b).values())
        if diffs:
            mean, half = t_interval(diffs)
            xs.append(i + shift)
            means.append(mean)
            halves.append(half or 0.0)
            ns.append(len(diffs))
    if not xs:
        return
    ax.errorbar(xs, means, yerr=halves, fmt=line, color=colour, capsize=3, label=f'{ROWS[a][0]} − {ROWS[b][0]}')
    ax.scatter(xs, means, color=colour, zorder=3, facecolors=[colour if n > 1 else 'white' for n in ns])
    for x, m, n in zip(xs, means, ns):
        ax.annotate(f'n={n}', (x, m), textcoords='offset points', xytext=(4, 3), fontsize=6, color=colour)


class Figure(NamedTuple):
    cells: list  # (capacity, photos) along x
    tick: Callable  # (capacity, photos) -> x tick label
    xlabel: str
    file: str
    panels: tuple  # per panel: ((a, b), colour, x shift) for each paired difference a - b
    joined: bool = True  # x is ordered (capacity, photos): join a difference's points


def figures(results):
    main = ((('dukd', 'kd'), 'C0', -0.06), (('dukd_geo', 'kd'), 'C2', 0.06))
    kd = ((('kd', 'scratch'), 'C1', 0.0),)
    singles = (('dukd', 'C0'), ('no_lcr', 'C3'), ('zoom_in', 'C4'), ('zoom_out', 'C5'))
    terms = tuple(((row, 'kd'), colour, (i - 1.5) * 0.08) for i, (row, colour) in enumerate(singles))
    ablated = [(c, p) for c in CAPACITIES for p in PHOTO_SETS
               if any(paired(results, c, p, row, 'kd') for row in ('zoom_in', 'zoom_out'))]
    out = [Figure([(c, 'all') for c in CAPACITIES], lambda c, p: c, 'student parameters (all six photos)',
                  'gain_capacity.png', (main, kd)),
           Figure([('17k', p) for p in ('one', 'two', 'all')], lambda c, p: str(PHOTO_SETS[p]),
                  'training photos (17 k student)', 'gain_photos.png', (main, kd))]
    if ablated:  # which of DUKD's terms moves the student, in the cells where the single-term rows ran
        out.append(Figure(ablated, lambda c, p: f'{c}, {PHOTO_SETS[p]} photo(s)',
                          'student, training photos (single-term rows outside 17k, six photos: post hoc)',
                          'gain_terms.png', (terms,), joined=False))
    return out


def plot(results, out_dir):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for f in figures(results):
        # one panel per scale: KD - scratch swings by dB where DUKD - KD moves by tenths
        fig, axes = plt.subplots(1, len(f.panels), figsize=(9.5 if len(f.panels) > 1 else 7.5, 3.6), squeeze=False)
        for ax, pairs in zip(axes[0], f.panels):
            for (a, b), colour, shift in pairs:
                draw_difference(ax, results, f.cells, a, b, colour, shift, '-' if f.joined else 'none')
            ax.axhline(0, color='grey', lw=0.8)
            ax.set_xticks(range(len(f.cells)))
            ax.set_xlim(-0.5, len(f.cells) - 0.5)
            ax.set_xticklabels([f.tick(c, p) for c, p in f.cells])
            ax.set_xlabel(f.xlabel)
            ax.set_ylabel('test PSNR difference (dB)')
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.suptitle('paired by seed: mean and 95 % t-interval (hollow: one seed, no interval)', fontsize=8)
        fig.tight_layout()
        path = osp.join(out_dir, f.file)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def teacher_score(args) -> dict:
    """The teacher's test PSNR, scored once with the students' test options (kept next to the runs' results)."""
    out = args.results + '_teacher.json'
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    with open(osp.join(OPT_DIR, 'train_student_kd.yml')) as f:
        opt = yaml.safe_load(f)
    weights = args.teacher or opt['path']['pretrain_network_t']
    run = Run('teacher', osp.join(OPT_DIR, 'train_student_kd.yml'), 'gain_teacher',
              {f'network_g:{k}': v for k, v in opt['network_t'].items()})
    result = {'weights': weights, 'test': score_on_test(run, args.data_root, osp.join('experiments', '_gain_logs'),
                                                         args.threads, weights=weights), 'commit': git_commit()}
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def teacher_margin_lines(results, teacher) -> list:
    """The protocol's teacher requirement: >= 0.5 dB above the best converged scratch student on the test photos."""
    scratch = {}
    for r in results:
        if r['row'] == 'scratch' and r['converged'] and 'test' in r:
            scratch.setdefault((r['capacity'], r['photos']), []).append(r['test']['psnr'])
    if not scratch:
        return []
    (cap, photos), ps = max(scratch.items(), key=lambda kv: statistics.fmean(kv[1]))
    margin = teacher['test']['psnr'] - statistics.fmean(ps)
    return [f"Teacher ({teacher['weights']}): {teacher['test']['psnr']:.3f} dB on the test photos; the best converged "
            f"scratch student so far ({cap}, {PHOTO_SETS[photos]} photo(s), mean of {len(ps)}): "
            f"{statistics.fmean(ps):.3f} dB; margin {margin:+.3f} dB: the ≥ 0.5 dB requirement "
            f"{'holds' if margin >= 0.5 else 'does NOT hold'}.", '']


def write_between(path, name, text, create=False):
    """Put ``text`` between the ``<!-- name -->`` and ``<!-- /name -->`` markers of ``path``; a file without
    them is written whole when ``create`` (a report of its own), else left alone (a README without markers)."""
    start, end = f'<!-- {name} -->', f'<!-- /{name} -->'
    old = open(path).read() if osp.isfile(path) else ''
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + start + text + end + rest.split(end, 1)[1]
    elif create:
        new = text
    else:
        return
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        f.write(new)
    os.replace(path + '.tmp', path)


def report(args):
    results = load_results(args.results)
    planned = [make_run(*spec, f'{args.data_root}/val', args.demo_root).name for spec in plan()]
    done = {r['name'] for r in results}
    missing = [n for n in planned if n not in done]
    lines = [f'Generated by `python benchmarks/bench_gain.py report` from {len(results)} runs in `{args.results}/` '
             f'({len(planned) - len(missing)} of the protocol\'s {len(planned)} runs done).', '']
    sentence = headline(results, planned)
    lines += [sentence, ''] + teacher_margin_lines(results, teacher_score(args))
    for cap in CAPACITIES:
        for photos in PHOTO_SETS:
            if any(r['capacity'] == cap and r['photos'] == photos and 'test' in r for r in results):
                lines += [f'### {cap} student, {PHOTO_SETS[photos]} training photo(s), {ITERS[cap]} iterations', '']
                lines += cell_table(results, cap, photos) + ['']
    sel = select_demo_cell(results)
    lines += ['### The demo\'s cell (protocol section 8: validation PSNR only, seeds 0-2)', '',
              f"Selected: {PHOTO_SETS[sel['photos']]} training photo(s), {ROWS[sel['variant']][0]} ({sel['why']}).", '',
              '| photos | DUKD variant | val difference to KD: mean | lower 95 % bound | seeds |', '|---|---|---|---|---|']
    for c in sel['candidates']:
        lower = f"{c['val_lower']:+.3f}" if c['val_lower'] is not None else '-'
        lines.append(f"| {c['photos']} | {ROWS[c['variant']][0]} | {c['val_mean']:+.3f} | {lower} | {c['seeds']} |")
    lines.append('')
    if missing:
        lines += [f"Not run yet ({len(missing)}, in the protocol's order): {', '.join(missing)}.", '']
    extra = [make_run(*spec, f'{args.data_root}/val', args.demo_root).name for spec in post_hoc()]
    lines += [f"Post-hoc runs (protocol section 9; added after results were seen, run after the protocol's): "
              f"{sum(n in done for n in extra)} of {len(extra)} done ({', '.join(extra)}).", '']
    unconverged = [r['name'] for r in results if not r['converged']]
    lines.append(f"Runs failing the convergence rule (val gain ≥ 0.01 dB over the last 20 %): "
                 f"{', '.join(unconverged) if unconverged else 'none'}.")
    nhwc = [r['name'] for r in results if r.get('channels_last')]
    lines += ['', f"Runs trained in the NHWC layout (protocol section 9; fp32 rounding order only): "
                  f"{', '.join(nhwc) if nhwc else 'none yet'}."]
    if not args.no_plots:
        for p in plot(results, args.plots):
            lines.append(f'![{osp.basename(p)}]({osp.relpath(p, osp.dirname(args.report))})')
    write_between(args.report, 'gain-report', '\n' + '\n'.join(lines) + '\n', create=True)
    write_between('README.md', 'gain-headline', sentence)
    print('\n'.join(lines))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('command', choices=['data', 'pilot', 'run', 'report'])
    p.add_argument('--jobs', type=int, default=1, help='runs side by side (2 on a 2-core CPU)')
    p.add_argument('--threads', type=int, default=1, help='torch threads per run (default: %(default)s)')
    p.add_argument('--only', nargs='*', help='run only these rows (names in ROWS)')
    p.add_argument('--capacities', nargs='*', help='run only these capacities (names in CAPACITIES)')
    p.add_argument('--photos', nargs='*', help='run only these photo sets (all, two, one)')
    p.add_argument('--seeds', nargs='*', type=int, help='run only these seeds')
    p.add_argument('--limit', type=int, help='run at most this many of the planned runs (in plan order)')
    p.add_argument('--iters', type=int, help='override every run\'s iterations (smoke tests only)')
    p.add_argument('--data-root', default='datasets/gain', help='validation / test photos (default: %(default)s)')
    p.add_argument('--demo-root', default='datasets/demo', help='the students\' training photos (default: %(default)s)')
    p.add_argument('--photos-dir', default='datasets/photos/mate_nature')
    p.add_argument('--teacher', help='override path.pretrain_network_t (default: the shipped reference teacher)')
    p.add_argument('--results', default=RESULTS, help='folder of the per-run JSON files (default: %(default)s)')
    p.add_argument('--report', default='docs/RESULTS.md',
                   help='written between its gain-report markers, or whole if it has none (default: %(default)s)')
    p.add_argument('--plots', default='docs/img')
    p.add_argument('--no-plots', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    if args.command == 'data':
        from gain_data import build_gain_set
        build_gain_set(args.data_root, args.photos_dir, args.demo_root)
        return
    if args.command == 'report':
        report(args)
        return
    if args.iters:
        for cap in ITERS:
            ITERS[cap] = args.iters
    if args.command == 'pilot':
        specs = [('scratch', cap, 'all', 0, it) for it in PILOT_ITERS for cap in CAPACITIES]
        if args.iters:
            specs = [('scratch', cap, 'all', 0, args.iters) for cap in CAPACITIES]
        for r in execute(specs, args, pilot=True):
            print(f"{r['capacity']:>5s} {r['iters']:>5d} it: val {r['val_psnr']:.3f} dB, "
                  f"last-20 % gain {r['val_gain_last20']:+.4f} dB")
        return
    specs = [s for s in plan() + post_hoc() if (not args.only or s[0] in args.only)
             and (not args.capacities or s[1] in args.capacities) and (not args.photos or s[2] in args.photos)
             and (args.seeds is None or s[3] in args.seeds)]
    if args.limit:
        specs = specs[:args.limit]
    execute(specs, args)


if __name__ == '__main__':
    main()
