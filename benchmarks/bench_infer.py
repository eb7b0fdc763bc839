"""Inference speed and peak memory, tiled against untiled, on a real 2 MP photo (``python -m dukd_arch.infer``'s
``StudentUpsampler``).

    python benchmarks/bench_infer.py                                  # CPU, the demo student, 1 thread
    python benchmarks/bench_infer.py --device cuda --configs whole,tile512,tile256,whole+fp16,tile256+fp16
    python benchmarks/bench_infer.py --checkpoint experiments/demo_student_dukd/models/net_g_latest.pth

Input: ``skimage/data/retina.jpg`` (1411 x 1411 = 1.99 MP, shipped with scikit-image, no download), upscaled
by the student's scale. Without ``--checkpoint`` the network of ``-opt`` (default: the demo student) runs with
random weights: speed and memory do not depend on the weights. Every config runs in its own process, so
``peak MB`` (CPU: the process's maximum resident set, above its level once network and photo are loaded; CUDA:
``torch.cuda.max_memory_allocated``) is that config's own. ``images/s`` is 1 / median of ``--repeats`` timed
runs after one warm-up. ``max diff`` is the largest |tiled - untiled| output difference in 8-bit levels
(tile context = the measured receptive field).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def photo():
    import cv2
    import skimage
    path = os.path.join(os.path.dirname(skimage.__file__), 'data', 'retina.jpg')
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SystemExit(f'{path} is missing: install scikit-image (pip install scikit-image)')
    return img


def _rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_config(args) -> dict:
    """One config, in this process: warm-up, timed runs, peak memory, output saved for the diff."""
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    from dukd_arch.upsampler import StudentUpsampler
    name = args.run
    tile = int(name.split('+')[0][4:]) if name.startswith('tile') else 0
    half = name.endswith('+fp16')
    up = StudentUpsampler(args.checkpoint, args.opt, device=args.device, tile=tile, half=half)
    img = photo()
    cuda = up.device.type == 'cuda'
    up.enhance(img[:64, :64])  # loads kernels; the peak below is measured from here
    base = _rss_mb()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats + 1):
        start = time.perf_counter()
        out = up.enhance(img)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _rss_mb() - base
    np.save(os.path.join(args.workdir, f'{name}.npy'), out)
    return {'config': name, 'tile': tile, 'tile_pad': up.tile_pad if tile else 0, 'fp16': half,
            'receptive_field': up.receptive_field, 'scale': up.scale, 'seconds': statistics.median(times[1:]),
            'peak_mb': peak, 'input': f'{img.shape[1]}x{img.shape[0]}', 'description': up.description}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('-opt', '--opt', default=os.path.join(REPO, 'options', 'demo', 'train_student_dukd.yml'))
    p.add_argument('--checkpoint', default=None, help='trained student; default: random weights of -opt network_g')
    p.add_argument('--device', default='cpu')
    p.add_argument('--configs', default='whole,tile512,tile256,tile128',
                   help='comma list of whole | tile<N>, each optionally +fp16 (CUDA)')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--run', default=None, help=argparse.SUPPRESS)
    p.add_argument('--workdir', default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run:
        print(json.dumps(run_config(args)))
        return
    import numpy as np
    with tempfile.TemporaryDirectory() as workdir:
        if args.checkpoint is None:
            import torch
            import dukd_arch  # noqa: F401
            from basicsr.archs import build_network
            from dukd_arch.options.file import load_options
            torch.manual_seed(0)
            net = build_network(dict(load_options(args.opt)['network_g']))
            args.checkpoint = os.path.join(workdir, 'random_student.pth')
            torch.save({'params': net.state_dict()}, args.checkpoint)
        rows = []
        for name in args.configs.split(','):
            cmd = [sys.executable, os.path.abspath(__file__), '--run', name, '--workdir', workdir, '-opt', args.opt,
                   '--checkpoint', args.checkpoint, '--device', args.device, '--repeats', str(args.repeats),
                   '--threads', str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS':
                                                                             str(args.threads)})
            if done.returncode:
                raise SystemExit(f'{name} failed:\n{done.stderr[-3000:]}')
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        ref_name = next((r['config'] for r in rows if r['tile'] == 0 and not r['fp16']), None)
        ref = np.load(os.path.join(workdir, f'{ref_name}.npy')).astype(int) if ref_name else None
        first = rows[0]
        print(f"{first['description']}; x{first['scale']} on a {first['input']} photo (skimage retina.jpg), "
              f"device {args.device}, {args.threads} thread(s), median of {args.repeats}; receptive field "
              f"{first['receptive_field']} px\n")
        print('| config | tile / context (LR px) | images/s | s/image | peak MB | max diff vs whole (8-bit levels) |')
        print('|---|---|---|---|---|---|')
        for r in rows:
            diff = '' if ref is None else int(np.abs(np.load(os.path.join(workdir, f"{r['config']}.npy"))
                                                     .astype(int) - ref).max())
            tiles = f"{r['tile']} / {r['tile_pad']}" if r['tile'] else 'whole image'
            print(f"| {r['config']} | {tiles} | {1 / r['seconds']:.3f} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | "
                  f'{diff} |')


if __name__ == '__main__':
    main()
