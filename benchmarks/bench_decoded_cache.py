"""Data time of gain study v2's training sets with and without ``decoded_cache_mib``, side by side.

    python benchmarks/bench_gain_v2.py data ... && python benchmarks/bench_gain_v2.py labels
    python benchmarks/bench_decoded_cache.py [--regime full] [--samples 2000] [--json out.json]

For the output-KD and DUKD (EDSR setting) datasets of the study (LMDB sub-images, 16-bit teacher labels), on
one thread: seconds per sample without the cache, with a cold cache (every image decoded once, as at the start
of a run) and with a warm one; and the projected data time of a study run (2000 iterations of 16 samples, each
image first read cold). The items are checked equal (same seeds, every tensor) before anything is timed.
"""
import argparse
import json
import os
import platform
import random
import sys
import time
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [ROOT, osp.join(ROOT, 'benchmarks')]

import torch  # noqa: E402

import bench_gain_v2  # noqa: E402
import dukd_arch  # noqa: E402,F401  (registers the datasets)
from basicsr.utils.registry import DATASET_REGISTRY  # noqa: E402
from dukd_arch.data.decoded_cache import DecodedImageCache  # noqa: E402

ROWS = ('kd', 'dukd_edsr')
BATCH, ITERS = 16, 2000


def dataset(row, regime, cache_mib):
    run = bench_gain_v2.make_run(row, '17k', regime, 0)
    opt = dict(run.options()['datasets']['train'], phase='train', scale=4)
    opt.pop('decoded_cache_mib', None)
    if cache_mib:
        opt['decoded_cache_mib'] = cache_mib
    return DATASET_REGISTRY.get(opt['type'])(opt)


def twins(row, regime):
    """The dataset without and with the cache, sharing one set of LMDB handles (an LMDB opens once per process)."""
    plain, cached = dataset(row, regime, 0), dataset(row, regime, bench_gain_v2.DECODED_CACHE_MIB)
    plain[0]  # opens the handles
    cached.file_client, cached.io_backend_opt = plain.file_client, plain.io_backend_opt
    if plain.teacher_labels is not None:
        cached.teacher_labels.client = plain.teacher_labels.client
    return plain, cached


def per_sample(ds, indices, seed=0):
    random.seed(seed)
    t = time.perf_counter()
    for i in indices:
        ds[i]
    return (time.perf_counter() - t) / len(indices)


def check_equal(plain, cached, row, n=64):
    for seed in range(n):
        for _ in range(2):  # the second read comes from the cache
            random.seed(seed), torch.manual_seed(seed)  # crops and flips; zoom-in tiles
            a = plain[seed * 7919 % len(plain)]
            random.seed(seed), torch.manual_seed(seed)
            b = cached[seed * 7919 % len(plain)]
            for key, value in a.items():
                if torch.is_tensor(value) and not torch.equal(value, b[key]):
                    sys.exit(f'{row}: {key} differs with the cache at seed {seed}')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--regime', default='full', choices=tuple(bench_gain_v2.REGIMES))
    p.add_argument('--samples', type=int, default=2000, help='samples timed per configuration')
    p.add_argument('--json', default=osp.join(ROOT, 'benchmarks', 'results', 'decoded_cache.json'))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = {'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, one thread',
           'command': 'python benchmarks/bench_decoded_cache.py ' + ' '.join(argv or sys.argv[1:]),
           'regime': args.regime, 'rows': {}}
    for row in ROWS:
        plain, cached = twins(row, args.regime)
        check_equal(plain, cached, row)
        cached.decoded_cache = DecodedImageCache(bench_gain_v2.DECODED_CACHE_MIB)  # cold again for the timing
        n = len(plain)
        rng = random.Random(1)
        timed = [rng.randrange(n) for _ in range(args.samples)]
        cold = per_sample(cached, range(n))  # fills the cache: each image's first read
        warm, uncached = per_sample(cached, timed), per_sample(plain, timed)
        samples = BATCH * ITERS
        run_plain = samples * uncached
        run_cached = min(n, samples) * cold + max(0, samples - n) * warm
        out['rows'][row] = {
            'images': n, 'cache_mib': round(cached.decoded_cache.used / 2**20, 1),
            'uncached_ms': round(uncached * 1e3, 2), 'cold_ms': round(cold * 1e3, 2), 'warm_ms': round(warm * 1e3, 2),
            'run_data_s_uncached': round(run_plain), 'run_data_s_cached': round(run_cached),
            'run_data_ratio': round(run_cached / run_plain, 3)}
        print(f"{row}: {n} images, cache {out['rows'][row]['cache_mib']} MiB; ms/sample uncached {uncached * 1e3:.2f}, "
              f'cold {cold * 1e3:.2f}, warm {warm * 1e3:.2f}; data time of a {ITERS}-iteration run '
              f'{run_plain:.0f} s -> {run_cached:.0f} s ({run_cached / run_plain:.2f}x)', flush=True)
        del plain, cached
    with open(args.json, 'w') as f:
        json.dump(out, f, indent=1)
    print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
