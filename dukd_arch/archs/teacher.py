"""Build the frozen teacher: network from ``network_t``, weights from ``path.pretrain_network_t``.

The teacher only ever produces labels: eval mode, no gradients, never wrapped in DDP, never saved
with the student and never touched by resume.
"""
import logging
import os

import torch

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from ..io.checkpoint import check_finite
from ..io.network import load_weights

logger = logging.getLogger('basicsr')


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
    net_opt, path_opt = dict(opt['network_t']), opt.get('path', {})
    if getattr(ARCH_REGISTRY._obj_map.get(net_opt.get('type')), 'loads_own_weights', False):
        net_opt = _own_file_options(net_opt, path_opt)
    net = build_network(net_opt)
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


def _own_file_options(net_opt: dict, path_opt: dict) -> dict:
    """``network_t`` of a teacher that reads its own file (AutoTeacher): ``path.param_key_t`` goes to its
    ``param_key`` instead of being dropped; ``strict_load_t: false`` cannot apply (the file builds the network)."""
    name, key = net_opt['type'], path_opt.get('param_key_t')
    if path_opt.get('strict_load_t', True) is False:
        raise ValueError(f'path.strict_load_t: false cannot apply to `network_t: type: {name}`: it builds the network '
                         'from the weights in its file and loads all of them. Remove strict_load_t, or name the '
                         'architecture in `network_t` and give the file as path.pretrain_network_t.')
    if key is None:
        return net_opt
    if net_opt.get('param_key') not in (None, key):
        raise ValueError(f"path.param_key_t is {key!r} but network_t.param_key is {net_opt['param_key']!r}: {name} "
                         'reads one key from its file; keep one of the two.')
    return {**net_opt, 'param_key': key}


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
