"""Quantized Conv2d / Linear layers and the helpers that swap them into a full-precision network.

The layers subclass ``nn.Conv2d`` / ``nn.Linear``, so ``weight`` and ``bias`` keep their names and a
full-precision checkpoint loads into a quantized network; the new state is the bit widths
(``<layer>.weight_quant.num_bits``, ``.act_quant.num_bits``) and the activation quantizer's clip
(``<layer>.act_quant.clip_gain``, ``.clip_init``, ``.initialized``).
"""
import logging
from collections import OrderedDict
from typing import Dict, Iterable, List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from dukd_arch.ops.quantize import ActivationQuantizer, WeightQuantizer

logger = logging.getLogger('basicsr')


class _QuantLayer:
    """Shared by QuantConv2d / QuantLinear: fake-quantize the input activation and the weight."""

    def _init_quantizers(self, w_bits: int, a_bits: int, signed: bool, init_percentile: float):
        self.weight_quant = WeightQuantizer(w_bits)
        self.act_quant = ActivationQuantizer(a_bits, signed, init_percentile)

    def _adopt(self, layer):
        # share the trained Parameters: the quantized layer starts from the full-precision weights
        self.weight = layer.weight
        self.bias = layer.bias
        return self.to(layer.weight.device)


class QuantConv2d(_QuantLayer, nn.Conv2d):

    def __init__(self, *args, w_bits: int = 4, a_bits: int = 4, signed: bool = True, init_percentile: float = 99.9,
                 **kwargs):
        nn.Conv2d.__init__(self, *args, **kwargs)
        self._init_quantizers(w_bits, a_bits, signed, init_percentile)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, w_bits: int, a_bits: int, signed: bool, init_percentile: float = 99.9):
        if type(conv) is not nn.Conv2d:
            raise TypeError(f'expected a plain nn.Conv2d, got {type(conv).__name__}')
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
                padding_mode=conv.padding_mode, w_bits=w_bits, a_bits=a_bits, signed=signed,
                init_percentile=init_percentile)
        return q._adopt(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.act_quant(x), self.weight_quant(self.weight), self.bias)


class QuantLinear(_QuantLayer, nn.Linear):

    def __init__(self, in_features: int, out_features: int, bias: bool = True, w_bits: int = 4, a_bits: int = 4,
                 signed: bool = True, init_percentile: float = 99.9):
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_quantizers(w_bits, a_bits, signed, init_percentile)

    @classmethod
    def from_float(cls, linear: nn.Linear, w_bits: int, a_bits: int, signed: bool, init_percentile: float = 99.9):
        if type(linear) is not nn.Linear:
            raise TypeError(f'expected a plain nn.Linear, got {type(linear).__name__}')
        q = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, w_bits=w_bits, a_bits=a_bits,
                signed=signed, init_percentile=init_percentile)
        return q._adopt(linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.act_quant(x), self.weight_quant(self.weight), self.bias)


QUANT_LAYERS = (QuantConv2d, QuantLinear)


def quantize_layers(net: nn.Module, targets: Iterable[Tuple[str, bool]], w_bits: int, a_bits: int,
                    init_percentile: float = 99.9) -> List[str]:
    """Replace each named Conv2d/Linear in ``targets`` ((name, input_is_signed) pairs) by its quantized version."""
    done = []
    for name, signed in targets:
        parent_name, _, child = name.rpartition('.')
        parent = net.get_submodule(parent_name) if parent_name else net
        layer = getattr(parent, child)
        if type(layer) is nn.Conv2d:
            new = QuantConv2d.from_float(layer, w_bits, a_bits, signed, init_percentile)
        elif type(layer) is nn.Linear:
            new = QuantLinear.from_float(layer, w_bits, a_bits, signed, init_percentile)
        else:
            raise TypeError(f'{name} is a {type(layer).__name__}; only nn.Conv2d and nn.Linear can be quantized')
        setattr(parent, child, new)
        done.append(name)
    return done


def quantizer_state_keys(net: nn.Module) -> List[str]:
    """State-dict keys that belong to quantizers (absent from a full-precision checkpoint)."""
    keys = []
    for name, module in net.named_modules():
        if isinstance(module, (ActivationQuantizer, WeightQuantizer)):
            prefix = f'{name}.' if name else ''
            keys += [prefix + k for k in module.state_dict()]
    return keys


def complete_with_quantizer_state(net: nn.Module, state_dict: Dict) -> Tuple[Dict, List[str]]:
    """``state_dict`` plus the network's current quantizer state for the quantizer keys it lacks."""
    own = net.state_dict()
    added = [k for k in quantizer_state_keys(net) if k not in state_dict]
    full = OrderedDict(state_dict)
    for k in added:
        full[k] = own[k]
    return full, added


def bit_width_mismatches(net: nn.Module, state_dict: Dict) -> List[str]:
    """'w_bits: 2 in the checkpoint, 4 in the network (e.g. body.0.conv1.weight_quant)' for each width that differs.
    Checkpoints without the record (full precision, or saved before it was kept) have nothing to compare."""
    found = {}
    for name, module in net.named_modules():
        if isinstance(module, (WeightQuantizer, ActivationQuantizer)):
            saved = state_dict.get(f'{name}.num_bits' if name else 'num_bits')
            if saved is not None and int(saved) != module.bits:
                kind = 'w_bits' if isinstance(module, WeightQuantizer) else 'a_bits'
                found.setdefault((kind, int(saved), module.bits), name)
    return [f'{kind}: {saved} in the checkpoint, {built} in the network (e.g. {name})'
            for (kind, saved, built), name in found.items()]


def own_bit_widths(net: nn.Module, state_dict: Dict) -> Dict:
    """``state_dict`` with the network's own width records: a deliberate load across widths (non-strict) must
    not leave the record saying other widths than the quantizers use."""
    own = net.state_dict()
    return OrderedDict((k, own[k] if k.endswith('num_bits') and k in own else v) for k, v in state_dict.items())


def load_full_precision(net: nn.Module, state_dict: Dict) -> List[str]:
    """Load a full-precision checkpoint into a quantized ``net``; returns the quantizer keys it did not hold.

    Anything else missing, unexpected or of the wrong shape raises: a quantized student must start from
    exactly its full-precision counterpart.
    """
    full, added = complete_with_quantizer_state(net, own_bit_widths(net, state_dict))
    own = net.state_dict()
    missing = [k for k in own if k not in full]
    unexpected = [k for k in full if k not in own]
    wrong = [f'{k}: checkpoint {tuple(full[k].shape)} vs network {tuple(own[k].shape)}' for k in own
             if k in full and tuple(full[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        raise ValueError(f'the full-precision checkpoint does not fit {type(net).__name__}: missing {missing[:5]}, '
                         f'unexpected {unexpected[:5]}, shape mismatches {wrong[:5]}. Build the quantized network '
                         'with the same constructor arguments (num_feat, num_block, upscale, ...) as the '
                         'full-precision student.')
    nn.Module.load_state_dict(net, full, strict=True)
    return added


def uninitialized_quantizers(net: nn.Module) -> List[str]:
    """Names of activation quantizers whose clip has not been set from data yet."""
    return [n for n, m in net.named_modules() if isinstance(m, ActivationQuantizer) and not bool(m.initialized)]


@torch.no_grad()
def initialize_quantizers(net: nn.Module, x: torch.Tensor) -> int:
    """Set every uninitialised activation clip from one forward of ``x`` (post-training calibration).

    Returns how many quantizers were initialised. The network's train/eval mode is restored.
    """
    quantizers = uninitialized_quantizers(net)
    was_training = net.training
    net.train()
    try:
        net(x)
    finally:
        net.train(was_training)
    return len(quantizers)


def describe_quantization(net: nn.Module) -> Dict:
    """Bit widths and which Conv2d/Linear layers are quantized vs full precision."""
    quantized, full_precision = [], []
    for name, module in net.named_modules():
        if isinstance(module, QUANT_LAYERS):
            aq = module.act_quant
            quantized.append(
                OrderedDict(
                    name=name, type=type(module).__name__, w_bits=module.weight_quant.bits, a_bits=aq.bits,
                    a_signed=aq.signed, initialized=bool(aq.initialized),
                    clip=float(aq.clip().detach()) if bool(aq.initialized) else None))
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            full_precision.append(name)
    w_bits = sorted({q['w_bits'] for q in quantized})
    a_bits = sorted({q['a_bits'] for q in quantized})
    return OrderedDict(
        w_bits=w_bits[0] if len(w_bits) == 1 else w_bits, a_bits=a_bits[0] if len(a_bits) == 1 else a_bits,
        quantized=quantized, full_precision=full_precision)


def format_quantization(net: nn.Module) -> str:
    """One readable paragraph for logs."""
    d = describe_quantization(net)
    n_q, n_fp = len(d['quantized']), len(d['full_precision'])
    unsigned = sum(not q['a_signed'] for q in d['quantized'])
    return (f'{type(net).__name__}: W{d["w_bits"]}A{d["a_bits"]}, {n_q} quantized layers ({unsigned} with unsigned '
            f'activations), {n_fp} full precision: {", ".join(d["full_precision"])}')
