"""Pad inputs to a multiple of a window size and crop the upscaled output (SwinIR-style networks)."""
from typing import Tuple

import torch
import torch.nn.functional as F


def padding_needed(size: int, multiple: int) -> int:
    return (multiple - size % multiple) % multiple


def fits_window(h: int, w: int, multiple: int) -> bool:
    """Whether an ``h x w`` input can be reflect-padded to a multiple of ``multiple`` (padding < size)."""
    return padding_needed(h, multiple) < h and padding_needed(w, multiple) < w


def pad_to_multiple(x: torch.Tensor, multiple: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Reflect-pad the bottom/right of ``x`` so H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = padding_needed(h, multiple), padding_needed(w, multiple)
    if ph == 0 and pw == 0:
        return x, (0, 0)
    if not fits_window(h, w, multiple):
        raise ValueError(f'an input of {h}x{w} cannot be reflect-padded to a multiple of the window size {multiple} '
                         f'(needs {ph}x{pw} more rows/cols than it has); use a larger patch or a smaller window')
    return F.pad(x, (0, pw, 0, ph), mode='reflect'), (ph, pw)


def forward_padded(net: torch.nn.Module, x: torch.Tensor, multiple: int, scale: int) -> torch.Tensor:
    """``net(x)`` for a network that needs sizes divisible by ``multiple``; output cropped to ``scale * size``."""
    if multiple <= 1:
        return net(x)
    h, w = x.shape[-2:]
    padded, _ = pad_to_multiple(x, multiple)
    return net(padded)[..., :h * scale, :w * scale]
