"""Option files through ``train.py`` itself, one iteration on tiny data: the same mutations as the in-process
validation (plus a missing data root), on a complete tiny DUKD option file whose data and teacher exist.

Refused: non-zero exit, the offending key or file in stderr, no traceback from inside a library, no
checkpoint written. Accepted: exit 0 and a finite ``net_g_latest.pth`` (only for a mutation said to be
harmless). Either way the option file, the teacher and the data are unchanged afterwards.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys

import torch
import yaml

from option_inputs import OPTIONAL, _keys, _matches, mutate
from pipeline_opts import pipeline_options
from verdict import ACCEPTED, DEFECT, REFUSED, REPO, Verdict

FAMILY = 'options'
TIMEOUT_S = 240


def _digest(root):
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            with open(os.path.join(folder, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def _innermost_frame(stderr):
    frames = re.findall(r'File "([^"]+)", line \d+', stderr)
    return frames[-1] if frames else None


def one_input(rng, work, index):
    root = os.path.join(work, f'train{index}')
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    shutil.copy(os.path.join(REPO, 'train.py'), root)  # experiments/ goes beside train.py: in the tmp root
    opt = pipeline_options(root, name='fuzz', total_iter=1, save_freq=1)
    draw = rng.random()
    if draw < 0.3:  # a key with a documented default: the run must train
        optional = sorted(p for p, _, _ in _keys(opt) if _matches(p, OPTIONAL))
        path = rng.choice(optional)
        *parents, leaf = path.split('.')
        node = opt
        for key in parents:
            node = node[key]
        del node[leaf]
        change = f'delete {path}', [path], OPTIONAL[_matches(path, OPTIONAL)]
    elif draw < 0.45:
        key = rng.choice(('dataroot_gt', 'dataroot_lq'))
        opt['datasets']['train'][key] += '_missing'
        change = (f'datasets.train.{key}: a folder that does not exist',
                  [f'datasets.train.{key}', opt['datasets']['train'][key]], None)
    else:
        change = None
        while change is None:
            change = mutate(rng, opt, is_train=True)
    what, names, harmless = change
    label = f'train.py, tiny DUKD options: {what}'
    path = os.path.join(root, 'fuzz.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    inputs = {p: _digest(p) if os.path.isdir(p) else open(p, 'rb').read()
              for p in (path, os.path.join(root, 'data'), os.path.join(root, 'teacher.pth'))}
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    try:
        proc = subprocess.run([sys.executable, 'train.py', '-opt', 'fuzz.yml'], cwd=root, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Verdict(FAMILY, label, DEFECT, f'no result within {TIMEOUT_S} s (a hang)')
    changed = [p for p, v in inputs.items() if not os.path.exists(p)
               or (_digest(p) if os.path.isdir(p) else open(p, 'rb').read()) != v]
    if changed:
        return Verdict(FAMILY, label, DEFECT, f'inputs changed or removed: {changed}')
    models = os.path.join(root, 'experiments', 'fuzz', 'models')
    saved = sorted(os.listdir(models)) if os.path.isdir(models) else []
    if proc.returncode == 0:
        if not harmless:
            return Verdict(FAMILY, label, DEFECT, 'train.py exited 0 on a mutation that must be refused')
        state = torch.load(os.path.join(models, 'net_g_latest.pth'), weights_only=True)['params']
        if not all(torch.isfinite(v).all() for v in state.values()):
            return Verdict(FAMILY, label, DEFECT, 'exit 0, but the weights are not finite')
        return Verdict(FAMILY, label, ACCEPTED, f'{harmless}; trained and saved finite weights')
    frame = _innermost_frame(proc.stderr)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''
    if frame and not (frame.startswith(os.path.join(REPO, 'dukd_arch')) or frame.startswith(root)):
        return Verdict(FAMILY, label, DEFECT, f'traceback from inside {frame}: {last[:300]}')
    if not any(str(n) in proc.stderr for n in names):
        return Verdict(FAMILY, label, DEFECT, f'the error names none of {names}: {last[:300]}')
    if any(name.startswith('net_g') for name in saved):
        return Verdict(FAMILY, label, DEFECT, f'refused only after training wrote {saved}')
    return Verdict(FAMILY, label, REFUSED, last[:200])
