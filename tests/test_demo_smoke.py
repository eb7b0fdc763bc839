"""README quick-start command 1 (`make demo` = scripts/demo.py) runs end to end, shortened to 2 iterations.

It runs in a copy of the entry points so a developer's real demo runs under experiments/ stay untouched.
"""
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def test_demo_pipeline_end_to_end(tmp_path):
    for rel in ('train.py', 'test.py', 'scripts/demo.py'):
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        shutil.copy(os.path.join(REPO, rel), tmp_path / rel)
    shutil.copytree(os.path.join(REPO, 'options', 'demo'), tmp_path / 'options' / 'demo')
    cmd = [sys.executable, 'scripts/demo.py', '--teacher-iters', '2', '--student-iters', '2', '--threads', '1']
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / 'demo_output'
    assert (out / 'side_by_side.png').stat().st_size > 0 and (out / 'psnr_vs_iter.png').stat().st_size > 0
    rows = json.loads((out / 'results.json').read_text())['rows']
    assert set(rows) == {'bicubic', 'student from scratch', 'output KD', 'DUKD', 'teacher'}
    assert all(10 < row['psnr'] < 60 for row in rows.values())
    assert '| DUKD |' in (out / 'results.md').read_text()
