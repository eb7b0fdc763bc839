"""Study v2 (docs/gain_protocol_v2.md): its runs' options, its corpus split and its statistics."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import bench_gain  # noqa: E402
import bench_gain_v2 as v2  # noqa: E402
import gain_v2_diagnostics as diagnostics  # noqa: E402
from dukd_arch.options import validate_options  # noqa: E402


def test_every_planned_run_has_valid_options_in_the_published_shape(monkeypatch):
    monkeypatch.chdir(ROOT)
    specs = v2.plan()
    assert len(specs) == 60 and specs[:12] == [(row, '17k', 'full', s, None) for s in (0, 1, 2) for row in v2.ROWS]
    # the long cell (section 9) runs after the small regime's seed 0, the runs in flight when it was added
    assert specs[12:16] == [(row, '17k', 'small', 0, None) for row in v2.ROWS]
    assert specs[16:28] == [(row, '17k', 'full', s, 4000) for s in (0, 1, 2) for row in v2.ROWS]
    names = [v2.make_run(*spec[:4], iters=spec[4]).name for spec in specs]
    assert len(set(names)) == 60 and names[16] == 'gain2_scratch_17k_full_s0_it4000'
    for row, cap, regime, seed, iters in specs:
        opt = v2.make_run(row, cap, regime, seed, iters=iters).options()
        validate_options(opt, source=f'{row} {cap} {regime}')
        train = opt['datasets']['train']
        assert (train['gt_size'], train['batch_size_per_gpu'], opt['train']['ema_decay']) == (192, 16, 0.999)
        assert opt['manual_seed'] == seed and opt['train']['total_iter'] == (iters or v2.ITERS[cap])
        assert opt['network_g']['num_feat'] == v2.CAPACITIES[cap][0]
        assert train['dataroot_gt'].startswith(f'datasets/gain_v2/{v2.REGIMES[regime]}/')
        if row == 'scratch':
            assert 'network_t' not in opt and 'dataroot_teacher' not in train
        else:
            assert opt['network_t']['type'] == 'PAN'
            assert train['dataroot_teacher'] == f'datasets/gain_v2/{v2.REGIMES[regime]}/teacher_PAN_x4.lmdb'
    dukd = v2.make_run('dukd_edsr', '17k', 'full', 0).options()['train']
    plain = v2.make_run('dukd_no_zoom_out', '17k', 'full', 0).options()['train']
    assert dukd['pixel_opt']['loss_weight'] == plain['pixel_opt']['loss_weight'] == 5.0
    assert dukd['dukd_opt']['zoom_out'] and plain['dukd_opt']['zoom_out'] is False
    assert {k: v for k, v in dukd['dukd_opt'].items() if k != 'zoom_out'} == \
        {k: v for k, v in plain['dukd_opt'].items() if k != 'zoom_out'}  # they differ in zoom-out only


def test_split_is_fixed_and_disjoint():
    photos = [('s', f'p{i:02d}.jpg', '', '') for i in range(37)]
    roles = v2.split(photos)
    # pinned: the study's roles were drawn once (protocol v2 section 2); a change of RNG or rule would move them
    assert sorted(p for p, r in roles.items() if r == 'val') == ['p02.jpg', 'p04.jpg', 'p18.jpg', 'p20.jpg', 'p34.jpg']
    assert sorted(p for p, r in roles.items() if r == 'small') == ['p03.jpg', 'p35.jpg']
    counts = {r: list(roles.values()).count(r) for r in ('val', 'small', 'train')}
    assert counts == {'val': 5, 'small': 2, 'train': 30}


def test_reduce_to_div2k_size():
    img = np.random.default_rng(0).integers(0, 256, (1275, 2553, 3), dtype=np.uint8)
    out = v2.reduce_to_div2k(img)
    assert out.dtype == np.uint8 and max(out.shape[:2]) <= 2040 and out.shape[0] % 4 == out.shape[1] % 4 == 0
    small = img[:403, :601]
    assert v2.reduce_to_div2k(small).shape == (400, 600, 3)  # smaller photos are only cropped to x4


def _fake(row, seed, offset, cap='17k', regime='full', iters=2000):
    images = {f'{s}/im{i}': [30.0 + offset + 0.01 * i, 0.8] for s in v2.BENCH_SETS for i in range(3)}
    sets = {s: {'psnr': 30.0 + offset + 0.01, 'ssim': 0.8} for s in v2.BENCH_SETS}
    return {'name': f'gain2_{row}_{cap}_{regime}_s{seed}' + ('' if iters == 2000 else f'_it{iters}'), 'row': row,
            'capacity': cap, 'regime': regime, 'seed': seed, 'iters': iters, 'converged': True, 'val_psnr': 30.0,
            'test': {'sets': sets, 'images': images}}


def test_paired_differences_and_headline(tmp_path):
    gains = {0: 0.10, 1: 0.20, 2: 0.30}
    results = [_fake('kd', s, 0.0) for s in gains] + [_fake('dukd_edsr', s, g) for s, g in gains.items()]
    assert v2.paired(results, v2.DECIDING, 'dukd_edsr', 'kd', v2.ALL) == pytest.approx([0.1, 0.2, 0.3])
    assert v2.paired(results, ('17k', 'small', 2000), 'dukd_edsr', 'kd', v2.ALL) == []
    sentence = v2.headline(results)
    # mean 0.20, t(0.975, 2) = 4.303, sd 0.1 / sqrt(3): half-width 0.248
    assert '+0.20 dB [-0.05, +0.45]' in sentence and 'which includes 0' in sentence and '3 of 3 seeds' in sentence
    assert 'no zoom-out' not in sentence  # that row has no runs yet
    results += [_fake('dukd_no_zoom_out', s, -0.05 + 0.01 * s) for s in gains]
    sentence = v2.headline(results)
    # no zoom-out - KD: -0.05, -0.04, -0.03 (mean -0.04, half-width 0.025); zoom-out term: 0.15, 0.24, 0.33
    assert 'no zoom-out) minus output KD scores -0.04 dB [-0.06, -0.02] (95 % t-interval, below 0)' in sentence
    assert 'zoom-out term is worth +0.24 dB [+0.02, +0.46] (95 % t-interval, above 0)' in sentence
    table = '\n'.join(v2.cell_tables(results, v2.DECIDING))
    assert '| DUKD, EDSR x4 setting (zoom-in, zoom-out, LCR) − output KD | +0.200 [-0.048, +0.448] (n=3)' in table
    assert 'The same cell at 4000 iterations' in sentence and 'has 0 of its 12 runs scored so far' in sentence
    # students below bicubic are named as such, in the headline and as a reference row of the table
    bicubic = {'all': 31.0, 'sets': {s: {'psnr': 31.0, 'ssim': 0.9} for s in v2.BENCH_SETS}}
    sentence = v2.headline(results, bicubic)
    assert 'every row still below bicubic interpolation: 29.97-30.21 dB against 31.00' in sentence
    assert '| *bicubic (MATLAB), for reference* | 31.000 / 0.9000 |' in '\n'.join(
        v2.cell_tables(results, v2.DECIDING, bicubic))
    # the teacher's row comes from dukd_arch.benchmark's table; its all-images score weighs each set by its size
    sizes = dict(zip(v2.BENCH_SETS, (1, 1, 2, 4)))
    (tmp_path / 't.json').write_text(json.dumps({
        'sets': {s: {'images': n} for s, n in sizes.items()},
        'models': [{'name': 'PAN', 'params': 272419, 'sets': {s: {'psnr': 30.0 + n, 'ssim': 0.5} for s, n in
                                                            sizes.items()}}]}))
    teacher = v2.load_teacher_scores(str(tmp_path / 't.json'))
    assert teacher['all'] == pytest.approx((31 + 31 + 2 * 32 + 4 * 34) / 8)
    assert '| *PAN teacher, 272 k, for reference* | 31.000 / 0.5000 | 31.000 / 0.5000 | 32.000 / 0.5000 | ' \
        '34.000 / 0.5000 | 32.750 | - | - |' in '\n'.join(v2.cell_tables(results, v2.DECIDING, bicubic, teacher))
    assert v2.load_teacher_scores(str(tmp_path / 'absent.json')) is None
    # the long cell is its own cell: its runs never pair with the 2000-iteration ones
    results += [_fake('kd', s, 1.5, iters=4000) for s in gains] + [_fake('dukd_edsr', s, 1.5 - g, iters=4000)
                                                                    for s, g in gains.items()]
    assert v2.paired(results, v2.DECIDING, 'dukd_edsr', 'kd', v2.ALL) == pytest.approx([0.1, 0.2, 0.3])
    assert v2.paired(results, v2.LONG, 'dukd_edsr', 'kd', v2.ALL) == pytest.approx([-0.1, -0.2, -0.3])
    sentence = v2.headline(results, bicubic)
    # with all its seeds in, the long cell (students above bicubic) leads and the 2000-iteration cell follows
    assert sentence.startswith('Study v2 (public PAN x4 teacher reproducing its published table; 17 k-parameter '
                               'students; LR patch 48; 4000 iterations; every row above bicubic interpolation: '
                               '31.31-31.51 dB against 31.00; 3 of 3 seeds), over the 187 images')
    assert ('3 of 3 seeds), over the 187 images of Set5, Set14, BSD68 and Urban100: DUKD with the published EDSR x4 '
            'setting minus output KD scores -0.20 dB [-0.45, +0.05]') in sentence
    assert (' At 2000 iterations (every row still below bicubic interpolation: 29.97-30.21 dB against 31.00; 3 of 3 '
            'seeds): DUKD with the published EDSR x4 setting minus output KD scores +0.20 dB') in sentence
    assert 'minus scratch' not in sentence  # no scratch runs in the long cell yet
    results += [_fake('scratch', s, 1.6 - 0.01 * s, iters=4000) for s in gains]  # KD - scratch: -0.10, -0.09, -0.08
    assert 'output KD minus scratch scores -0.09 dB [-0.11, -0.07] (95 % t-interval, below 0).' in \
        v2.headline(results, bicubic)
    for r in results:
        with open(tmp_path / f"{r['name']}.json", 'w') as f:
            json.dump(r, f)
    assert len(v2.load(str(tmp_path))) == 18


def test_the_cells_at_a_glance_pair_each_cell_on_its_own(tmp_path):
    gains = {0: 0.10, 1: 0.20, 2: 0.30}
    results = [_fake('kd', s, 0.0) for s in gains] + [_fake('dukd_edsr', s, g) for s, g in gains.items()]
    results += [_fake('kd', s, 1.0, cap='70k') for s in gains] + [_fake('dukd_edsr', 0, 0.9, cap='70k')]
    bicubic = {'all': 30.1, 'sets': {}}
    table = v2.summary_table(results, bicubic)
    assert table[0].startswith('| cell | rows (dB) | DUKD (EDSR setting) − KD | DUKD (no zoom-out) − KD |')
    rows = {line.split(' | ')[0][2:]: line for line in table[2:]}
    assert list(rows) == ['17k student, full corpus, 2000 iterations', '70k student, full corpus, 2000 iterations']
    # 17k: rows 30.01 and 30.21 over the fake images, on both sides of bicubic; DUKD - KD +0.2 [-0.048, +0.448]
    assert '| 30.01-30.21 (around bicubic) | +0.200 [-0.048, +0.448] (n=3) | - |' in rows[
        '17k student, full corpus, 2000 iterations']
    assert '| 30.91-31.01 (above bicubic) | -0.100 (n=1) |' in rows['70k student, full corpus, 2000 iterations']
    path = v2.plot_cells(results, str(tmp_path))
    assert path.endswith('gain_v2_cells.png') and os.path.getsize(path) > 0
    assert v2.plot_cells(results[:3], str(tmp_path / 'none')) is None  # no comparison with two seeds yet


def test_pilot_and_study_results_are_read_apart(tmp_path):
    study, pilot = tmp_path / 'gain_v2', tmp_path / 'gain_v2_pilot'
    study.mkdir()
    pilot.mkdir()
    (study / 'gain2_kd_17k_full_s0.json').write_text(json.dumps(_fake('kd', 0, 0.0)))
    run = {'name': 'gain2pilot_scratch_17k_full_s0_it1000', 'capacity': '17k', 'iters': 1000, 'val_psnr': 30.012,
           'val_gain_last20': 0.473, 'train_seconds': 300.0}
    (pilot / f"{run['name']}.json").write_text(json.dumps(run))
    assert [r['name'] for r in v2.load(str(study))] == ['gain2_kd_17k_full_s0']
    assert v2.load(str(pilot)) == []  # pilot runs never count as study runs
    assert '| 17k | 1000 | 30.012 | +0.473 | 300 |' in v2.pilot_lines(str(pilot))


def test_imitation_rows_compare_over_the_seeds_every_row_has():
    results = []
    for seed, (kd, dukd) in enumerate([(36.0, 37.0), (36.2, 37.4), (None, 38.0)]):
        for row, value in (('kd', kd), ('dukd_edsr', dukd)):
            r = _fake(row, seed, 0.0)
            if value is not None:  # a run scored before the study computed imitation has none
                r['test']['imitation'] = {'Set5': value, 'Set14': value - 1.0}
            results.append(r)
    table = '\n'.join(v2.imitation_tables(results, v2.DECIDING))
    assert '| output KD | 36.100 ± 0.141 | 35.100 ± 0.141 | 0, 1 |' in table
    # DUKD has seed 2 too, but a row mean over other seeds than KD's would not compare with it
    assert '| DUKD, EDSR x4 setting (zoom-in, zoom-out, LCR) | 37.200 ± 0.283 | 36.200 ± 0.283 | 0, 1 |' in table
    # paired over the two seeds where both runs have it: +1.0, +1.2
    assert '| DUKD, EDSR x4 setting (zoom-in, zoom-out, LCR) − output KD | +1.100 [' in table and '(n=2)' in table
    assert v2.imitation_tables(results, ('17k', 'small', 2000)) == []


def test_imitation_is_added_only_from_the_checkpoint_that_was_scored(tmp_path, monkeypatch, capsys):
    """The backfill re-scores a run's checkpoint; a checkpoint whose scores differ from the stored ones (a
    retrained or overwritten run) must not lend its imitation to the stored result."""
    from types import SimpleNamespace
    results = tmp_path / 'gain_v2'
    results.mkdir()
    stored = {s: _fake('kd', s, 0.0) for s in (0, 1, 2)}
    done = _fake('dukd_edsr', 0, 0.1)
    done['test']['imitation'] = {'Set5': 40.0, 'Set14': 39.0}
    for r in list(stored.values()) + [done]:
        (results / f"{r['name']}.json").write_text(json.dumps(r))
    weights = {0: tmp_path / 'w0.pth', 1: tmp_path / 'w1.pth'}  # seed 2's checkpoint is gone
    for w in weights.values():
        w.write_bytes(b'x')

    def make_run(row, cap, regime, seed, *args, **kwargs):
        assert row == 'kd', 'a run that has imitation is not re-scored'
        return SimpleNamespace(name=f'gain2_{row}_{cap}_{regime}_s{seed}', seed=seed,
                               weights=str(weights.get(seed, tmp_path / 'missing.pth')))

    def score(run, bench_root, threads, teacher, set_names):
        assert set_names == v2.IMITATION_SETS
        shift = 0.01 if run.seed == 1 else 0.0  # seed 1's checkpoint is not the one that was scored
        images = {k: [v[0] + shift, v[1]] for k, v in stored[run.seed]['test']['images'].items()
                  if k.split('/')[0] in set_names}
        return {'sets': {}, 'images': images, 'imitation': {'Set5': 41.0, 'Set14': 40.0}}

    monkeypatch.setattr(v2, 'make_run', make_run)
    monkeypatch.setattr(v2, 'score', score)
    diagnostics.add_imitation(diagnostics.parse_args(['imitation', '--results', str(results),
                                                      '--bench-root', str(tmp_path)]))
    after = {r['name']: r for r in v2.load(str(results))}
    assert after['gain2_kd_17k_full_s0']['test']['imitation'] == {'Set5': 41.0, 'Set14': 40.0}
    assert after['gain2_kd_17k_full_s0']['imitation_added']['retrained'] is False
    assert 'imitation' not in after['gain2_kd_17k_full_s1']['test']
    assert 'imitation' not in after['gain2_kd_17k_full_s2']['test']
    assert after['gain2_dukd_edsr_17k_full_s0']['test']['imitation'] == {'Set5': 40.0, 'Set14': 39.0}
    out = capsys.readouterr().out
    assert 'gain2_kd_17k_full_s1 (per-image PSNR differs by up to 0.0100 dB): not the scored checkpoint' in out
    assert 'gain2_kd_17k_full_s2: no checkpoint' in out and '--retrain' in out


def test_provenance_names_training_code_that_changed_before_a_run_was_scored(tmp_path, monkeypatch, capsys):
    """A JSON's `commit` is HEAD at scoring; the code a run trained with is HEAD when it started."""
    repo, results = tmp_path / 'repo', tmp_path / 'results'
    (repo / 'dukd_arch' / 'models').mkdir(parents=True)
    results.mkdir()
    git = ['git', '-C', str(repo), '-c', 'user.name=t', '-c', 'user.email=t@t']
    subprocess.run(git + ['init', '-q'], check=True)
    commits = []
    for files, when in (({'train.py': '1'}, '2026-12-01T10:00:00+00:00'),
                        ({'dukd_arch/models/m.py': '2', 'README.md': 'r'}, '2026-12-01T12:00:00+00:00')):
        for name, text in files.items():
            (repo / name).write_text(text)
        subprocess.run(git + ['add', '-A'], check=True)
        subprocess.run(git + ['commit', '-qm', 'c'], check=True, env={**os.environ, 'GIT_COMMITTER_DATE': when,
                                                                     'GIT_AUTHOR_DATE': when})
        commits.append(subprocess.run(git + ['rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip())
    runs = {'gain2_a': {'train_commit': commits[0]},  # recorded at its start
            'gain2_b': {'finished': '2026-12-01 13:00:00', 'train_seconds': 7200.0},  # dated: started at 11:00
            'gain2_c': {'finished': '2026-12-01 13:00:00', 'train_seconds': 60.0}}  # started after both commits
    for name, fields in runs.items():
        (results / f'{name}.json').write_text(json.dumps({'name': name, 'commit': commits[1], **fields}))
    monkeypatch.setattr(v2, 'ROOT', str(repo))
    diagnostics.provenance(diagnostics.parse_args(['provenance', '--results', str(results)]))
    out = capsys.readouterr().out
    assert f'| gain2_a | ? | {commits[0][:7]} | {commits[1][:7]} | models/m.py |' in out
    assert f'| gain2_b | ? | {commits[0][:7]} | {commits[1][:7]} | models/m.py |' in out
    assert f'| gain2_c | ? | {commits[1][:7]} | {commits[1][:7]} | - |' in out
    assert '2 of 3 runs: files of the training path changed' in out


def test_per_image_differences_average_the_seeds_both_rows_have():
    results = [_fake('kd', s, 0.0) for s in (0, 1)] + [_fake('dukd_edsr', s, 0.1 * (s + 1)) for s in (0, 1, 2)]
    results[-1]['test']['images']['Set5/im0'][0] = 99.0  # seed 2 has no KD twin: never counted
    results[2]['test']['images']['Set5/im0'][0] -= 0.5  # seed 0, one image: 0.1 - 0.5 = -0.4
    d = v2.per_image(results, v2.DECIDING, 'dukd_edsr', 'kd')
    assert len(d) == 12 and d['Set5/im0'] == pytest.approx((-0.4 + 0.2) / 2)
    assert d['Urban100/im2'] == pytest.approx(0.15)
    table = '\n'.join(v2.per_image_table(results, v2.DECIDING))
    assert '| DUKD, EDSR x4 setting (zoom-in, zoom-out, LCR) − output KD | 11 of 12 | +0.150 | -0.100 (Set5/im0) |' \
        in table
    assert v2.per_image_table(results, ('17k', 'small', 2000)) == []


def test_runner_trains_what_is_missing_with_a_progress_line_per_running_run(tmp_path, monkeypatch, capsys):
    """The study runner skips runs whose JSON exists, trains and scores the rest, writes one JSON each, and prints
    a line per running run (never silent for hours behind `nohup`)."""
    from dukd_arch.demo import pipeline
    monkeypatch.chdir(ROOT)
    results = tmp_path / 'gain_v2'
    results.mkdir()
    specs = v2.plan()[:3]
    done = _fake(specs[0][0], specs[0][3], 0.0)
    (results / f"{done['name']}.json").write_text(json.dumps(done))
    trained = []
    head = {'now': 'a' * 40}
    monkeypatch.setattr(bench_gain, 'git_commit', lambda: head['now'])

    def train(run, log_dir, threads=None, resume=False, progress=True, report=None):
        assert resume and not progress  # the board reports, not one tqdm bar per thread
        trained.append(run.name)
        head['now'] = 'b' * 40  # a commit lands while the run trains
        report(1000, '31.00')
        report(2000, '31.50')
        return 12.0
    monkeypatch.setattr(pipeline, 'train', train)
    monkeypatch.setattr(pipeline, 'curve', lambda run: [(1600, 31.4), (2000, 31.5)])
    monkeypatch.setattr(v2, 'teacher_outputs', lambda *a: {})
    monkeypatch.setattr(v2, 'score', lambda run, *a: {'sets': {}, 'imitation': {}, 'images': {}})
    args = v2.parse_args(['run', '--results', str(results), '--bench-root', str(tmp_path), '--jobs', '1'])
    out = v2.execute(specs, args)
    assert [r['name'] for r in out] == [v2.make_run(*s[:4]).name for s in specs]
    assert trained == [v2.make_run(*s[:4]).name for s in specs[1:]]  # the finished run is not trained again
    written = json.loads((results / f'{trained[0]}.json').read_text())
    assert written['iters'] == 2000 and written['val_psnr'] == 31.5 and abs(written['val_gain_last20'] - 0.1) < 1e-9
    assert (written['train_commit'], written['commit']) == ('a' * 40, 'b' * 40)  # trained by a's code, scored at b
    log = capsys.readouterr().out
    assert '[gain v2] 3 runs (2 to train)' in log
    running = [line.split() for line in log.splitlines() if line.startswith('  ')]
    assert [trained[0], '0/2000', 'it', 'starting'] in running  # printed as each run starts, then at most every 60 s
    assert log.rstrip().endswith('(not listed: 2 done)')


def test_git_commit_says_when_the_code_is_in_no_commit(tmp_path, monkeypatch):
    git = ['git', '-C', str(tmp_path), '-c', 'user.name=t', '-c', 'user.email=t@t']
    subprocess.run(git + ['init', '-q'], check=True)
    (tmp_path / 'a.py').write_text('x = 1\n')
    subprocess.run(git + ['add', 'a.py'], check=True)
    subprocess.run(git + ['commit', '-qm', 'a'], check=True)
    monkeypatch.setattr(bench_gain, 'ROOT', str(tmp_path))
    head = subprocess.run(git + ['rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
    assert bench_gain.git_commit() == head
    (tmp_path / 'untracked.json').write_text('{}')  # results not committed yet: the code is still HEAD's
    assert bench_gain.git_commit() == head
    (tmp_path / 'a.py').write_text('x = 2\n')
    assert bench_gain.git_commit() == f'{head}+dirty'


def test_bicubic_reference_averages_images_not_sets(tmp_path, monkeypatch):
    """The reference row must be comparable with the students' 'all 187' column: a mean over images."""
    import cv2
    from conftest import smooth_image
    from dukd_arch.benchmark import y_metrics
    rng = np.random.default_rng(3)
    bench, data = tmp_path / 'bench', tmp_path / 'data'
    for k, name in enumerate(v2.BENCH_SETS):
        (bench / name).mkdir(parents=True)
        for i in range(k + 1):  # sets of unequal size: the two means differ
            cv2.imwrite(str(bench / name / f'im{i}.png'), smooth_image(rng, 32 + 4 * i, 36))
    for sub in ('HR', 'LR_bicubic/X4'):
        (data / 'val' / sub).mkdir(parents=True)
    hr = smooth_image(rng, 48, 48)
    cv2.imwrite(str(data / 'val' / 'HR' / 'a.png'), hr)
    lr = cv2.resize(hr, (12, 12), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(data / 'val' / 'LR_bicubic' / 'X4' / 'a.png'), lr)
    monkeypatch.setattr(v2, '_SETS', {})  # the per-process cache of the real sets
    results = tmp_path / 'results'
    v2.score_bicubic(v2.parse_args(['bicubic', '--bench-root', str(bench), '--data-root', str(data),
                                    '--results', str(results)]))
    out = json.loads((results / v2.BICUBIC).read_text())
    per_image = [y_metrics(v2.bicubic_upscale(lr_, 4), hr_, 4)[0]
                 for _, items, _ in v2.benchmark_sets(str(bench)) for _, hr_, lr_ in items]
    assert out['images'] == len(per_image) == 10 and out['all'] == pytest.approx(np.mean(per_image))
    assert out['all'] != pytest.approx(np.mean([s['psnr'] for s in out['sets'].values()]))
    assert out['val_psnr'] == pytest.approx(y_metrics(v2.bicubic_upscale(lr, 4), hr, 4)[0]) and out['val_images'] == 1
    assert v2.load(str(results)) == []  # never read as a study run
