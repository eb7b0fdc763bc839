"""The demo's steps: train (or reuse) a run through ``train.py``, test it through ``test.py``, bicubic baseline.

A run is reused when ``experiments/<name>/models/net_g_latest.pth`` exists and the run's stamp (a hash of
the base option file plus the changes made to it) matches; anything else retrains it from scratch.
"""
import glob
import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from os import path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import yaml

from .runner import final_metrics, log_span_seconds, python_cmd, run_logged, validation_curve

STAMP = 'demo_stamp.json'


@dataclass
class Run:
    """One training run: a base option file, changes to it (``'train:total_iter': 400``) and where it lands.

    Changes are written into a derived option file (``experiments/_derived_options/<name>.yml``) rather
    than passed as ``--force_yml``: BasicSR applies those after seeding, so a changed seed would be ignored.
    """
    label: str
    opt: str
    name: str
    changes: Dict[str, object] = field(default_factory=dict)
    # changes that cannot alter the result (``datasets:train:decoded_cache_mib``): in the derived file, not in
    # the stamp, so turning one on or off reuses and resumes runs
    speed: Dict[str, object] = field(default_factory=dict)

    @property
    def exp_dir(self) -> str:
        return osp.join('experiments', self.name)

    @property
    def weights(self) -> str:
        return osp.join(self.exp_dir, 'models', 'net_g_latest.pth')

    def options(self) -> dict:
        with open(self.opt) as f:
            opt = yaml.safe_load(f)
        opt['name'] = self.name
        for keys, value in {**self.changes, **self.speed}.items():
            node = opt
            *parents, last = keys.split(':')
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        return opt

    def total_iter(self) -> int:
        return int(self.options()['train']['total_iter'])

    def option_file(self) -> str:
        """The file train.py runs: the base file itself, or the derived one holding the changes."""
        if not self.changes and not self.speed and self.name == _base_name(self.opt):
            return self.opt
        path = osp.join('experiments', '_derived_options', f'{self.name}.yml')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(f'# derived from {self.opt} with {json.dumps({**self.changes, **self.speed})}\n')
            yaml.safe_dump(self.options(), f, sort_keys=False)
        return path

    def stamp(self) -> dict:
        with open(self.opt, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        return {'opt': self.opt, 'opt_sha256': digest, 'name': self.name,
                'changes': json.loads(json.dumps(self.changes, sort_keys=True))}


def _base_name(opt_file: str) -> str:
    with open(opt_file) as f:
        return yaml.safe_load(f)['name']


def iteration_changes(total_iter: int) -> Dict[str, object]:
    """Shorter/longer runs keep the demo schedule's shape: halve the LR at 3/4, validate 8 times."""
    val = max(1, total_iter // 8)
    return {'train:total_iter': total_iter, 'train:scheduler:milestones': [max(1, total_iter * 3 // 4)],
            'val:val_freq': val, 'logger:print_freq': val, 'logger:save_checkpoint_freq': max(1, total_iter // 2)}


def subprocess_env(threads: Optional[int]) -> Dict[str, str]:
    env = dict(os.environ)
    root = os.getcwd()
    env['PYTHONPATH'] = root + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    env.setdefault('PYTHONWARNINGS', 'ignore')
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    return env


def is_trained(run: Run) -> bool:
    stamp_path = osp.join(run.exp_dir, STAMP)
    if not (osp.isfile(run.weights) and osp.isfile(stamp_path)):
        return False
    with open(stamp_path) as f:
        return json.load(f) == run.stamp()


def _started_stamp(run: Run) -> str:
    """Where a run's stamp is kept while it trains (outside its experiment folder, which BasicSR owns)."""
    return osp.join('experiments', '_derived_options', f'{run.name}.started.json')


def train(run: Run, log_dir: str, force: bool = False, threads: Optional[int] = None, resume: bool = False,
          progress: bool = True, report=None) -> Optional[float]:
    """Train ``run`` unless an identical finished run exists; returns seconds spent (None when reused).

    ``resume``: a run that was stopped part-way with the same stamp carries on from its newest training
    state (``--auto_resume``) instead of starting over. ``progress``: a tqdm bar (else one line at the end);
    ``report``: ``runner.run_logged``'s callback (a ``ProgressBoard``'s reporter).
    """
    if not force and is_trained(run):
        print(f'[demo] {run.label}: reusing {run.weights} (--force retrains)')
        return None
    started = _started_stamp(run)
    states = osp.join(run.exp_dir, 'training_states')
    partial = resume and not force and osp.isdir(states) and any(f.endswith('.state') for f in os.listdir(states))
    if partial and osp.isfile(started):
        with open(started) as f:
            partial = json.load(f) == run.stamp()
    else:
        partial = False
    cmd = python_cmd('train.py', run.option_file())
    if partial:
        cmd.append('--auto_resume')
    else:
        shutil.rmtree(run.exp_dir, ignore_errors=True)  # a stale or partial run: start clean, do not archive
        os.makedirs(osp.dirname(started), exist_ok=True)
        with open(started, 'w') as f:
            json.dump(run.stamp(), f, indent=1)
    log_name = f'train_{run.name}.log' if not partial else f'train_{run.name}.resumed.log'
    _, seconds = run_logged(cmd, osp.join(log_dir, log_name), f'train {run.label}',
                            total=run.total_iter() if progress else None, env=subprocess_env(threads), report=report)
    with open(osp.join(run.exp_dir, STAMP), 'w') as f:
        json.dump(run.stamp(), f, indent=1)
    return seconds


def teacher_labels(run: Run, store: str, log_dir: str, threads: Optional[int] = None) -> Optional[float]:
    """The teacher's output on every training LR image of ``run``, in ``store`` (by ``dukd_arch.teacher_labels``);
    returns seconds spent, None when a complete store of the same teacher is reused. Anything else there (another
    teacher's labels, an interrupted build) is rebuilt: the demo's stores take seconds."""
    from ..data.label_store import LabelStoreError, check_teacher, read_manifest
    try:
        check_teacher(read_manifest(store), store, run.options())
        return None
    except LabelStoreError:
        shutil.rmtree(store, ignore_errors=True)
    cmd = [sys.executable, '-m', 'dukd_arch.teacher_labels', '-opt', run.option_file(), '--out', store]
    _, seconds = run_logged(cmd, osp.join(log_dir, f'teacher_labels_{run.name}.log'), 'teacher labels',
                            env=subprocess_env(threads))
    return seconds


def _train_logs(run: Run) -> List[str]:
    """Every training log of ``run``, oldest first (a resumed run writes a new one)."""
    return sorted(glob.glob(osp.join(run.exp_dir, 'train_*.log')), key=osp.getmtime)


def curve(run: Run):
    """The run's validation curve, across every log it wrote."""
    points = {}
    for log in _train_logs(run):
        points.update(dict(validation_curve(log)))
    return sorted(points.items())


def wall_seconds(run: Run) -> Tuple[float, int]:
    """(seconds, segments): the run's training wall time summed over every log it wrote, and how many. A resumed
    run counts each segment, including the iterations it repeated after its last saved state."""
    logs = _train_logs(run)
    return sum(log_span_seconds(log) for log in logs), len(logs)


def test(run: Run, test_opt: str, log_dir: str, threads: Optional[int] = None, weights: Optional[str] = None) -> dict:
    """``test.py`` on the held-out photos with ``run``'s EMA weights (or ``weights``, e.g. a shipped
    ``dukd:`` file); returns metrics and the SR image folder.

    The run's changes to ``network_g`` (e.g. a wider student) are applied to the test options too."""
    name = f'test_{run.name}'
    shutil.rmtree(osp.join('results', name), ignore_errors=True)
    net_changes = [f'{k}={v}' for k, v in run.changes.items() if k.startswith('network_g:')]
    cmd = python_cmd('test.py', test_opt, [f'name={name}', f'path:pretrain_network_g={weights or run.weights}'] +
                     net_changes)
    lines, seconds = run_logged(cmd, osp.join(log_dir, f'{name}.log'), f'test  {run.label}',
                                env=subprocess_env(threads))
    metrics = final_metrics(lines)
    if 'psnr' not in metrics:
        raise RuntimeError(f'No PSNR found in the output of {" ".join(cmd)}; see {log_dir}/{name}.log')
    with open(test_opt) as f:
        dataset = yaml.safe_load(f)['datasets']['test_1']['name']
    return {'psnr': metrics['psnr'], 'ssim': metrics.get('ssim'), 'seconds': seconds,
            'images': osp.join('results', name, 'visualization', dataset), 'suffix': name}


def bicubic_baseline(val_root: str, scale: int, out_dir: str) -> dict:
    """MATLAB-bicubic upscaling of the held-out LR, scored with BasicSR's metrics exactly like test.py."""
    from basicsr.metrics import calculate_psnr, calculate_ssim

    from ..data.sr_data import bicubic_upscale

    os.makedirs(out_dir, exist_ok=True)
    psnrs, ssims = [], []
    hr_dir, lr_dir = osp.join(val_root, 'HR'), osp.join(val_root, 'LR_bicubic', f'X{scale}')
    for name in sorted(os.listdir(hr_dir)):
        hr = cv2.imread(osp.join(hr_dir, name))
        lr = cv2.imread(osp.join(lr_dir, name))
        up = bicubic_upscale(lr, scale)
        cv2.imwrite(osp.join(out_dir, f'{osp.splitext(name)[0]}_bicubic.png'), up)
        psnrs.append(calculate_psnr(up, hr, scale, test_y_channel=True))
        ssims.append(calculate_ssim(up, hr, scale, test_y_channel=True))
    return {'psnr': float(np.mean(psnrs)), 'ssim': float(np.mean(ssims)), 'images': out_dir, 'suffix': 'bicubic'}


def fidelity_to(reference_dir: str, reference_suffix: str, images_dir: str, suffix: str, names: Sequence[str],
                scale: int) -> float:
    """Mean PSNR (Y, border = scale) between two methods' outputs: how closely a student imitates the teacher."""
    from basicsr.metrics import calculate_psnr

    vals = []
    for stem in names:
        a = cv2.imread(osp.join(reference_dir, f'{stem}_{reference_suffix}.png'))
        b = cv2.imread(osp.join(images_dir, f'{stem}_{suffix}.png'))
        if a is None or b is None:
            raise FileNotFoundError(f'missing SR image for {stem} in {reference_dir} or {images_dir}')
        vals.append(calculate_psnr(a, b, scale, test_y_channel=True))
    return float(np.mean(vals))
