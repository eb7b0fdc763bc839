"""Model card: size, cost, speed and (with trained weights) quality of the student and its teacher.

    python -m dukd_arch.card -opt options/dukd_edsr_x4.yml [--checkpoint net_g_latest.pth] [--lr-size 64]
                             [--device cpu] [--repeats 20] [--max-images N] [--out model_card.md]

For student and teacher: parameters, FLOPs for one ``lr-size`` x ``lr-size`` LR input
(``torch.utils.flop_counter.FlopCounterMode``; MACs = FLOPs / 2, the "Multi-Adds" SR papers report),
median latency over repeated runs on the device; with trained weights and a validation set in the
options, PSNR / SSIM on the Y channel with crop border = scale (BasicSR's metrics) and the student's PSNR
against the teacher's output. Printed and written as Markdown. ``write_model_card`` is the same for a
training run that has its networks in memory.
"""
import argparse
import copy
import os
import sys
from typing import Optional

import torch

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from .archs.auto_teacher_arch import AutoTeacher
from .devices import command_device
from .options import load_checked_options
from .registry import registered_as
from .model_card import (count_flops, count_parameters, evaluate, measure_latency, render_card,  # noqa: F401
                               write_model_card)
from .io.network import load_student
from .archs.teacher import build_teacher, freeze


def _teacher_or_note(opt: dict, device: torch.device):
    """(teacher, notes, trained): when its file is not there, the untrained network (cost only) and a note."""
    if not opt.get('network_t'):
        return None, [], False
    try:
        return build_teacher(opt, device), [], True
    except (FileNotFoundError, ValueError) as err:
        if not opt.get('path', {}).get('pretrain_network_t') and not registered_as(
                ARCH_REGISTRY, opt['network_t'].get('type'), AutoTeacher):
            raise
        try:
            net = freeze(build_network(copy.deepcopy(dict(opt['network_t']))).to(device))
        except (FileNotFoundError, ValueError):
            return None, [f'teacher left out: {str(err).splitlines()[0]}'], False
        return net, [f'teacher weights not loaded ({str(err).splitlines()[0]}): cost only, no quality.'], False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dukd_arch.card', description=__doc__.split('\n\n')[0])
    parser.add_argument('-opt', required=True, help='options file (train or test)')
    parser.add_argument('--checkpoint', help='trained student (net_g_*.pth; params_ema preferred)')
    parser.add_argument('--param-key', default=None, help='key of the student weights (default: params_ema, ...)')
    parser.add_argument('--lr-size', type=int, default=64, help='LR input size for FLOPs and latency')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: the accelerator if any)')
    parser.add_argument('--repeats', type=int, default=20, help='timed runs per network (median reported)')
    parser.add_argument('--dataset', default=None, help='validation set (name or key) for PSNR/SSIM')
    parser.add_argument('--max-images', type=int, default=None, help='score only the first N images')
    parser.add_argument('--out', default=None, help='Markdown file (default: model_card_<checkpoint name>.md beside '
                        'the run, so the card training wrote is kept; else results/<name>/model_card.md)')
    args = parser.parse_args(argv)
    if args.out and os.path.isdir(args.out):
        parser.error(f'--out {args.out} is a folder; give the card\'s file name, e.g. '
                     f'{os.path.join(args.out, "model_card.md")}')
    for flag, value in (('--lr-size', args.lr_size), ('--repeats', args.repeats), ('--max-images', args.max_images)):
        if value is not None and value < 1:
            parser.error(f'{flag} {value}: must be 1 or more')
    try:
        opt = load_checked_options(args.opt)  # the whole file, as train.py checks it
        device = command_device(args.device)
        net_g = build_network(copy.deepcopy(dict(opt['network_g']))).to(device).eval()
        notes = []
        if args.checkpoint:
            used = load_student(net_g, args.checkpoint, args.param_key)
            notes.append(f'student weights: {args.checkpoint} ({used or "bare state dict"})')
        else:
            notes.append('no --checkpoint: untrained student, cost only, no quality.')
        net_t, teacher_notes, teacher_trained = _teacher_or_note(opt, device)
        notes += teacher_notes
        out = args.out or _default_out(opt, args.checkpoint)
        # quality only for trained networks: an untrained student's PSNR means nothing
        text = write_model_card(opt, net_g, net_t, out, args.lr_size, args.repeats,
                                metrics=bool(args.checkpoint), dataset=args.dataset, max_images=args.max_images,
                                notes=notes, score_teacher=teacher_trained)
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(text)
    print(f'written to {out}')
    return 0


def _default_out(opt: dict, checkpoint: Optional[str]) -> str:
    """Beside the run, named after the checkpoint: the card training wrote at its end (model_card.md) stays."""
    if checkpoint:
        folder = os.path.dirname(os.path.abspath(checkpoint))
        if os.path.basename(folder) == 'models':  # experiments/<name>/models/net_g_*.pth
            folder = os.path.dirname(folder)
        stem = os.path.splitext(os.path.basename(checkpoint))[0]
        return os.path.join(folder, f'model_card_{stem}.md')
    return os.path.join('results', opt.get('name', 'model'), 'model_card.md')


if __name__ == '__main__':
    sys.exit(main())
