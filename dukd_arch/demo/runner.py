"""Run ``train.py`` / ``test.py`` as subprocesses with a progress bar, and read their logs back.

BasicSR prints ``[... iter:   150, lr:(...)] ...`` every ``print_freq`` iterations and, after each
validation, ``# psnr: 28.1234`` lines; that is all the demo needs to show progress and plot curves.
"""
import os
import re
import subprocess
import sys
import time
from os import path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

ITER_RE = re.compile(r'epoch:\s*\d+, iter:\s*([\d,]+)')  # BasicSR's MessageLogger line
METRIC_RE = re.compile(r'#\s*(\w+):\s*([-\d.]+|inf|nan)')
STAMP_RE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ')  # BasicSR's log-line time stamp


def run_logged(cmd: Sequence[str], log_path: str, desc: str, total: Optional[int] = None, cwd: Optional[str] = None,
               env: Optional[Dict[str, str]] = None,
               report: Optional[Callable[[Optional[int], Optional[str]], None]] = None) -> Tuple[List[str], float]:
    """Run ``cmd``; stream its output into ``log_path`` and, with ``total`` iterations, a tqdm bar over
    BasicSR's iteration lines (without, one line when it is done). ``report(iteration, psnr)`` is called with
    each iteration and validation PSNR the run prints (a ``ProgressBoard`` of runs in parallel).

    Returns (output lines, seconds). A failure raises with the command and the last lines of its output.
    """
    os.makedirs(osp.dirname(osp.abspath(log_path)), exist_ok=True)
    start = time.time()
    lines: List[str] = []
    bar = tqdm(total=total, desc=desc, unit='it', dynamic_ncols=True, leave=True) if total else None
    with open(log_path, 'w', buffering=1) as log, subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                     stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        last_metric = None
        for line in proc.stdout:
            log.write(line)
            lines.append(line.rstrip('\n'))
            m = ITER_RE.search(line)
            if m and bar is not None:
                it = int(m.group(1).replace(',', ''))
                bar.update(max(0, min(it, total) - bar.n))
            if m and report is not None:
                report(int(m.group(1).replace(',', '')), None)
            m = METRIC_RE.search(line)
            if m and m.group(1) == 'psnr':
                last_metric = m.group(2)
                if bar is not None:
                    bar.set_postfix_str(f'held-out PSNR {last_metric} dB')
                if report is not None:
                    report(None, last_metric)
        rc = proc.wait()
    if bar is not None:
        if rc == 0:
            bar.update(max(0, total - bar.n))
        bar.close()
    elif report is None:
        print(f'{desc}: {"held-out PSNR " + last_metric + " dB" if last_metric else "done"} '
              f'({time.time() - start:.0f} s)', flush=True)
    if rc != 0:
        tail = '\n'.join(lines[-25:])
        raise RuntimeError(f'{" ".join(cmd)} failed (exit {rc}); full log: {log_path}\n{tail}')
    return lines, time.time() - start


def final_metrics(lines: Sequence[str]) -> Dict[str, float]:
    """The metric values of the last validation block in a BasicSR log (``# psnr: ...`` lines)."""
    out: Dict[str, float] = {}
    for line in lines:
        if 'Validation' in line:
            out = {}
        m = METRIC_RE.search(line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def validation_curve(log_file: str, metric: str = 'psnr') -> List[Tuple[int, float]]:
    """(iteration, value) of every validation in a training log; the iteration is the last one printed
    before the validation (``print_freq`` divides ``val_freq`` in the demo options, so it is exact)."""
    curve: List[Tuple[int, float]] = []
    it = 0
    with open(log_file) as f:
        for line in f:
            m = ITER_RE.search(line)
            if m:
                it = int(m.group(1).replace(',', ''))
                continue
            m = METRIC_RE.search(line)
            if m and m.group(1) == metric:
                point = (it, float(m.group(2)))
                if not curve or curve[-1][0] != it:  # the end-of-training validation repeats the last one
                    curve.append(point)
    return curve


def log_span_seconds(log_file: str) -> float:
    """Seconds from the first to the last time-stamped line of a BasicSR log (0 with fewer than two)."""
    first = last = None
    with open(log_file) as f:
        for line in f:
            m = STAMP_RE.match(line)
            if m:
                t = time.mktime(time.strptime(m.group(1), '%Y-%m-%d %H:%M:%S')) + int(m.group(2)) / 1000
                first = t if first is None else first
                last = t
    return last - first if first is not None else 0.0


def python_cmd(script: str, opt: str, force_yml: Sequence[str] = ()) -> List[str]:
    cmd = [sys.executable, script, '-opt', opt]
    if force_yml:
        cmd += ['--force_yml', *force_yml]
    return cmd
