"""The gain study's pieces: the shipped reference teacher (hash-checked) and a 2-iteration run of bench_gain.py."""
import importlib
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

import dukd_arch.io.shipped as shipped
from dukd_arch.ops import matlab_imresize
from dukd_arch.io.checkpoint import read_checkpoint
from dukd_arch.archs.teacher import build_teacher

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
TEACHER = 'reference_teacher_x4.safetensors'


def kd_options():
    with open(os.path.join(REPO, 'options', 'gain', 'train_student_kd.yml')) as f:
        return yaml.safe_load(f)


def test_shipped_teacher_loads_through_network_t_with_its_hash_checked():
    opt = kd_options()
    assert opt['path']['pretrain_network_t'] == f'dukd:{TEACHER}'
    assert shipped.sha256_file(os.path.join(shipped.WEIGHTS_DIR, TEACHER)) == shipped.SHIPPED[TEACHER]
    net = build_teacher(opt, torch.device('cpu'))
    assert not net.training and sum(p.numel() for p in net.parameters()) == 621_424
    # a trained x4 network: clearly better than bicubic on a photo it never saw (chelsea is not in its data)
    from skimage.data import chelsea
    hr = torch.from_numpy(chelsea()[100:228, 150:278].copy()).permute(2, 0, 1)[None].double() / 255
    lr = matlab_imresize(hr, 1 / 4).clamp(0, 1)
    with torch.no_grad():
        sr = net(lr.float()).double().clamp(0, 1)
    assert sr.shape == hr.shape
    bicubic = matlab_imresize(lr, 4).clamp(0, 1)
    psnr = lambda x: -10 * torch.log10(((x - hr)[..., 4:-4, 4:-4] ** 2).mean())  # noqa: E731
    assert psnr(sr) > psnr(bicubic) + 0.3, (psnr(sr), psnr(bicubic))  # measured: +0.49 dB (RGB)


@pytest.mark.parametrize('damage', ['flip_byte', 'truncate'])
def test_changed_or_truncated_shipped_teacher_is_refused(tmp_path, monkeypatch, damage):
    data = bytearray(open(os.path.join(shipped.WEIGHTS_DIR, TEACHER), 'rb').read())
    if damage == 'flip_byte':
        data[len(data) // 2] ^= 0x01  # a weight changes; the file still parses
    else:
        data = data[:len(data) - 1000]
    (tmp_path / TEACHER).write_bytes(bytes(data))
    monkeypatch.setattr(shipped, 'WEIGHTS_DIR', str(tmp_path))
    for path in (f'dukd:{TEACHER}', str(tmp_path / TEACHER)):
        with pytest.raises(ValueError) as err:
            read_checkpoint(path, what='checkpoint for network_t')
        msg = str(err.value)
        assert TEACHER in msg and shipped.SHIPPED[TEACHER] in msg and 'changed or truncated' in msg


def test_unknown_shipped_name_lists_what_ships():
    with pytest.raises(FileNotFoundError, match='reference_teacher_x4'):
        read_checkpoint('dukd:no_such_teacher.safetensors')


def fake_nature_photos(folder):
    """Twelve small textured JPEGs under the real photos' names, with the SHA256SUMS fetch_photos.py writes."""
    gain_data = _benchmark('gain_data')
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    names = gain_data.NATURE_TEACHER + gain_data.NATURE_VAL + gain_data.NATURE_TEST
    with open(os.path.join(folder, 'SHA256SUMS'), 'w') as sums:
        for i, name in enumerate(names):
            img = cv2.resize(rng.integers(0, 255, (60, 60, 3), dtype=np.uint8), (448, 400), interpolation=cv2.INTER_CUBIC)
            path = os.path.join(folder, f'{name}.jpg')
            cv2.imwrite(path, img)
            sums.write(f'{shipped.sha256_file(path)}  {name}.jpg\n')


def test_bench_gain_two_iterations_end_to_end(tmp_path):
    for rel in ('train.py', 'test.py', 'benchmarks/bench_gain.py', 'benchmarks/gain_diagnostics.py',
                'benchmarks/gain_study.py', 'benchmarks/gain_data.py'):
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        shutil.copy(os.path.join(REPO, rel), tmp_path / rel)
    shutil.copytree(os.path.join(REPO, 'options', 'gain'), tmp_path / 'options' / 'gain')
    fake_nature_photos(str(tmp_path / 'photos'))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': REPO}
    base = [sys.executable, 'benchmarks/bench_gain.py']

    def run(*args):
        proc = subprocess.run(base + list(args), cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    run('data', '--photos-dir', 'photos')
    assert json.loads((tmp_path / 'datasets' / 'gain' / 'manifest.json').read_text())['files']['test']
    run('run', '--iters', '2', '--only', 'scratch', 'kd', 'dukd', '--photos', 'one', '--seeds', '0', '1',
        '--jobs', '2')
    results = sorted((tmp_path / 'benchmarks' / 'results' / 'gain').glob('*.json'))
    assert len(results) == 6
    for path in results:
        r = json.loads(path.read_text())
        assert r['iters'] == 2 and r['photos'] == 'one' and r['capacity'] == '17k'
        assert 10 < r['test']['psnr'] < 60 and r['val_curve'] and r['channels_last'] is False
    # a second call finds every run done and trains nothing
    assert 'train ' not in run('run', '--iters', '2', '--only', 'scratch', 'kd', 'dukd', '--photos', 'one',
                               '--seeds', '0', '1')
    out = run('report')
    report = (tmp_path / 'docs' / 'RESULTS.md').read_text()  # no markers there: the whole file
    assert 'DUKD − output KD' in report and 'n=2' in report and report.strip() in out.replace('\r', '')
    assert 'Teacher (dukd:reference_teacher_x4.safetensors)' in report and '0.5 dB requirement' in report
    assert '6 of the protocol\'s 77 runs done' in report and 'Not run yet (71,' in report
    assert 'The demo\'s cell' in report and 'Post-hoc runs (protocol section 9' in report and '0 of 12 done' in report
    assert (tmp_path / 'docs' / 'img' / 'gain_photos.png').stat().st_size > 0
    # the post-hoc diagnostics re-score every finished run's weights to its committed score
    proc = subprocess.run([sys.executable, 'benchmarks/gain_diagnostics.py', '--patches', '3'], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    diag = json.loads((tmp_path / 'benchmarks' / 'results' / 'gain_diagnostics.json').read_text())
    assert len(diag['runs']) == 6 and max(abs(e['rescore_error']) for e in diag['runs'].values()) < 1e-3
    assert all('l_pix' in e['losses'] for e in diag['runs'].values())
    assert set(diag['runs']['gain_dukd_17k_one_s0']['losses']) >= {'l_kd', 'l_zoom_in', 'l_zoom_out_kd'}
    assert 'upcycling − output KD, per photo' in proc.stdout and 'zoom-out labels' in proc.stdout
    rerender = subprocess.run([sys.executable, 'benchmarks/gain_diagnostics.py', '--render-only'], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, env=env)
    assert rerender.returncode == 0 and rerender.stdout == proc.stdout, rerender.stderr[-3000:]
    # a later call scores only the runs retrained since (their 'finished' stamp changed)
    retrained = tmp_path / 'benchmarks' / 'results' / 'gain' / 'gain_kd_17k_one_s1.json'
    retrained.write_text(json.dumps({**json.loads(retrained.read_text()), 'finished': '2099-01-01 00:00:00'}))
    again = subprocess.run([sys.executable, 'benchmarks/gain_diagnostics.py', '--patches', '3'], cwd=tmp_path,
                           capture_output=True, text=True, timeout=900, env=env)
    assert again.returncode == 0 and '6 runs: 1 scored, 5 reused' in again.stderr, again.stderr[-3000:]
    assert (tmp_path / 'docs' / 'img' / 'gain_per_photo.png').stat().st_size > 0


# ------------------------------------------------------------------------------ statistics and demo rule
def _result(row, photos, seed, val, test, cap='17k'):
    return {'row': row, 'capacity': cap, 'photos': photos, 'seed': seed, 'val_psnr': val, 'test': {'psnr': test}}


def test_paired_differences_and_t_interval():
    study = _benchmark('gain_study')
    paired, t_interval = study.paired, study.t_interval
    results = [_result('kd', 'all', s, 30.0, 31.0 + s) for s in range(3)] + \
        [_result('dukd', 'all', s, 30.1, 31.0 + s + d) for s, d in zip(range(3), (0.1, 0.2, 0.3))] + \
        [_result('dukd', 'all', 7, 30.1, 40.0)]  # no KD partner: not paired
    diffs = paired(results, '17k', 'all', 'dukd', 'kd')
    assert list(diffs) == [0, 1, 2] and np.allclose(list(diffs.values()), [0.1, 0.2, 0.3])
    mean, half = t_interval(list(diffs.values()))
    assert mean == pytest.approx(0.2) and half == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-5)
    assert t_interval([0.5]) == (0.5, None)


def test_headline_states_each_photo_regime_and_the_larger_students():
    headline = _benchmark('gain_study').headline
    results = [_result('dukd', 'one', s, 0, 30.5 + 0.1 * s) for s in range(3)]
    results += [_result('kd', 'one', s, 0, 30.0) for s in range(3)]
    results += [_result('dukd', 'all', 0, 0, 29.0, cap='70k'), _result('kd', 'all', 0, 0, 29.25, cap='70k')]
    for i, r in enumerate(results):
        r['name'] = f'run{i}'
    text = headline(results, [f'run{i}' for i in range(10)])
    assert text.startswith('Gain study so far (8 of 10 runs;')
    assert '+0.60 dB [+0.35, +0.85] (n=3) with 1 training photo(s)' in text
    assert 'its 95 % interval is above 0 with 1 training photo(s)' in text
    assert text.endswith('larger students trained on all 6 photos score -0.25 dB (n=1) at 70 k.')
    assert 'with 2' not in text and '251 k' not in text  # cells without pairs are left out
    assert headline(results, [f'run{i}' for i in range(8)]).startswith('Gain study (all 8 protocol runs; paired')


def test_study_layout_rule_keeps_the_stamps_of_runs_started_before_it():
    """Protocol section 9: NHWC for runs with a teacher, except the 17k seeds 0-2 (started in the default
    layout: their stamps, and so their resumption, must not change); never for scratch (SRModel ignores it)."""
    study = _benchmark('gain_study')
    ROWS, make_run = study.ROWS, study.make_run
    for row in ROWS:
        for seed in (0, 1, 2):
            assert 'train:channels_last' not in make_run(row, '17k', 'all', seed, 'v').stamp()['changes']
    assert make_run('dukd', '70k', 'all', 0, 'v').options()['train']['channels_last'] is True
    assert make_run('kd', '17k', 'all', 3, 'v').options()['train']['channels_last'] is True
    assert 'channels_last' not in make_run('scratch', '251k', 'all', 1, 'v').options()['train']
    assert make_run('dukd', '17k', 'one', 0, 'v', prefix='demo').options()['train']['channels_last'] is True


def test_demo_cell_is_chosen_on_validation_only_by_the_largest_lower_bound():
    select_demo_cell = _benchmark('gain_study').select_demo_cell
    results = []
    # 'two' + dukd: larger mean but noisy; 'one' + dukd_geo: smaller, steady gain -> larger lower bound
    val_gain = {('all', 'dukd'): (-0.3, -0.2, -0.4), ('all', 'dukd_geo'): (-0.1, -0.2, 0.0),
                ('two', 'dukd'): (0.9, -0.5, 0.6), ('two', 'dukd_geo'): (0.0, 0.1, -0.1),
                ('one', 'dukd'): (0.1, 0.0, 0.2), ('one', 'dukd_geo'): (0.2, 0.25, 0.3)}
    for (photos, variant), gains in val_gain.items():
        for seed, g in enumerate(gains):
            results.append(_result(variant, photos, seed, 30 + g, 30.0))
    for photos in ('all', 'two', 'one'):
        results += [_result('kd', photos, s, 30.0, 30.0) for s in range(3)]
    chosen = select_demo_cell(results)
    assert (chosen['photos'], chosen['variant'], chosen['final']) == ('one', 'dukd_geo', True)
    # test scores never enter the choice
    for r in results:
        r['test']['psnr'] = 50.0 if (r['photos'], r['row']) == ('all', 'dukd') else 20.0
    assert select_demo_cell(results)['photos'] == 'one'
    # a missing seed makes the choice provisional
    partial = [r for r in results if not (r['photos'] == 'all' and r['row'] == 'dukd' and r['seed'] == 2)]
    assert select_demo_cell(partial)['final'] is False


def _benchmark(name):
    """A module of benchmarks/ (the study's code is not part of the package)."""
    sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_report_rewrites_only_between_its_markers(tmp_path):
    bench_gain = _benchmark('bench_gain')
    readme = tmp_path / 'README.md'
    readme.write_text('# x\nintro <!-- gain-headline -->old<!-- /gain-headline --> (more)\n\nbody\n')
    bench_gain.write_between(str(readme), 'gain-headline', 'Gain study so far: new.')
    assert readme.read_text() == '# x\nintro <!-- gain-headline -->Gain study so far: new.<!-- /gain-headline --> ' \
        '(more)\n\nbody\n'
    text = open(os.path.join(REPO, 'README.md')).read()
    assert text.index('<!-- gain-headline -->') < text.index('## Quick start')  # the first paragraph carries it


def test_report_plots_single_terms_only_in_the_cells_that_ran_them(tmp_path):
    bench_gain = _benchmark('bench_gain')
    results = [_result(row, 'all', s, 30.0, 31.0) for row in ('kd', 'dukd', 'zoom_out') for s in range(2)]
    results += [_result(row, 'one', s, 30.0, 31.0, cap='70k') for row in ('kd', 'dukd') for s in range(2)]
    files = {f.file: f for f in bench_gain.figures(results)}
    assert files['gain_terms.png'].cells == [('17k', 'all')] and not files['gain_terms.png'].joined
    assert 'gain_terms.png' not in {f.file for f in bench_gain.figures(results[:2] + results[-4:])}
    assert {p.rsplit('/', 1)[-1] for p in bench_gain.plot(results, str(tmp_path))} == set(files)
