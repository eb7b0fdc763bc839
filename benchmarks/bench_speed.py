"""Training-step time and peak memory of SRModel, KDModel and DUKDModel variants, as ratios to KDModel.

Every configuration trains the same teacher/student pair on the same batch. Next to each measured ratio
is its FLOP floor: the conv/linear multiply-adds one step must do, relative to KDModel's step:

    SRModel   3 S(x)                 (forward + backward ~ 3 forwards)
    KDModel   3 S(x) + T(x)
    zoom-in   + n_tiles * (3 S(tile) + T(tile))       tiles are LR-sized: same cost as the real pair
    zoom-out  + 3 S(x/s) + T(x/s)                     1/s^2 of the pixels
    LCR       + 0                                     flips / transpose / inversion are permutations
    two-step  + 0 FLOPs, one more optimizer step

All configurations are built in one process and their steps interleaved round-robin, so all see the
same machine load (the ratios hold on a shared machine). Memory: the bytes autograd keeps for backward
in one step (exact and device-independent: the activation memory each extra forward adds) and, on
CUDA, the allocator's peak during a step.

    python benchmarks/bench_speed.py                      # the demo pair, batch 16, LR 24x24
    python benchmarks/bench_speed.py --pair edsr --steps 20 --device cuda

The rows "KD, cached labels" and "DUKD, cached labels" are KDModel and the full DUKD with the real-pair KD
label taken from the batch (the teacher-label store, docs/teacher_labels.md) instead of running the teacher;
``--pair edsr_x4 / rcan_x4 / swinir_x4`` measures the published pairs (options/kd_<pair>.yml), e.g.

    python benchmarks/bench_speed.py --pair edsr_x4 --batch 2 --lr-size 24 --steps 5 --warmup 1 \
        --configs KDModel "KD, cached labels" "DUKD zoom-in+out+LCR" "DUKD, cached labels"
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

PAIRS = {
    # the demo's pair (options/demo): Real-ESRGAN's compact CNN, 32x8 -> 16x4
    'demo': ({'type': 'SRVGGNetCompact_basicsr', 'num_feat': 32, 'num_conv': 8, 'upscale': 4},
             {'type': 'SRVGGNetCompact_basicsr', 'num_feat': 16, 'num_conv': 4, 'upscale': 4}),
    # the paper's EDSR family, shrunk (teacher 64x8, student 32x4) to stay CPU-friendly
    'edsr': ({'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 8, 'upscale': 4,
              'res_scale': 0.1},
             {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_block': 4, 'upscale': 4,
              'res_scale': 0.1}),
}
# the published pairs and the spandrel students' (SwinIR-M teacher), read from options/kd_<pair>.yml
PUBLISHED = ('edsr_x4', 'rcan_x4', 'swinir_x4', 'span_x4', 'safmn_x4')


def pair_nets(name):
    """(teacher, student) network options of a pair."""
    if name in PUBLISHED:
        from dukd_arch.card import load_options
        opt = load_options(osp.join(ROOT, 'options', f'kd_{name}.yml'))
        return dict(opt['network_t']), dict(opt['network_g'])
    return PAIRS[name]


LCR = {'prob': 0.3}
CONFIGS = {  # name: (model_type, dukd_opt)
    'SRModel': ('SRModel', None),
    'KDModel': ('KDModel', None),
    'DUKD zoom-in': ('DUKDModel', {'zoom_in': 1, 'zoom_out': False}),
    'DUKD zoom-out': ('DUKDModel', {'zoom_in': 0, 'zoom_out': True}),
    'DUKD zoom-in+out': ('DUKDModel', {'zoom_in': 1, 'zoom_out': True}),
    'DUKD zoom-in+out+LCR': ('DUKDModel', {'zoom_in': 1, 'zoom_out': True, 'label_consistency': LCR}),
    'DUKD two-step (authors)': ('DUKDModel', {'zoom_in': 1, 'zoom_out': True, 'label_consistency': LCR,
                                              'two_step': True}),
    # the real-pair KD label read from the teacher-label store (datasets.train.dataroot_teacher) instead of T(x)
    'KD, cached labels': ('KDModel', None),
    'DUKD, cached labels': ('DUKDModel', {'zoom_in': 1, 'zoom_out': True, 'label_consistency': LCR}),
}
# their batches carry `teacher`, so T(x) leaves the step and its floor; compared with their live twins
CACHED = {'KD, cached labels': 'KDModel', 'DUKD, cached labels': 'DUKD zoom-in+out+LCR'}


def count_macs(net, shape):
    """Multiply-adds of conv / linear layers in one forward of ``net`` on a ``shape`` input."""
    import torch
    macs = [0]

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs[0] += output.numel() * k
        elif isinstance(module, torch.nn.Linear):
            macs[0] += output.numel() * module.in_features

    from dukd_arch.ops import forward_padded
    from dukd_arch.archs.teacher import window_multiple

    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():  # padded to the window multiple as in training (SwinIR)
        forward_padded(net, torch.rand(shape), window_multiple(net), 1)
    for h in handles:
        h.remove()
    return macs[0]


def flop_floor(cfg, s_macs, t_macs, s_small, t_small):
    model_type, dukd = CONFIGS[cfg]
    cost = 3 * s_macs
    if model_type != 'SRModel' and cfg not in CACHED:
        cost += t_macs
    if dukd:
        cost += int(dukd['zoom_in']) * (3 * s_macs + t_macs)
        if dukd['zoom_out']:
            cost += 3 * s_small + t_small
    return cost


def _mib(r):
    return '-' if r['peak_bytes'] is None else f"{r['peak_bytes'] / 2**20:.1f}"


def build_opt(cfg, args, teacher_path, pair=None):
    t_net, s_net = pair_nets(pair or args.pair)
    model_type, dukd = CONFIGS[cfg]
    opt = {
        'name': 'bench', 'model_type': model_type, 'scale': 4, 'num_gpu': 1 if args.device == 'cuda' else 0,
        'dist': False, 'rank': 0, 'world_size': 1, 'is_train': True, 'manual_seed': 0,
        'network_g': dict(s_net),
        'path': {'models': '/nonexistent', 'training_states': '/nonexistent', 'experiments_root': '/nonexistent'},
        'datasets': {'train': {'gt_size': args.lr_size * 4}},
        'train': {'ema_decay': 0.999, 'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [10**9], 'gamma': 0.5}, 'total_iter': 10**9,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'val': {'metrics': None},
    }
    if model_type != 'SRModel':
        opt['network_t'] = dict(t_net)
        opt['path']['pretrain_network_t'] = teacher_path
        opt['train']['kd_opt'] = {'type': 'L1Loss', 'loss_weight': 1.0}
    if dukd:
        opt['train']['dukd_opt'] = dukd
    return opt


def measure(args, teacher_path, runs=None):
    """All configurations in one process, their steps interleaved round-robin: every configuration sees
    the same machine load, so the ratios hold even on a shared machine whose speed drifts. ``runs``:
    ``{label: (configuration, options)}`` to measure other pairs side by side (default: ``args.configs``)."""
    import torch

    from basicsr.models import build_model
    from dukd_arch.ops import matlab_imresize

    g = torch.Generator().manual_seed(0)
    gt = torch.rand(args.batch, 3, args.lr_size * 4, args.lr_size * 4, generator=g)
    batch = {'gt': gt, 'lq': matlab_imresize(gt, 0.25).clamp(0, 1)}
    cuda = args.device == 'cuda'
    if cuda:
        batch = {k: v.cuda() for k, v in batch.items()}
    # a stored label arrives with the batch, like the GT (its values do not change the step's cost)
    label_batch = {**batch, 'teacher': batch['gt'].clone()}
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    runs = runs or {cfg: (cfg, build_opt(cfg, args, teacher_path)) for cfg in args.configs}
    models = {}
    for label, (_, opt) in runs.items():
        torch.manual_seed(0)
        models[label] = build_model(opt)
    saved = {cfg: 0 for cfg in models}
    peak = {cfg: 0 for cfg in models}
    times = {cfg: [] for cfg in models}
    for it in range(args.warmup + args.steps):
        for cfg, model in models.items():
            counter = [0]

            def pack(t, counter=counter):  # bytes autograd keeps for backward: the step's activation memory
                counter[0] += t.numel() * t.element_size()
                return t

            sync()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
            t = time.perf_counter()
            model.feed_data(label_batch if runs[cfg][0] in CACHED else batch)
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
                model.optimize_parameters(it + 1)
            sync()
            if it >= args.warmup:
                times[cfg].append(time.perf_counter() - t)
                saved[cfg] = counter[0]
                if cuda:
                    peak[cfg] = max(peak[cfg], torch.cuda.max_memory_allocated() - before)
        print(f'  round {it + 1}/{args.warmup + args.steps}' + (' (warm-up)' if it < args.warmup else ''), flush=True)
    return {cfg: {'median_s': statistics.median(times[cfg]), 'times': times[cfg], 'saved_bytes': saved[cfg],
                  'peak_bytes': peak[cfg] if cuda else None} for cfg in models}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--pair', choices=sorted(PAIRS) + list(PUBLISHED), default='demo',
                   help='demo / edsr (shrunk CPU pairs) or a published pair (options/kd_<pair>.yml)')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--lr-size', type=int, default=24, help='LR patch size (HR = 4x)')
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--configs', nargs='+', default=list(CONFIGS), help=f'subset of {list(CONFIGS)}')
    p.add_argument('--json', help='also write the results here')
    args = p.parse_args()

    import tempfile

    import torch

    import dukd_arch  # noqa: F401
    from basicsr.archs import build_network

    t_net, s_net = pair_nets(args.pair)
    teacher, student = build_network(dict(t_net)), build_network(dict(s_net))
    lr = (1, 3, args.lr_size, args.lr_size)
    small = (1, 3, args.lr_size // 4, args.lr_size // 4)
    s_macs, t_macs = count_macs(student, lr), count_macs(teacher, lr)
    s_small, t_small = count_macs(student, small), count_macs(teacher, small)
    tmp = tempfile.mkdtemp()
    teacher_path = osp.join(tmp, 'teacher.pth')
    torch.save({'params': teacher.state_dict()}, teacher_path)

    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f'unknown config(s) {sorted(unknown)}; choose from {list(CONFIGS)}')
    try:
        results = measure(args, teacher_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for cfg, r in results.items():
        print(f"  {cfg:26s} {r['median_s'] * 1000:8.1f} ms/step  autograd saved {r['saved_bytes'] / 2**20:7.1f} MiB")

    ref = results.get('KDModel')
    floors = {cfg: flop_floor(cfg, s_macs, t_macs, s_small, t_small) for cfg in results}
    lines = [f'pair {args.pair}: teacher {t_macs / 1e6:.1f} MMAC, student {s_macs / 1e6:.1f} MMAC per '
             f'{args.lr_size}x{args.lr_size} LR image; batch {args.batch}; {args.steps} timed steps after '
             f'{args.warmup} warm-up; device {args.device}; torch threads {torch.get_num_threads()}',
             '', '| configuration | step (ms) | time / KDModel | FLOP floor / KDModel | time / floor | '
             'autograd saved (MiB) | saved / KDModel | CUDA peak (MiB) |', '|---|---|---|---|---|---|---|---|']
    for cfg, r in results.items():
        if ref:
            t_ratio = r['median_s'] / ref['median_s']
            f_ratio = floors[cfg] / floors['KDModel']
            m_ratio = r['saved_bytes'] / ref['saved_bytes'] if ref['saved_bytes'] else float('nan')
            lines.append(f"| {cfg} | {r['median_s'] * 1000:.1f} | {t_ratio:.2f} | {f_ratio:.2f} | "
                         f"{t_ratio / f_ratio:.2f} | {r['saved_bytes'] / 2**20:.1f} | {m_ratio:.2f} | {_mib(r)} |")
        else:
            lines.append(f"| {cfg} | {r['median_s'] * 1000:.1f} | - | - | - | {r['saved_bytes'] / 2**20:.1f} | - | "
                         f"{_mib(r)} |")
    pairs = [(c, live) for c, live in CACHED.items() if c in results and live in results]
    if pairs:
        lines += [''] + [f"{c} / {live}: {results[c]['median_s'] / results[live]['median_s']:.2f} (time), "
                         f'{floors[c] / floors[live]:.2f} (FLOP floor)' for c, live in pairs]
    mem_note = ('autograd saved: bytes kept for backward in one step, i.e. the activation memory a step adds (the '
                'two-step mode sums its two graphs, which never coexist); CUDA peak: allocator peak during a step '
                'above the memory held before it (only with --device cuda)')
    lines += ['', mem_note, f'machine: {platform.platform()}, {os.cpu_count()} CPUs']
    print('\n'.join(lines))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'args': {k: v for k, v in vars(args).items() if not k.startswith('_')}, 'floors': floors,
                       'macs': {'student': s_macs, 'teacher': t_macs}, 'results': results}, f, indent=1)


if __name__ == '__main__':
    main()
