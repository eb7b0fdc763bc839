"""Export a trained quantized student: integer weights, per-channel scales and activation clips.

For every quantized layer ``<name>`` the file holds

* ``<name>.weight_int``   int8, the integer weight codes (``|code| <= 2^(w_bits-1) - 1``),
* ``<name>.weight_scale`` float32, one scale per output channel (weight = code * scale, exactly the
  fake-quantized weight used in training),
* ``<name>.bias``         float32 (unchanged),
* ``<name>.act_clip``     float32 scalar, the learned activation clip; the input is quantized to
  ``round(clamp(x, lo, clip) / step)`` with ``step = clip / qmax`` (metadata gives bits and signedness);

every other state entry (full-precision head, upsampler, tail, SwinIR norms, ...) is stored under its
own name in float32. The safetensors metadata ``quantization`` is a JSON description of the layers.
``export_quantized_student`` does it from an options file and a training checkpoint (the command
``python -m dukd_arch.quant_export`` is a thin wrapper over it).
"""
import json
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from basicsr.archs import build_network

from .quant_layers import QUANT_LAYERS, describe_quantization
from ..ops.quantize import weight_codes
from ..io.network import load_student
from ..io.safetensors_file import read_safetensors_file, save_safetensors_file

FORMAT = 'dukd-quantized-v1'


def export_tensors(net: nn.Module) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(tensors, metadata) for ``net``; raises if a quantizer was never initialised (nothing was trained)."""
    net = getattr(net, 'module', net)
    tensors, layers = OrderedDict(), OrderedDict()
    handled = set()
    for name, m in net.named_modules():
        if not isinstance(m, QUANT_LAYERS):
            continue
        aq = m.act_quant
        if not bool(aq.initialized):
            raise ValueError(f'{name}: its activation clip was never initialised, so this network was not trained '
                             'with quantization; export a checkpoint saved by a quantization-aware run.')
        with torch.no_grad():
            codes, scale = weight_codes(m.weight.detach().float(), m.weight_quant.bits)
        tensors[f'{name}.weight_int'] = codes.to(torch.int8)
        tensors[f'{name}.weight_scale'] = scale.flatten().contiguous()
        tensors[f'{name}.act_clip'] = aq.clip().detach().float().reshape(())
        if m.bias is not None:
            tensors[f'{name}.bias'] = m.bias.detach().float()
        layers[name] = dict(type=type(m).__name__, w_bits=m.weight_quant.bits, a_bits=aq.bits, a_signed=aq.signed,
                            a_qmin=aq.qmin, a_qmax=aq.qmax, weight_shape=list(m.weight.shape))
        handled.update(f'{name}.{k}' for k in m.state_dict())
    if not layers:
        raise ValueError(f'{type(net).__name__} has no quantized layers; export needs a Quant* network '
                         '(e.g. `type: QuantEDSR` with w_bits / a_bits).')
    for key, value in net.state_dict().items():
        if key not in handled:
            tensors[key] = value.detach().float() if value.is_floating_point() else value.detach()
    summary = describe_quantization(net)
    metadata = {
        'format': FORMAT,
        'arch': type(net).__name__,
        'w_bits': json.dumps(summary['w_bits']),
        'a_bits': json.dumps(summary['a_bits']),
        'full_precision': json.dumps(summary['full_precision']),
        'quantization': json.dumps(layers),
    }
    return tensors, metadata


def save_quantized(net: nn.Module, path: str) -> Dict[str, str]:
    tensors, metadata = export_tensors(net)
    save_safetensors_file(tensors, path, metadata)
    return metadata


def export_quantized_student(opt: dict, checkpoint: str, out: str,
                             param_key: Optional[str] = None) -> Tuple[Dict[str, str], str]:
    """Build ``opt['network_g']`` (a Quant* arch), load ``checkpoint`` (``params_ema`` preferred) and write
    ``out``; returns (metadata, param key used)."""
    if not isinstance(opt, dict) or 'network_g' not in opt:
        raise KeyError('the options have no `network_g` section; pass the options file the student was trained with.')
    net = build_network(dict(opt['network_g']))
    used = load_student(net, checkpoint, param_key)
    return save_quantized(net, out), used


def load_quantized(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    tensors, metadata = read_safetensors_file(path, what='quantized export')
    if metadata.get('format') != FORMAT:
        raise ValueError(f'{path} is not a dukd quantized export (format {metadata.get("format")!r}, '
                         f'expected {FORMAT!r}); write one with `python -m dukd_arch.quant_export`.')
    return tensors, metadata


def dequantized_weights(tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> Dict[str, torch.Tensor]:
    """``<layer>.weight`` = int codes x per-channel scale for every quantized layer of an export."""
    out = OrderedDict()
    for name, info in json.loads(metadata['quantization']).items():
        codes, scale = tensors[f'{name}.weight_int'], tensors[f'{name}.weight_scale']
        out[f'{name}.weight'] = codes.float() * scale.view(-1, *([1] * (codes.dim() - 1)))
    return out
