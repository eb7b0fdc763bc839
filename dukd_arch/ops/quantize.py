"""Fake quantization for quantization-aware training (QAT) of SR networks; pure torch, no BasicSR.

* Rounding uses a straight-through estimator (STE): forward ``round(x)`` exactly, backward identity.
* Weights: symmetric, per output channel (dim 0), scale ``max|w| / (2^(k-1) - 1)``, recomputed every
  forward (no state). Integer codes lie in ``[-(2^(k-1) - 1), 2^(k-1) - 1]``: ``2^k - 1`` levels.
* Activations: one learnable clipping value per tensor (PAMS). Unsigned mode (inputs after a ReLU)
  uses ``[0, clip]`` with codes ``0 .. 2^k - 1`` (``2^k`` levels); signed mode uses ``[-clip, clip]``
  with codes ``-(2^(k-1) - 1) .. 2^(k-1) - 1``. The clip is ``clip_init * clip_gain``: ``clip_init``
  is a buffer set from the data on the first forward in training mode, ``clip_gain`` the learnable
  parameter (starts at 1). Keeping the data-driven part in a buffer means an EMA copy that averages
  parameters and copies buffers holds the right clip from the first update on; averaging a clip
  parameter directly would mix in the meaningless pre-initialisation value for thousands of steps.
  In eval mode an uninitialised quantizer passes its input through unquantized.
"""
import math

import torch
from torch import nn

MIN_BITS, MAX_BITS = 2, 8  # 1 bit needs a different (sign) quantizer; exports use an int8 container
_TINY = 1e-8


class _RoundSTE(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` in the forward pass, identity gradient in the backward pass."""
    return _RoundSTE.apply(x)


def check_bits(bits, what: str) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f'{what} must be an integer from {MIN_BITS} to {MAX_BITS}, got {bits!r}; '
                         f'set it in the network options (e.g. `w_bits: 4`, `a_bits: 4`).')
    return bits


def signed_qmax(bits: int) -> int:
    return 2**(bits - 1) - 1


def weight_scale(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel scale, shaped to broadcast against ``weight``."""
    amax = weight.abs().flatten(1).amax(dim=1).clamp_min(_TINY)
    return (amax / signed_qmax(bits)).view(-1, *([1] * (weight.dim() - 1)))


def weight_codes(weight: torch.Tensor, bits: int):
    """Integer codes (as float, STE-rounded) and per-channel scale; ``codes * scale`` is the fake-quantized weight."""
    scale = weight_scale(weight, bits)
    qmax = signed_qmax(bits)
    return round_ste((weight / scale).clamp(-qmax, qmax)), scale


def fake_quantize_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    codes, scale = weight_codes(weight, bits)
    return codes * scale


class WeightQuantizer(nn.Module):
    """Symmetric per-output-channel weight fake-quantizer; its only state is ``num_bits`` (the scale follows the
    weight)."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = check_bits(bits, 'w_bits')
        # saved with the weights: a checkpoint says which width it was trained at (loading checks it)
        self.register_buffer('num_bits', torch.tensor(self.bits))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize_weight(weight, self.bits)

    def extra_repr(self) -> str:
        return f'bits={self.bits}, per_channel=True, symmetric=True'


class ActivationQuantizer(nn.Module):
    """Per-tensor activation fake-quantizer with a learnable clipping value (PAMS-style)."""

    def __init__(self, bits: int, signed: bool, init_percentile: float = 99.9):
        super().__init__()
        self.bits = check_bits(bits, 'a_bits')
        self.register_buffer('num_bits', torch.tensor(self.bits))  # as in WeightQuantizer
        self.signed = bool(signed)
        if not 0 < init_percentile <= 100:
            raise ValueError(f'init_percentile must be in (0, 100], got {init_percentile}')
        self.init_percentile = float(init_percentile)
        self.clip_gain = nn.Parameter(torch.ones(()))
        self.register_buffer('clip_init', torch.ones(()))
        self.register_buffer('initialized', torch.zeros((), dtype=torch.bool))

    @property
    def qmin(self) -> int:
        return -signed_qmax(self.bits) if self.signed else 0

    @property
    def qmax(self) -> int:
        return signed_qmax(self.bits) if self.signed else 2**self.bits - 1

    def clip(self) -> torch.Tensor:
        return (self.clip_init * self.clip_gain).abs().clamp_min(_TINY)

    @torch.no_grad()
    def initialize_from(self, x: torch.Tensor) -> None:
        """Clip = the ``init_percentile`` percentile of |x| (of x clamped at 0 when unsigned); max if that is 0."""
        v = x.detach().float().flatten()
        v = v.abs() if self.signed else v.clamp_min(0)
        if v.numel() > 2**24:  # kthvalue on a strided subsample keeps this cheap on huge batches
            v = v[::math.ceil(v.numel() / 2**24)]
        k = max(1, min(v.numel(), math.ceil(self.init_percentile / 100 * v.numel())))
        value = v.kthvalue(k).values
        if value <= 0:
            value = v.max()
        value = value.clamp_min(1e-6)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(value)  # every rank starts from the same clip
            value /= torch.distributed.get_world_size()
        self.clip_init.fill_(value.item())
        self.clip_gain.fill_(1.0)
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            if not self.training:
                # no clip yet: pass through at full precision (a shape probe must not set clips from its
                # dummy input); the Quant* archs warn when this happens
                return x
            self.initialize_from(x)
        clip = self.clip().to(x.dtype)
        step = clip / self.qmax
        low = -clip if self.signed else torch.zeros_like(clip)
        clipped = torch.minimum(torch.maximum(x, low), clip)  # gradient reaches the clip where x is clipped
        return round_ste(clipped / step) * step

    def extra_repr(self) -> str:
        return f'bits={self.bits}, signed={self.signed}, init_percentile={self.init_percentile}'
