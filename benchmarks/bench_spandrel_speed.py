"""Training-step time of the shipped spandrel students (SPAN, SAFMN; SwinIR-M teacher) under output KD and DUKD,
against their FLOP floor, side by side in one process.

Both pairs and all configurations are built in one process and their steps interleaved round-robin
(``bench_speed.measure``), so every number sees the same machine load. The floor is ``bench_speed``'s: the conv /
linear multiply-adds one step must do (forward + backward of the student ~ 3 forwards, one teacher forward per
input it labels), relative to the pair's own output-KD step. SPAN trains its re-parameterisable branches (a
1x1-3x3-1x1 chain plus a 1x1 skip per convolution), so its floor counts those, not the single 3x3 it deploys.

    OMP_NUM_THREADS=1 python benchmarks/bench_spandrel_speed.py --batch 4 --lr-size 24 --steps 5 --warmup 1
"""
import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from os import path as osp

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import bench_speed  # noqa: E402  (puts the repository first on sys.path)

PAIRS = ('span_x4', 'safmn_x4')
CONFIGS = ('KDModel', 'DUKD zoom-in', 'DUKD zoom-in+out+LCR', 'KD, cached labels', 'DUKD, cached labels')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=bench_speed.PUBLISHED)
    p.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=list(bench_speed.CONFIGS))
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--lr-size', type=int, default=24, help='LR patch size (HR = 4x)')
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--json', help='also write the results here')
    args = p.parse_args(argv)
    args.pair = args.pairs[0]

    import torch

    import dukd_arch  # noqa: F401
    from basicsr.archs import build_network

    teachers = {pair: bench_speed.pair_nets(pair)[0] for pair in args.pairs}
    if any(t != teachers[args.pair] for t in teachers.values()):
        raise SystemExit('the pairs must share their teacher (one teacher file, one batch)')
    lr = (1, 3, args.lr_size, args.lr_size)
    small = (1, 3, args.lr_size // 4, args.lr_size // 4)
    teacher = build_network(dict(teachers[args.pair]))
    t_macs, t_small = bench_speed.count_macs(teacher, lr), bench_speed.count_macs(teacher, small)
    s_macs = {}
    for pair in args.pairs:
        student = build_network(dict(bench_speed.pair_nets(pair)[1]))  # train mode: the branches it trains
        s_macs[pair] = (bench_speed.count_macs(student, lr), bench_speed.count_macs(student, small))
    tmp = tempfile.mkdtemp()
    teacher_path = osp.join(tmp, 'teacher.pth')
    torch.save({'params': teacher.state_dict()}, teacher_path)
    runs = {f'{pair} {cfg}': (cfg, bench_speed.build_opt(cfg, args, teacher_path, pair))
            for pair in args.pairs for cfg in args.configs}
    try:
        results = bench_speed.measure(args, teacher_path, runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [f'teacher SwinIR-M {t_macs / 1e9:.2f} GMAC per {args.lr_size}x{args.lr_size} LR image; '
             + '; '.join(f'{pair} student {s_macs[pair][0] / 1e6:.1f} MMAC' for pair in args.pairs)
             + f'; batch {args.batch}; {args.steps} timed steps after {args.warmup} warm-up; device {args.device}; '
             f'torch threads {torch.get_num_threads()}',
             '', '| student | configuration | step (ms) | time / its KD step | FLOP floor / its KD step | '
             'time / floor |', '|---|---|---|---|---|---|']
    floors = {}
    for pair in args.pairs:
        ref = results.get(f'{pair} KDModel')
        ref_floor = bench_speed.flop_floor('KDModel', s_macs[pair][0], t_macs, s_macs[pair][1], t_small)
        for cfg in args.configs:
            r = results[f'{pair} {cfg}']
            floor = bench_speed.flop_floor(cfg, s_macs[pair][0], t_macs, s_macs[pair][1], t_small)
            floors[f'{pair} {cfg}'] = floor
            if ref:
                t_ratio, f_ratio = r['median_s'] / ref['median_s'], floor / ref_floor
                lines.append(f"| {pair} | {cfg} | {r['median_s'] * 1000:.0f} | {t_ratio:.2f} | {f_ratio:.2f} | "
                             f'{t_ratio / f_ratio:.2f} |')
            else:
                lines.append(f"| {pair} | {cfg} | {r['median_s'] * 1000:.0f} | - | - | - |")
    lines += ['', f'machine: {platform.platform()}, {os.cpu_count()} CPUs']
    print('\n'.join(lines))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'args': vars(args), 'floors': floors, 'macs': {'teacher': t_macs, 'students': s_macs},
                       'results': results}, f, indent=1)


if __name__ == '__main__':
    main()
