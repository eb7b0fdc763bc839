"""Score SR models on the standard benchmarks, the way SR papers report them.

    python -m dukd_arch.benchmark --checkpoint CKPT [-opt FILE | --network YAML] [--name NAME] [--checkpoint ...]
        --sets datasets/Set5 datasets/Set14 ... --scale 4 [--device cpu|cuda] [--self-ensemble]
        [--reference NAME] [--out results.md]

Each ``--checkpoint`` is a model (a row); ``-opt`` / ``--network`` given once apply to every model, given
once per model they pair in order; ``--name`` names the row (once per model; default: the file name). A
checkpoint is anything ``python -m dukd_arch.infer`` takes (a training ``.pth`` + options, an exported
``.safetensors``, an ``.onnx``), a bare state dict with ``--network "{type: PAN, scale: 4}"``, or a
spandrel-readable file with ``--network "{type: AutoTeacher}"``.

Protocol (the benchmark convention): each set is a folder of HR images (or holds ``HR/``); an HR image is
cropped to a multiple of the scale and its LR made with MATLAB's bicubic on uint8
(``matlab_imresize_uint8``, bit-exact to the published ``LR_bicubic`` files). When a set ships
``LR_bicubic/X{scale}/``, the made LR images are compared with it and the comparison is reported. PSNR and
SSIM on the Y channel (BT.601), crop border = scale, with BasicSR's ``calculate_psnr`` / ``calculate_ssim``
on the uint8 output. ``--reference NAME`` adds each model's Y-PSNR to that model's output (the paper's
imitation metric). Cost: parameters, multiply-adds for a 1280x720 output (the NTIRE efficient-SR
convention), median seconds per image and peak memory on the device (CUDA: allocated tensors; CPU: the
process's resident-set growth). Written: a Markdown table in the papers' layout (``--out``), the same data as
JSON beside it and one CSV row per image.
"""
import argparse
import csv
import json
import os
import statistics
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import yaml

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
NTIRE_OUTPUT = (720, 1280)  # (h, w) of the output the multiply-adds are counted for


# ------------------------------------------------------------------------------------------ benchmark sets
def _images(folder: str) -> List[str]:
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTS))


def read_set(folder: str, scale: int) -> Tuple[str, List[Tuple[str, np.ndarray, np.ndarray]], Optional[str]]:
    """``(name, [(stem, HR, LR)], note on the shipped LR)``: HR cropped to a multiple of ``scale`` (BGR uint8),
    LR made by MATLAB bicubic; ``note`` says whether the set's own ``LR_bicubic/X{scale}`` matches ours."""
    from .data.sr_data import bicubic_downsample, modcrop
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'benchmark set not found: {folder!r} (give a folder of HR images, or one holding HR/)')
    hr_dir = os.path.join(folder, 'HR') if os.path.isdir(os.path.join(folder, 'HR')) else folder
    paths = _images(hr_dir)
    if not paths:
        raise FileNotFoundError(f'{hr_dir} holds no images ({", ".join(IMAGE_EXTS)})')
    items = []
    for path in paths:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'{path} is not a readable image')
        if min(img.shape[:2]) < 2 * scale + 11:  # SSIM's 11 px window inside the border of `scale` px
            raise ValueError(f'{path} is {img.shape[1]}x{img.shape[0]}: too small for x{scale} scoring (SSIM needs '
                             f'{2 * scale + 11} px on each side)')
        hr = modcrop(img, scale)
        lr, = bicubic_downsample([hr], scale)
        items.append((os.path.splitext(os.path.basename(path))[0], hr, lr))
    return os.path.basename(os.path.normpath(folder)), items, _compare_shipped_lr(folder, items, scale)


def _compare_shipped_lr(folder: str, items, scale: int) -> Optional[str]:
    lr_dir = os.path.join(folder, 'LR_bicubic', f'X{scale}')
    if not os.path.isdir(lr_dir):
        return None
    same, worst, missing = 0, 0, []
    for stem, _, lr in items:
        shipped = next((p for p in (os.path.join(lr_dir, f'{stem}x{scale}.png'), os.path.join(lr_dir, f'{stem}.png'))
                        if os.path.isfile(p)), None)
        theirs = cv2.imread(shipped, cv2.IMREAD_COLOR) if shipped else None
        if theirs is None or theirs.shape != lr.shape:
            missing.append(stem)
            continue
        diff = int(np.abs(theirs.astype(np.int16) - lr.astype(np.int16)).max())
        same += diff == 0
        worst = max(worst, diff)
    note = f'LR made here equals the shipped LR_bicubic/X{scale} in {same} of {len(items)} images'
    if worst:
        note += f' (largest difference {worst} grey levels)'
    if missing:
        note += f'; no comparable shipped LR for {len(missing)} ({", ".join(missing[:3])})'
    return note


# ----------------------------------------------------------------------------------------------- models
def _network_option(text: Optional[str]) -> Optional[dict]:
    if text is None:
        return None
    try:
        net = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f'--network {text!r} is not YAML ({str(err).splitlines()[0]})') from err
    if not isinstance(net, dict) or 'type' not in net:
        raise ValueError(f'--network {text!r} must be a mapping with a `type`, e.g. "{{type: PAN, scale: 4}}"')
    return net


def load_model(checkpoint: str, options: Optional[str] = None, network: Optional[dict] = None,
               device: Optional[str] = None, self_ensemble: bool = False, scale: Optional[int] = None):
    """A ``StudentUpsampler`` over any checkpoint ``infer`` takes, or a bare / spandrel file with ``network``
    (``AutoTeacher`` reads ``checkpoint``, and is checked against ``scale`` unless the block gives its own)."""
    from .upsampler import StudentUpsampler, UnknownNetworkError
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint!r}')
    if network is not None and network.get('type') in ('AutoTeacher', 'dukd.AutoTeacher'):
        network = {'path': checkpoint, **({'scale': scale} if scale else {}), **network}
    if network is not None:  # named as the user gave it, before StudentUpsampler checks it as network_g
        from .options import check_network
        check_network(network, '--network', 'network')
    opts = {'network_g': network} if network is not None else options
    try:
        return StudentUpsampler(checkpoint, opts, device=device, self_ensemble=self_ensemble)
    except UnknownNetworkError as err:  # a public teacher's bare weights: this command can name the network itself
        raise UnknownNetworkError(f'{err} Or name it here: --network "{{type: PAN, scale: 4}}" (any registered '
                                  'architecture and its arguments), or --network "{type: AutoTeacher}" for a file '
                                  'spandrel reads (its scale is checked against --scale).') from None


@torch.no_grad()
def count_cost(net, scale: int, device: torch.device) -> Tuple[Optional[int], Optional[int]]:
    """(parameters, multiply-adds for a 1280x720 output); None for networks torch cannot see (ONNX)."""
    if not isinstance(net, torch.nn.Module):
        return None, None
    from torch.utils.flop_counter import FlopCounterMode
    params = sum(p.numel() for p in net.parameters())
    x = torch.rand(1, 3, NTIRE_OUTPUT[0] // scale, NTIRE_OUTPUT[1] // scale, device=device,
                   dtype=next(net.parameters()).dtype)
    with FlopCounterMode(display=False) as counter:
        net(x)
    return params, counter.get_total_flops() // 2


class PeakMemory:
    """Peak memory while the block runs: allocated CUDA tensors, or the CPU process's resident-set growth."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0

    @staticmethod
    def _rss() -> int:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    def _sample(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss() - self._base)

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        elif os.path.exists('/proc/self/statm'):
            self._base, self._stop = self._rss(), threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            self.peak = torch.cuda.max_memory_allocated(self.device)
        elif hasattr(self, '_thread'):
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss() - self._base)


def y_metrics(sr: np.ndarray, hr: np.ndarray, scale: int) -> Tuple[float, float]:
    """BasicSR's Y-channel PSNR and SSIM of two BGR uint8 images, border = scale."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    return (float(calculate_psnr(sr, hr, scale, test_y_channel=True)),
            float(calculate_ssim(sr, hr, scale, test_y_channel=True)))


def score_model(upsampler, sets, scale: int, name: str, reference_outputs: Optional[Dict] = None,
                keep_outputs: bool = False):
    """Per-image rows for one model over the sets, its timing / memory, and (optionally) its outputs."""
    from tqdm import tqdm
    if upsampler.scale != scale:
        raise ValueError(f'{name} upscales x{upsampler.scale} (measured on a test input), but --scale is {scale}: '
                         f'pass --scale {upsampler.scale}, or an x{scale} model.')
    rows, times, outputs, peak = [], [], {}, 0
    total = sum(len(items) for _, items, _ in sets)
    with tqdm(total=total, desc=name, unit='image', disable=not sys.stderr.isatty()) as bar:
        for set_name, items, _ in sets:
            for stem, hr, lr in items:
                with PeakMemory(upsampler.device) as mem:
                    start = time.perf_counter()
                    sr = upsampler.enhance(lr)
                    if upsampler.device.type == 'cuda':
                        torch.cuda.synchronize(upsampler.device)
                    times.append(time.perf_counter() - start)
                peak = max(peak, mem.peak)
                if sr.shape != hr.shape:  # the scale was checked: a network that crops or pads its output
                    raise ValueError(f'{name} returned {sr.shape[1]}x{sr.shape[0]} for {set_name}/{stem}, expected '
                                     f'{hr.shape[1]}x{hr.shape[0]} (x{scale} of the LR).')
                psnr, ssim = y_metrics(sr, hr, scale)
                row = {'model': name, 'set': set_name, 'image': stem, 'psnr': psnr, 'ssim': ssim}
                reference = (reference_outputs or {}).get((set_name, stem))
                if reference is not None:  # a reference may cover only some sets
                    row['psnr_to_reference'] = y_metrics(sr, reference, scale)[0]
                rows.append(row)
                if keep_outputs:
                    outputs[(set_name, stem)] = sr
                bar.update()
    return rows, statistics.median(times), peak, outputs


def summarise(rows: List[dict], set_names: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per set: mean PSNR / SSIM (and PSNR to the reference), over the set's images (the papers' average)."""
    out = {}
    for set_name in set_names:
        mine = [r for r in rows if r['set'] == set_name]
        covered = sum('psnr_to_reference' in r for r in mine)
        if 0 < covered < len(mine):  # a mean over part of a set would pass for the set's
            raise ValueError(f'{set_name}: the reference covers {covered} of its {len(mine)} images')
        out[set_name] = {k: float(np.mean([r[k] for r in mine])) for k in ('psnr', 'ssim', 'psnr_to_reference')
                         if mine and k in mine[0]}
    return out


def render_table(models: List[dict], set_names: Sequence[str], scale: int, reference: Optional[str]) -> str:
    def fmt_count(n, unit):
        return '-' if n is None else f'{n / unit:.1f}' if unit > 1e6 else f'{n / unit:.0f}'
    head = ['Model', 'Scale', 'Params (K)', 'Multi-Adds (G)'] + [f'{s} PSNR/SSIM' for s in set_names]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for m in models:
        cells = [m['name'], f'x{scale}', fmt_count(m['params'], 1e3), fmt_count(m['macs'], 1e9)]
        cells += [f"{m['sets'][s]['psnr']:.3f}/{m['sets'][s]['ssim']:.4f}" for s in set_names]
        lines.append('| ' + ' | '.join(cells) + ' |')
    text = '\n'.join(lines) + '\n'
    if reference:
        head = ['Model'] + [f'{s} PSNR to {reference}' for s in set_names]
        lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        for m in models:
            if m['name'] != reference:
                lines.append('| ' + ' | '.join([m['name']] + [f"{m['sets'][s]['psnr_to_reference']:.2f}"
                                                              for s in set_names]) + ' |')
        text += '\n' + '\n'.join(lines) + '\n'
    head = ['Model', 'device', 'median s / image', 'peak memory (MiB)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for m in models:
        lines.append(f"| {m['name']} | {m['device']} | {m['seconds_per_image']:.3f} | {m['peak_memory'] / 2**20:.0f} |")
    return text + '\n' + '\n'.join(lines) + '\n'


def _pair(values: Optional[List], count: int, flag: str) -> List:
    if not values:
        return [None] * count
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ValueError(f'{flag} given {len(values)} times for {count} --checkpoint: give it once, or once per '
                         'checkpoint in the same order')
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dukd_arch.benchmark', description=__doc__.split('\n\n')[0])
    parser.add_argument('--checkpoint', action='append', required=True, help='a model to score (repeatable)')
    parser.add_argument('-opt', '--opt', action='append', help='options file with network_g (once, or per checkpoint)')
    parser.add_argument('--network', action='append', help='network as YAML, e.g. "{type: PAN, scale: 4}"')
    parser.add_argument('--name', action='append', help='row label (default: the checkpoint file name)')
    parser.add_argument('--sets', nargs='+', required=True, help='benchmark folders (HR images, or HR/ inside)')
    parser.add_argument('--scale', type=int, required=True, choices=(2, 3, 4, 8))
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: the accelerator if any)')
    parser.add_argument('--self-ensemble', action='store_true', help='x8 geometric self-ensemble')
    parser.add_argument('--reference', help='NAME of a model: report every other model\'s PSNR to its output')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch\'s)')
    parser.add_argument('--out', help='Markdown table path; .json and .csv are written beside it')
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads {args.threads}: must be 1 or more')
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.out:  # checked now, not after every model is scored
            if os.path.splitext(args.out)[1].lower() in ('.json', '.csv'):
                raise ValueError(f'--out {args.out}: name the Markdown table (e.g. results.md); the .json and .csv '
                                 'are written beside it')
            if os.path.isdir(args.out):
                raise ValueError(f'--out {args.out} is a folder; give the table\'s file name, e.g. '
                                 f'{os.path.join(args.out, "results.md")}')
            parent = os.path.dirname(os.path.abspath(args.out))
            if os.path.exists(parent) and not os.path.isdir(parent):
                raise ValueError(f'--out {args.out}: {parent} is a file, not a folder')
        set_names = [os.path.basename(os.path.normpath(folder)) for folder in args.sets]
        if len(set(set_names)) != len(set_names):  # the columns (and the JSON) are keyed by the folder name
            raise ValueError(f'two --sets folders have the same name ({set_names}): a column per name; rename '
                             'one folder (or link it under another name)')
        n = len(args.checkpoint)
        options, networks = _pair(args.opt, n, '-opt'), _pair(args.network, n, '--network')
        names = _pair(args.name, n, '--name') if args.name and len(args.name) > 1 else (
            args.name if args.name else [os.path.splitext(os.path.basename(c))[0] for c in args.checkpoint])
        if len(set(names)) != n:
            raise ValueError(f'row names must differ ({names}): give --name once per checkpoint')
        if args.reference is not None and args.reference not in names:
            raise ValueError(f'--reference {args.reference!r} is not one of the models {names}')
        sets = [read_set(folder, args.scale) for folder in args.sets]
        upsamplers = [load_model(c, o, _network_option(w), args.device, args.self_ensemble, args.scale)
                      for c, o, w in zip(args.checkpoint, options, networks)]
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    for set_name, items, note in sets:
        print(f'{set_name}: {len(items)} images' + (f'; {note}' if note else ''))
    order = sorted(range(n), key=lambda i: names[i] != args.reference)  # the reference runs first
    reference_outputs, models, all_rows = None, [None] * n, []
    for i in order:
        up = upsamplers[i]
        try:
            rows, seconds, peak, outputs = score_model(up, sets, args.scale, names[i], reference_outputs,
                                                       keep_outputs=names[i] == args.reference)
        except ValueError as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        if names[i] == args.reference:
            reference_outputs = outputs
        params, macs = count_cost(up.net, args.scale, up.device)
        models[i] = {'name': names[i], 'checkpoint': args.checkpoint[i], 'description': up.description,
                     'params': params, 'macs': macs, 'device': str(up.device), 'seconds_per_image': seconds,
                     'peak_memory': peak, 'self_ensemble': args.self_ensemble,
                     'sets': summarise(rows, set_names)}
        all_rows += rows
    table = render_table(models, set_names, args.scale, args.reference)
    print(table)
    if args.out:
        stem = os.path.splitext(args.out)[0]
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(table)
        with open(stem + '.json', 'w') as f:
            json.dump({'scale': args.scale, 'sets': {s: {'images': len(items), 'shipped_lr': note}
                                                      for s, items, note in sets},
                       'models': models}, f, indent=1)
        with open(stem + '.csv', 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in all_rows for k in r)))
            writer.writeheader()
            writer.writerows(all_rows)
        print(f'written: {args.out}, {stem}.json, {stem}.csv')
    return 0


if __name__ == '__main__':
    sys.exit(main())
