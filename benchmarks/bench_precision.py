"""Step time and accuracy of DUKD training under each precision setting, against fp32.

    python benchmarks/bench_precision.py                       # CPU or the first GPU, default configs
    python benchmarks/bench_precision.py --configs fp32,bf16,fp16,bf16+cl,bf16+compile --steps 50

For every config the same student/teacher initial weights and the same batches are used, and the configs
take turns step by step (so load changes on a shared machine affect them alike). Reported:
* ``ms/step``: mean wall time of a full DUKD training step (teacher + student forwards, backward, Adam, EMA);
* ``fwd PSNR``: the student's forward under the config's autocast vs the fp32 forward, same weights (dB);
* ``teacher PSNR``: the teacher's labels under ``teacher_amp`` vs fp32 labels (dB);
* ``trained PSNR``: the student after the timed steps vs the fp32-trained student, on held-out inputs (dB).
A config is ``<dtype>[+cl][+compile]`` with dtype fp32, bf16 or fp16 (student and teacher).
"""
import argparse
import copy
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dukd_arch  # noqa: E402,F401  (registers the models)
from basicsr.archs import build_network  # noqa: E402
from basicsr.models import build_model  # noqa: E402


def psnr(a, b):
    mse = torch.mean((a.float().clamp(0, 1) - b.float().clamp(0, 1))**2).item()
    return float('inf') if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def make_opt(args, device, teacher_path, config):
    parts = config.split('+')
    dtype, flags = parts[0], set(parts[1:])
    unknown = flags - {'cl', 'compile'}
    if dtype not in ('fp32', 'bf16', 'fp16') or unknown:
        raise SystemExit(f'bad config {config!r}: use <fp32|bf16|fp16>[+cl][+compile]')
    amp = None if dtype == 'fp32' else {'enabled': True, 'dtype': dtype}
    if args.arch == 'edsr':
        student = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': args.feat, 'num_block': args.blocks,
                   'upscale': args.scale}
        teacher = {**student, 'num_feat': args.teacher_feat, 'num_block': args.teacher_blocks}
    else:  # the gain study's and the demo's network family (Real-ESRGAN's compact VGG-style net)
        student = {'type': 'SRVGGNetCompact_basicsr', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': args.feat,
                   'num_conv': args.blocks, 'upscale': args.scale, 'act_type': 'prelu'}
        teacher = {**student, 'num_feat': args.teacher_feat, 'num_conv': args.teacher_blocks}
    return {
        'name': 'bench', 'model_type': 'DUKD', 'scale': args.scale, 'num_gpu': 1 if device.type == 'cuda' else 0,
        'dist': False, 'rank': 0, 'world_size': 1, 'is_train': True,
        'network_g': student, 'network_t': teacher,
        'path': {'pretrain_network_t': teacher_path, 'models': '', 'training_states': '', 'experiments_root': ''},
        'datasets': {'train': {'gt_size': args.gt_size}},
        'train': {
            'ema_decay': 0.999, 'optim_g': {'type': 'Adam', 'lr': 2e-4, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10**6], 'gamma': 0.5},
            'total_iter': args.steps, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
            'kd_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
            'dukd_opt': {'zoom_in': 1, 'zoom_out': True, 'label_consistency': {'prob': 0.3}},
            'amp': amp, 'teacher_amp': None if dtype == 'fp32' else dtype,
            'channels_last': 'cl' in flags, 'compile': 'compile' in flags,
        },
        'val': {'metrics': None},
    }


def batches(args, device, n):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        gt = torch.rand(args.batch, 3, args.gt_size // 8, args.gt_size // 8, generator=g)
        gt = torch.nn.functional.interpolate(gt, size=args.gt_size, mode='bicubic', align_corners=False).clamp(0, 1)
        lq = torch.nn.functional.interpolate(gt, scale_factor=1 / args.scale, mode='area')
        out.append({'lq': lq.to(device), 'gt': gt.to(device)})
    return out


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def build_config(args, device, teacher_path, config, student_init, held_out):
    torch.manual_seed(0)
    model = build_model(make_opt(args, device, teacher_path, config))
    model.get_bare_model(model.net_g).load_state_dict(student_init)
    model.model_ema(0)
    with torch.no_grad():
        fwd = model.student_forward(held_out)
        labels = model.teacher_forward(held_out)
    return model, fwd, labels


def rng_state(device):
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == 'cuda' else None


def set_rng_state(state, device):
    torch.set_rng_state(state[0])
    if device.type == 'cuda':
        torch.cuda.set_rng_state(state[1], device)


def timed_step(model, batch, it, device):
    model.feed_data(batch)
    sync(device)
    t0 = time.perf_counter()
    model.optimize_parameters(it)
    sync(device)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--configs', default='fp32,bf16,fp32+cl,bf16+cl')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--steps', type=int, default=20, help='timed steps (after --warmup)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--gt-size', type=int, default=96)
    p.add_argument('--scale', type=int, default=4)
    p.add_argument('--arch', choices=('edsr', 'srvgg'), default='edsr',
                   help='network family of student and teacher (srvgg: SRVGGNetCompact, as in the gain study)')
    p.add_argument('--feat', type=int, default=64)
    p.add_argument('--blocks', type=int, default=4, help='residual blocks (edsr) or body convolutions (srvgg)')
    p.add_argument('--teacher-feat', type=int, default=128)
    p.add_argument('--teacher-blocks', type=int, default=8)
    args = p.parse_args()
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        opt0 = make_opt(args, device, '', 'fp32')
        teacher_path = os.path.join(tmp, 'teacher.pth')
        torch.save({'params': build_network(copy.deepcopy(opt0['network_t'])).state_dict()}, teacher_path)
        student_init = build_network(copy.deepcopy(opt0['network_g'])).state_dict()
        data = batches(args, device, args.warmup + args.steps)
        held_out = batches(args, device, 1)[0]['lq'][:2]
        configs = ['fp32'] + [c for c in args.configs.split(',') if c != 'fp32']
        built = {c: build_config(args, device, teacher_path, c, student_init, held_out) for c in configs}
        # configs take turns step by step, so a change in machine load hits all of them alike
        times = {c: [] for c in configs}
        torch.manual_seed(1)
        rngs = {c: rng_state(device) for c in configs}  # each config draws the same random upcycling/flips
        for it, batch in enumerate(data, 1):
            for c in configs:
                set_rng_state(rngs[c], device)
                elapsed = timed_step(built[c][0], batch, it, device)
                rngs[c] = rng_state(device)
                if it > args.warmup:
                    times[c].append(elapsed)
        results = {}
        for c in configs:
            model, fwd, labels = built[c]
            net = model.get_bare_model(model.net_g).eval()
            with torch.no_grad():
                trained = net(held_out)
            results[c] = (1000 * sum(times[c]) / len(times[c]), fwd, labels, trained)

    arch = 'EDSR' if args.arch == 'edsr' else 'SRVGGNetCompact'
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU ({torch.get_num_threads()} threads)'
    print(f'device: {name}; torch {torch.__version__}; batch {args.batch}, gt {args.gt_size}px, x{args.scale}, '
          f'student {arch} {args.feat}x{args.blocks}, teacher {arch} {args.teacher_feat}x{args.teacher_blocks}, '
          f'{args.steps} timed steps after {args.warmup} warm-up')
    print('| config | ms/step | speed-up | fwd PSNR vs fp32 | teacher PSNR vs fp32 | trained PSNR vs fp32 |')
    print('|---|---|---|---|---|---|')
    base_ms, base_fwd, base_labels, base_trained = results['fp32']
    for config, (ms, fwd, labels, trained) in results.items():
        print(f'| {config} | {ms:.1f} | {base_ms / ms:.2f}x | {psnr(fwd, base_fwd):.1f} | '
              f'{psnr(labels, base_labels):.1f} | {psnr(trained, base_trained):.1f} |')


if __name__ == '__main__':
    main()
