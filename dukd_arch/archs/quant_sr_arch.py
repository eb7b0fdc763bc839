"""Quantized students: BasicSR's EDSR, RCAN and SwinIR with fake-quantized body layers.

Each arch takes the BasicSR constructor's arguments plus ``w_bits`` / ``a_bits``, builds the BasicSR
network and swaps the body layers for QuantConv2d / QuantLinear; the head (``conv_first``), the
upsampler and ``conv_last`` stay full precision (the common SR QAT recipe). Parameter names equal
the full-precision arch's, so a full-precision student checkpoint initialises the quantized one;
``load_state_dict`` fills in (and logs) only the new quantizer entries, anything else is torch's
usual strict / non-strict check.
"""
import logging
from typing import List, Tuple

from torch import nn

from basicsr.archs.edsr_arch import EDSR
from basicsr.archs.rcan_arch import RCAN
from basicsr.archs.swinir_arch import SwinIR
from basicsr.utils.registry import ARCH_REGISTRY

from .quant_layers import (bit_width_mismatches, complete_with_quantizer_state, format_quantization, own_bit_widths,
                           quantize_layers, uninitialized_quantizers)

logger = logging.getLogger('basicsr')


class _QuantizedArch:
    """Mixin: quantize the listed layers after the full-precision network is built; FP-checkpoint loading."""

    def _quantize(self, targets: List[Tuple[str, bool]], w_bits: int, a_bits: int, act_init_percentile: float):
        self.w_bits, self.a_bits = w_bits, a_bits
        self.quantized_layers = quantize_layers(self, targets, w_bits, a_bits, act_init_percentile)
        logger.info(format_quantization(self))

    def forward(self, x):
        if not self.training and not getattr(self, '_warned_uninitialized', False) and uninitialized_quantizers(self):
            self._warned_uninitialized = True
            logger.warning(f'{type(self).__name__} runs in eval mode before its activation clips were set from data, '
                           'so its activations are NOT quantized (expected only for the start-up shape probe). '
                           'For real evaluation load a trained quantized checkpoint, or calibrate with '
                           'dukd_arch.archs.quant_layers.initialize_quantizers(net, lr_batch).')
        return super().forward(x)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        wrong = bit_width_mismatches(self, state_dict)
        if wrong and strict:
            raise ValueError(f'{type(self).__name__}: the checkpoint was trained at other bit widths than network_g '
                             f'builds ({"; ".join(wrong)}); its weights and clips are only valid at those. Set '
                             'network_g w_bits / a_bits to the checkpoint\'s; to start training at new widths from it '
                             'on purpose, load it with strict_load_g: false.')
        full, added = complete_with_quantizer_state(self, own_bit_widths(self, state_dict))
        if added:
            logger.info(f'{type(self).__name__}: the checkpoint has no quantizer state for {len(added)} entries '
                        f'(a full-precision checkpoint); they keep their current values and uninitialised clips '
                        f'are set from the first training batch. First ones: {added[:3]}')
        return nn.Module.load_state_dict(self, full, strict=strict, assign=assign)


@ARCH_REGISTRY.register()
class QuantEDSR(_QuantizedArch, EDSR):
    """EDSR with quantized residual blocks (conv1: signed input, conv2: post-ReLU unsigned input).

    ``quant_conv_after_body`` also quantizes the conv closing the body (full precision by default, as in PAMS).
    """

    def __init__(self, num_in_ch, num_out_ch, num_feat=64, num_block=16, upscale=4, res_scale=1, img_range=255.,
                 rgb_mean=(0.4488, 0.4371, 0.4040), w_bits=4, a_bits=4, quant_conv_after_body=False,
                 act_init_percentile=99.9):
        super().__init__(num_in_ch, num_out_ch, num_feat=num_feat, num_block=num_block, upscale=upscale,
                         res_scale=res_scale, img_range=img_range, rgb_mean=rgb_mean)
        targets = []
        for i in range(num_block):
            targets += [(f'body.{i}.conv1', True), (f'body.{i}.conv2', False)]
        if quant_conv_after_body:
            targets.append(('conv_after_body', True))
        self._quantize(targets, w_bits, a_bits, act_init_percentile)


@ARCH_REGISTRY.register()
class QuantRCAN(_QuantizedArch, RCAN):
    """RCAN with quantized RCAB convs (first: signed input, second: post-ReLU unsigned input).

    ``quant_group_conv`` (default on): the conv closing each residual group. ``quant_attention`` (default off):
    the two 1x1 channel-attention convs, whose sigmoid gate is sensitive and whose cost is negligible.
    ``quant_conv_after_body`` (default off): the conv closing the body.
    """

    def __init__(self, num_in_ch, num_out_ch, num_feat=64, num_group=10, num_block=16, squeeze_factor=16, upscale=4,
                 res_scale=1, img_range=255., rgb_mean=(0.4488, 0.4371, 0.4040), w_bits=4, a_bits=4,
                 quant_group_conv=True, quant_attention=False, quant_conv_after_body=False,
                 act_init_percentile=99.9):
        super().__init__(num_in_ch, num_out_ch, num_feat=num_feat, num_group=num_group, num_block=num_block,
                         squeeze_factor=squeeze_factor, upscale=upscale, res_scale=res_scale, img_range=img_range,
                         rgb_mean=rgb_mean)
        targets = []
        for g in range(num_group):
            for b in range(num_block):
                block = f'body.{g}.residual_group.{b}.rcab'
                targets += [(f'{block}.0', True), (f'{block}.2', False)]
                if quant_attention:
                    targets += [(f'{block}.3.attention.1', True), (f'{block}.3.attention.3', False)]
            if quant_group_conv:
                targets.append((f'body.{g}.conv', True))
        if quant_conv_after_body:
            targets.append(('conv_after_body', True))
        self._quantize(targets, w_bits, a_bits, act_init_percentile)


@ARCH_REGISTRY.register()
class QuantSwinIR(_QuantizedArch, SwinIR):
    """SwinIR with quantized Linear layers in every Swin transformer block (qkv, proj, fc1, fc2).

    All four see signed inputs (LayerNorm outputs, attention outputs, GELU outputs dip below 0). The
    attention matmuls, LayerNorms and softmax stay full precision. ``quant_rstb_conv`` (default off) also
    quantizes the conv(s) closing each residual Swin transformer block.
    """

    def __init__(self, w_bits=4, a_bits=4, quant_rstb_conv=False, act_init_percentile=99.9, **kwargs):
        super().__init__(**kwargs)
        targets = []
        for i, layer in enumerate(self.layers):
            for j, _ in enumerate(layer.residual_group.blocks):
                block = f'layers.{i}.residual_group.blocks.{j}'
                targets += [(f'{block}.attn.qkv', True), (f'{block}.attn.proj', True), (f'{block}.mlp.fc1', True),
                            (f'{block}.mlp.fc2', True)]
            if quant_rstb_conv:
                targets += [(f'layers.{i}.{name}', True) for name, m in layer.named_modules()
                            if name.startswith('conv') and type(m) is nn.Conv2d]
        self._quantize(targets, w_bits, a_bits, act_init_percentile)
