"""Build the frozen teacher: network from ``network_t``, weights from ``path.pretrain_network_t``.

The teacher only ever produces labels: eval mode, no gradients, never wrapped in DDP, never saved
with the student and never touched by resume.
"""
import logging
import os

import torch

from basicsr.archs import build_network

from .checkpoint import check_finite, check_state_dict, extract_state_dict, read_checkpoint
from ..archs.rcan_convert import convert_rcan_state_dict, is_original_rcan

logger = logging.getLogger('basicsr')


def load_weights(net: torch.nn.Module, path: str, param_key=None, strict: bool = True,
                 option: str = 'network_t') -> str:
    """Load ``path`` into ``net`` safely; returns the param key used. Errors name the file and the fix."""
    ckpt = read_checkpoint(path, what=f'checkpoint for {option}')
    state, used = extract_state_dict(ckpt, param_key, path)
    if is_original_rcan(state) and 'head.0.weight' not in net.state_dict():
        state = _convert_original_rcan(net, state, path)
    check_finite(state, path, f'checkpoint for {option}')
    check_state_dict(net, state, path, option, strict=strict)
    net.load_state_dict(state, strict=strict)
    return used


def _convert_original_rcan(net: torch.nn.Module, state, path: str):
    """Original RCAN release (EDSR-PyTorch names) into a BasicSR RCAN: rename keys, check the mean."""
    state, file_mean = convert_rcan_state_dict(state, path)
    logger.info(f'{path}: original RCAN checkpoint (EDSR-PyTorch key names) converted to BasicSR RCAN keys '
                f'({len(state)} tensors; MeanShift layers dropped).')
    net_mean = getattr(net, 'mean', None)
    if file_mean is not None and torch.is_tensor(net_mean):
        ours = tuple(net_mean.flatten().tolist())
        if len(ours) == len(file_mean) and max(abs(a - b) for a, b in zip(ours, file_mean)) > 1e-3:
            logger.warning(f'{path} was trained with RGB mean {file_mean}, the network uses {ours}: set '
                           f'`rgb_mean: {list(file_mean)}` in the teacher options for identical outputs.')
    return state


def freeze(net: torch.nn.Module) -> torch.nn.Module:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def build_teacher(opt: dict, device: torch.device) -> torch.nn.Module:
    """Teacher from ``opt['network_t']`` and ``opt['path']['pretrain_network_t']`` (``param_key_t``, ``strict_load_t``)."""
    if not opt.get('network_t'):
        raise ValueError('Distillation needs a teacher: add a `network_t:` section (e.g. {type: EDSR, ...}) '
                         'and `path: pretrain_network_t:` to your options file.')
    net = build_network(dict(opt['network_t']))
    path_opt = opt.get('path', {})
    load_path = path_opt.get('pretrain_network_t')
    if getattr(net, 'loads_own_weights', False) and load_path is not None:
        own_path = getattr(net, 'path', None)
        if own_path is None or os.path.abspath(own_path) != os.path.abspath(load_path):
            raise ValueError(f'`network_t: type: {net.__class__.__name__}` reads its weights from its own `path:` '
                             f'({own_path}); `path.pretrain_network_t` ({load_path}) would be ignored. '
                             'Remove `pretrain_network_t` or make both point at the same file.')
    elif load_path is not None:
        used = load_weights(net, load_path, path_opt.get('param_key_t'), path_opt.get('strict_load_t', True))
        logger.info(f'Teacher {net.__class__.__name__} loaded from {load_path} '
                    f"(param key: {used or 'bare state dict'}).")
    elif not getattr(net, 'loads_own_weights', False):
        raise ValueError('`path.pretrain_network_t` is not set: an untrained teacher teaches noise. '
                         'Point it at the teacher checkpoint (.pth or .safetensors).')
    if getattr(net, 'loads_own_weights', False):  # e.g. AutoTeacher: its own reader, the same refusal
        check_finite(net.state_dict(), getattr(net, 'path', None), 'teacher (network_t)')
    return freeze(net.to(device))


def window_multiple(net: torch.nn.Module) -> int:
    """Input sizes must be a multiple of this (window attention, e.g. SwinIR blocks): the largest
    ``window_size`` found on the network or its submodules, else 1. Cached on the module."""
    cached = getattr(net, '_dukd_window_multiple', None)
    if cached is None:
        cached = 1
        for module in net.modules():
            size = getattr(module, 'window_size', 1)
            size = size[0] if isinstance(size, (tuple, list)) else size
            if isinstance(size, int):
                cached = max(cached, size)
        net._dukd_window_multiple = cached
    return cached


@torch.no_grad()
def probe_scale(net: torch.nn.Module, device: torch.device, size: int = 16) -> int:
    """The network's real upscaling factor, measured on a tiny input."""
    multiple = window_multiple(net)
    size = max(size, multiple)
    size += (multiple - size % multiple) % multiple
    was_training = net.training
    net.eval()
    try:
        out = net(torch.rand(1, 3, size, size, device=device))
    finally:
        net.train(was_training)
    return out.shape[-1] // size
