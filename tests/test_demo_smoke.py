"""README quick-start command 1 (`make demo` = scripts/demo.py) runs end to end, shortened to 2 iterations.

It runs in a copy of the entry points so a developer's real demo runs under experiments/ stay untouched.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


@pytest.mark.parametrize('extra', [[], ['--train-teacher', '--teacher-iters', '2', '--photos', 'one',
                                            '--variant', 'dukd_geo']], ids=['shipped_teacher', 'trained_teacher'])
def test_demo_pipeline_end_to_end(tmp_path, extra):
    for rel in ('train.py', 'test.py', 'scripts/demo.py', 'benchmarks/gain_study.py'):
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        shutil.copy(os.path.join(REPO, rel), tmp_path / rel)
    for rel in ('options/demo', 'options/gain', 'benchmarks/results/gain'):
        shutil.copytree(os.path.join(REPO, rel), tmp_path / rel)
    cmd = [sys.executable, 'scripts/demo.py', '--student-iters', '2', '--threads', '1'] + extra
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # progress: a line per student and the total, each student ending at its last iteration
    assert 'students (' in proc.stdout and '% done, ETA' in proc.stdout
    for label in ('student from scratch', 'output KD'):
        assert any(line.strip().startswith(label) and ' 2/2 it  done' in line
                   for line in proc.stdout.splitlines()), proc.stdout[-2000:]
    out = tmp_path / 'demo_output'
    assert (out / 'side_by_side.png').stat().st_size > 0 and (out / 'psnr_vs_iter.png').stat().st_size > 0
    result = json.loads((out / 'results.json').read_text())
    dukd = 'DUKD' if not extra else 'DUKD, LCR without colour inversion'
    assert set(result['rows']) == {'bicubic', 'student from scratch', 'output KD', dukd, 'teacher'}
    assert all(10 < row['psnr'] < 60 for row in result['rows'].values())
    assert (out / 'dukd_student' / 'student.safetensors').stat().st_size > 0  # the README's infer command uses it
    report = (out / 'results.md').read_text()
    assert f'| {dukd} |' in report and 'the gain study at this cell' in report
    kd_opt = (tmp_path / 'experiments' / '_derived_options').glob('demo_kd_17k_*_s0_it2.yml')
    with open(next(kd_opt)) as f:
        opt = yaml.safe_load(f)
    # KD and DUKD read the teacher's output on the real LR patches from a store that this teacher made
    from dukd_arch.data.label_store import read_manifest, sha256_file, teacher_checkpoint
    store = tmp_path / opt['datasets']['train']['dataroot_teacher']
    assert opt['datasets']['train']['type'] == 'TeacherLabelPairedImageDataset'
    assert opt['datasets']['train']['decoded_cache_mib'] > 0  # and keeps its decoded images
    teacher_file = tmp_path / teacher_checkpoint(opt)  # the trained teacher's relative path, or the shipped one's
    assert read_manifest(str(store))['teacher']['sha256'] == sha256_file(str(teacher_file))
    logs = sorted((out / 'logs').glob('train_demo_*_s0_it2.log'))  # the three students'
    assert len(logs) == 3
    for log in logs:
        assert ('Real-pair KD term: stored teacher labels' in log.read_text()) == ('scratch' not in log.name), log
    if extra:  # the students learn from the teacher trained here, not the shipped one
        assert opt['network_t']['num_feat'] == 32 and opt['path']['pretrain_network_t'].startswith('experiments/')
        assert not (tmp_path / 'results' / 'test_demo_reference_teacher').exists()
    else:
        assert opt['path']['pretrain_network_t'] == 'dukd:reference_teacher_x4.safetensors'
        assert not (tmp_path / 'experiments' / 'demo_teacher').exists()  # no teacher is trained by default


def test_teacher_iters_without_train_teacher_is_refused():
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'demo.py'), '--teacher-iters', '5'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and '--teacher-iters only applies with --train-teacher' in proc.stderr
