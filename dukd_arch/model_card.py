"""Model card: size, cost, speed and (with trained weights) quality of a student and its teacher.

For each network: parameters, FLOPs for one ``lr_size`` x ``lr_size`` LR input
(``torch.utils.flop_counter.FlopCounterMode``; MACs = FLOPs / 2, the "Multi-Adds" SR papers report),
median latency over repeated runs on its device; with a validation set in the options, PSNR / SSIM on
the Y channel with crop border = scale (BasicSR's metrics) and the student's PSNR against the teacher's
output. ``write_model_card`` is what training calls at its end; ``python -m dukd_arch.card`` is the command.
"""
import copy
import os
import platform
import statistics
import time
from typing import Dict, List, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img

from .ops import forward_padded
from .archs.teacher import window_multiple


def count_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _run(net: torch.nn.Module, x: torch.Tensor, scale: int) -> torch.Tensor:
    return forward_padded(net, x, window_multiple(net), scale)


def _device_of(net: torch.nn.Module) -> torch.device:
    first = next(iter(net.parameters()), None)
    return first.device if first is not None else torch.device('cpu')


def _synchronize(device: torch.device) -> None:
    if device.type != 'cpu':
        torch.accelerator.synchronize(device)


@torch.no_grad()
def count_flops(net: torch.nn.Module, lr_size: int, scale: int, in_ch: int = 3) -> int:
    """Floating-point operations of one forward pass on a 1 x in_ch x lr_size x lr_size input."""
    x = torch.rand(1, in_ch, lr_size, lr_size, device=_device_of(net))
    with FlopCounterMode(display=False) as counter:
        _run(net, x, scale)
    return counter.get_total_flops()


@torch.no_grad()
def measure_latency(net: torch.nn.Module, lr_size: int, scale: int, repeats: int = 20, warmup: int = 3,
                    in_ch: int = 3) -> float:
    """Median wall time (ms) of one forward pass, batch 1, after ``warmup`` untimed runs."""
    device = _device_of(net)
    x = torch.rand(1, in_ch, lr_size, lr_size, device=device)
    for _ in range(warmup):
        _run(net, x, scale)
    _synchronize(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        _run(net, x, scale)
        _synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _val_dataset_opt(opt: dict, name: Optional[str] = None) -> Optional[dict]:
    """The options of the validation set to score on: ``name`` (dataset name or key) or the first val/test set."""
    datasets = opt.get('datasets') or {}
    candidates = [(k, v) for k, v in datasets.items() if not k.startswith('train')]
    if name is not None:
        for key, value in candidates:
            if name in (key, value.get('name')):
                return _with_phase(opt, key, value)
        raise ValueError(f'--dataset {name!r}: not among the validation sets {[k for k, _ in candidates]}')
    return _with_phase(opt, *candidates[0]) if candidates else None


def _with_phase(opt, key, value):
    dataset_opt = copy.deepcopy(dict(value))
    dataset_opt['phase'] = key.split('_')[0]
    dataset_opt['scale'] = opt['scale']
    return dataset_opt


@torch.no_grad()
def evaluate(nets: Dict[str, torch.nn.Module], dataset_opt: dict, scale: int,
             max_images: Optional[int] = None) -> Dict[str, Dict[str, float]]:
    """Mean PSNR / SSIM (Y, crop = scale) of each network on a paired set, plus student vs teacher PSNR."""
    from basicsr.data import build_dataset
    dataset = build_dataset(dataset_opt)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    if n == 0:
        raise ValueError(f"validation set {dataset_opt.get('name')} is empty")
    sums = {name: {'psnr': 0.0, 'ssim': 0.0} for name in nets}
    vs_teacher = []
    for i in range(n):
        item = dataset[i]
        gt = tensor2img(item['gt'])
        outs = {}
        for name, net in nets.items():
            lq = item['lq'][None].to(_device_of(net))
            outs[name] = tensor2img(_run(net, lq, scale).cpu())
            sums[name]['psnr'] += calculate_psnr(outs[name], gt, scale, test_y_channel=True)
            sums[name]['ssim'] += calculate_ssim(outs[name], gt, scale, test_y_channel=True)
        if 'student' in outs and 'teacher' in outs:
            vs_teacher.append(calculate_psnr(outs['student'], outs['teacher'], scale, test_y_channel=True))
    result = {name: {k: v / n for k, v in s.items()} for name, s in sums.items()}
    if vs_teacher:
        result['student_vs_teacher'] = {'psnr': statistics.mean(vs_teacher), 'images': n}
    for name in nets:
        result[name]['images'] = n
    return result


def _device_words(device: torch.device) -> str:
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)} (CUDA)'
    if device.type == 'cpu':
        return f'CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads'
    return str(device)


def _describe(net: torch.nn.Module, net_opt: Optional[dict]) -> str:
    arch = getattr(net, 'architecture', None) or net.__class__.__name__
    if getattr(net, 'architecture', None):  # AutoTeacher: what spandrel detected, not the option keys
        tags = ', '.join(getattr(net, 'tags', ()) or ())
        return f"{arch} x{net.scale} via AutoTeacher" + (f' ({tags})' if tags else '')
    if not net_opt:
        return arch
    shown = [f'{k} {v}' for k, v in net_opt.items()
             if k in ('num_feat', 'num_block', 'num_group', 'embed_dim', 'depths', 'num_heads', 'window_size')]
    return f"{arch} ({', '.join(shown)})" if shown else arch


def _num(value: float) -> str:
    return f'{value:.2f}' if value >= 1 else f'{value:.3g}'


def render_card(name: str, scale: int, rows: List[dict], lr_size: int, device: torch.device, repeats: int,
                quality: Optional[Dict] = None, dataset: Optional[str] = None, notes: List[str] = ()) -> str:
    lines = [f'# Model card: {name}', '',
             f'Scale x{scale}. Cost for one {lr_size}x{lr_size} LR input ({lr_size * scale}x{lr_size * scale} '
             f'output), batch 1, float32. Latency: median of {repeats} runs after 3 warm-up runs on '
             f'{_device_words(device)}, torch {torch.__version__}.', '',
             '| role | network | parameters | GFLOPs | GMACs | latency (ms) |', '|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['role']} | {r['network']} | {r['params'] / 1e6:.3f}M | {_num(r['flops'] / 1e9)} | "
                     f"{_num(r['flops'] / 2e9)} | {_num(r['latency_ms'])} |")
    by_role = {r['role']: r for r in rows}
    if 'student' in by_role and 'teacher' in by_role:
        s, t = by_role['student'], by_role['teacher']
        lines += ['', f"Student / teacher: {100 * s['params'] / t['params']:.1f}% of the parameters, "
                  f"{100 * s['flops'] / max(t['flops'], 1):.1f}% of the FLOPs, "
                  f"teacher / student latency {t['latency_ms'] / max(s['latency_ms'], 1e-9):.2f}."]
    if quality:
        lines += ['', f'## Quality on {dataset} (Y channel, crop border {scale})', '',
                  '| role | PSNR (dB) | SSIM | images |', '|---|---|---|---|']
        for role in ('student', 'teacher'):
            if role in quality:
                q = quality[role]
                lines.append(f"| {role} | {q['psnr']:.2f} | {q['ssim']:.4f} | {q['images']} |")
        if 'student_vs_teacher' in quality:
            q = quality['student_vs_teacher']
            lines.append(f"| student vs teacher output | {q['psnr']:.2f} | | {q['images']} |")
    if notes:
        lines += [''] + [f'- {note}' for note in notes]
    return '\n'.join(lines) + '\n'


def write_model_card(opt: dict, net_g: torch.nn.Module, net_t: Optional[torch.nn.Module], out_path: str,
                     lr_size: int = 64, repeats: int = 20, metrics: bool = True, dataset: Optional[str] = None,
                     max_images: Optional[int] = None, notes: List[str] = (), score_teacher: bool = True) -> str:
    """Write (and return) the Markdown card for ``net_g`` (and ``net_t`` when given).

    The networks are measured where they are (their device); they are put in eval mode for the card and
    given back in their previous mode. ``metrics``: score the networks on the validation set of ``opt``
    (``dataset`` picks one by name) when there is one; ``score_teacher=False`` for an untrained teacher.
    """
    scale = int(opt['scale'])
    nets = {'student': net_g}
    if net_t is not None:
        nets['teacher'] = net_t
    modes = {name: net.training for name, net in nets.items()}
    rows = []
    try:
        for name, net in nets.items():
            net.eval()
            in_ch = (opt.get('network_g' if name == 'student' else 'network_t') or {}).get('num_in_ch', 3)
            rows.append({
                'role': name,
                'network': _describe(net, opt.get('network_g' if name == 'student' else 'network_t')),
                'params': count_parameters(net),
                'flops': count_flops(net, lr_size, scale, in_ch),
                'latency_ms': measure_latency(net, lr_size, scale, repeats, in_ch=in_ch),
            })
        quality, dataset_name = None, None
        dataset_opt = _val_dataset_opt(opt, dataset) if metrics else None
        if dataset_opt is not None:
            scored = {k: v for k, v in nets.items() if k == 'student' or score_teacher}
            quality = evaluate(scored, dataset_opt, scale, max_images)
            dataset_name = dataset_opt.get('name')
    finally:
        for name, net in nets.items():
            net.train(modes[name])
    text = render_card(opt.get('name', 'model'), scale, rows, lr_size, _device_of(net_g), repeats, quality,
                       dataset_name, notes)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, 'w') as f:
        f.write(text)
    return text
