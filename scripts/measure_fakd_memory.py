"""Peak host memory of one FAKD forward + backward: the full affinity matrix vs FAKDLoss's options.

Each variant runs in a fresh process (peak RSS is per process); prints a markdown table.
    python scripts/measure_fakd_memory.py [--batch 16 --size 48 --cs 64 --ct 256]
"""
import argparse
import json
import resource
import subprocess
import sys
import time

VARIANTS = {
    'full affinity (authors\' formula, autograd)': None,
    'FAKDLoss chunk_size 512 (exact)': {'chunk_size': 512},
    'FAKDLoss chunk_size 128 (exact)': {'chunk_size': 128},
    'FAKDLoss max_positions 1024 (estimate)': {'max_positions': 1024, 'chunk_size': 1024},
}


def child(args, variant):
    import torch
    from dukd_arch.losses.fakd_loss import FAKDLoss, spatial_affinity
    torch.manual_seed(0)
    warm = torch.randn(2, 4, 8, 8, requires_grad=True)  # load kernels / thread pools before the baseline
    FAKDLoss(chunk_size=16)([warm], [torch.randn(2, 4, 8, 8)]).backward()
    (spatial_affinity(warm) - 0).abs().mean().backward()
    s = torch.randn(args.batch, args.cs, args.size, args.size, requires_grad=True)
    t = torch.randn(args.batch, args.ct, args.size, args.size)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if variant is None:
        loss = (spatial_affinity(s) - spatial_affinity(t)).abs().mean()
    else:
        loss = FAKDLoss(**variant)([s], [t])
    loss.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({'extra_mib': (peak - base) / 1024, 'seconds': seconds, 'loss': float(loss)}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=48)
    parser.add_argument('--cs', type=int, default=64)
    parser.add_argument('--ct', type=int, default=256)
    parser.add_argument('--child', default=None)
    args = parser.parse_args()
    if args.child is not None:
        return child(args, json.loads(args.child))
    print(f'| B={args.batch}, {args.size}x{args.size} features, {args.cs} -> {args.ct} ch | extra peak RSS (MiB) '
          '| seconds | loss |')
    print('|---|---|---|---|')
    for name, variant in VARIANTS.items():
        cmd = [sys.executable, __file__, '--batch', str(args.batch), '--size', str(args.size), '--cs', str(args.cs),
               '--ct', str(args.ct), '--child', json.dumps(variant)]
        r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['extra_mib']:.0f} | {r['seconds']:.2f} | {r['loss']:.5f} |")


if __name__ == '__main__':
    main()
