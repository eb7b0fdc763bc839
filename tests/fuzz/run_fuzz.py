"""Seeded fuzzer over bad inputs: option files, images, datasets, checkpoints (verdicts: tests/fuzz/verdict.py).

    python tests/fuzz/run_fuzz.py --seed 0 --scale 10      # `make fuzz`: >= 2,000 inputs
    python tests/fuzz/run_fuzz.py --seed 0 --scale 1       # the CI sample (tests/fuzz/test_fuzz.py)

Input ``i`` of a family is generated from ``random.Random(f'{seed}-{family}-{i}')`` alone, so any one input
is rebuilt from the three values printed with it. Exits 1 when any input is a defect.
"""
import argparse
import collections
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [p for p in (os.path.dirname(os.path.dirname(HERE)), os.path.dirname(HERE), HERE)
                if p not in sys.path]
os.environ.setdefault('OMP_NUM_THREADS', '1')

import conftest  # noqa: E402,F401,I100  (first: imports dukd_arch, which patches basicsr before its first use)
import checkpoint_inputs  # noqa: E402
import data_inputs  # noqa: E402
import option_inputs  # noqa: E402
import train_inputs  # noqa: E402
from verdict import ACCEPTED, DEFECT, REFUSED  # noqa: E402

# inputs per family at --scale 1 (the CI sample); `make fuzz` runs --scale 10
SAMPLE = {'options': 100, 'options_train_py': 2, 'images': 40, 'datasets': 30, 'checkpoints': 40}
GENERATORS = {
    'options': lambda rng, work, i: option_inputs.one_input(rng),
    'options_train_py': train_inputs.one_input,  # reported with the options family
    'images': data_inputs.image_input,
    'datasets': data_inputs.dataset_input,
    'checkpoints': checkpoint_inputs.one_input,
}


def run(seed=0, scale=1, counts=None, work=None, log=None):
    """All inputs of ``counts`` (default ``SAMPLE`` x ``scale``); returns the verdicts in order."""
    import torch
    torch.set_num_threads(1)
    counts = counts or {family: n * scale for family, n in SAMPLE.items()}
    own = work is None
    work = work or tempfile.mkdtemp(prefix='dukd_fuzz_')
    verdicts = []
    try:
        for family, n in counts.items():
            for i in range(n):
                verdict = GENERATORS[family](random.Random(f'{seed}-{family}-{i}'), work, i)
                verdict.input = f'[{seed}-{family}-{i}] {verdict.input}'
                verdicts.append(verdict)
                if log and verdict.outcome == DEFECT:
                    log(f'DEFECT {verdict.input}: {verdict.reason}')
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return verdicts


def table(verdicts):
    """Markdown: tried / accepted / refused clearly / defects per family."""
    rows = collections.OrderedDict()
    for v in verdicts:
        rows.setdefault(v.family, collections.Counter())[v.outcome] += 1
    lines = ['| family | tried | accepted (harmless, checked) | refused clearly | defects |', '|---|---|---|---|---|']
    total = collections.Counter()
    for family, c in rows.items():
        lines.append(f'| {family} | {sum(c.values())} | {c[ACCEPTED]} | {c[REFUSED]} | {c[DEFECT]} |')
        total.update(c)
    lines.append(f'| all | {sum(total.values())} | {total[ACCEPTED]} | {total[REFUSED]} | {total[DEFECT]} |')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scale', type=int, default=10, help='inputs per family = the CI sample x scale')
    parser.add_argument('--accepted', action='store_true', help='also list every accepted input with its reason')
    args = parser.parse_args(argv)
    start = time.time()
    verdicts = run(args.seed, args.scale, log=lambda line: print(line, flush=True))
    print(f'\npython tests/fuzz/run_fuzz.py --seed {args.seed} --scale {args.scale}: {len(verdicts)} inputs in '
          f'{time.time() - start:.0f} s\n')
    print(table(verdicts))
    if args.accepted:
        for v in verdicts:
            if v.outcome == ACCEPTED:
                print(f'accepted {v.input}: {v.reason}')
    return 1 if any(v.outcome == DEFECT for v in verdicts) else 0


if __name__ == '__main__':
    sys.exit(main())
