"""Invertible augmentations for label-consistency regularisation and self-ensemble.

A draw is a bool tensor ``flags`` of shape (B, 4), one column per op in ``AUGMENTATION_OPS``; the
ops are applied in that order and undone in reverse order, which is the exact inverse of their
composition (transpose does not commute with a single flip, so order matters).
"""
from typing import Optional, Sequence

import torch

AUGMENTATION_OPS = ('invert', 'vflip', 'hflip', 'transpose')

_OPS = {
    'invert': lambda x: 1.0 - x,  # colour inversion of [0, 1] images; its own inverse
    'vflip': lambda x: x.flip(-2),
    'hflip': lambda x: x.flip(-1),
    'transpose': lambda x: x.transpose(-2, -1),
}


def sample_augmentations(batch: int, prob: float, ops: Sequence[str] = AUGMENTATION_OPS,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Each op in ``ops`` is switched on independently with probability ``prob`` per sample."""
    unknown = set(ops) - set(AUGMENTATION_OPS)
    if unknown:
        raise ValueError(f'label_consistency.ops: unknown {sorted(unknown)}; choose from {AUGMENTATION_OPS}')
    draw = torch.rand(batch, len(AUGMENTATION_OPS), generator=generator) < prob
    enabled = torch.tensor([op in ops for op in AUGMENTATION_OPS])
    return draw & enabled


def _apply(x: torch.Tensor, flags: torch.Tensor, order) -> torch.Tensor:
    if flags.shape != (x.shape[0], len(AUGMENTATION_OPS)):
        raise ValueError(f'flags must be ({x.shape[0]}, {len(AUGMENTATION_OPS)}), got {tuple(flags.shape)}')
    active = flags.any(dim=0).tolist()  # flags are drawn on the CPU: no device sync per op
    flags = flags.to(x.device, non_blocking=True)
    for j in order:
        if not active[j]:
            continue
        column = flags[:, j]
        op = AUGMENTATION_OPS[j]
        if op == 'transpose' and x.shape[-1] != x.shape[-2]:
            raise ValueError(f'transpose needs square inputs, got {x.shape[-2]}x{x.shape[-1]}; '
                             'drop it from label_consistency.ops or use square patches')
        x = torch.where(column.view(-1, *([1] * (x.dim() - 1))), _OPS[op](x), x)
    return x


def apply_augmentations(x: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """F(x): per sample, the ops flagged in ``flags`` applied in ``AUGMENTATION_OPS`` order."""
    return _apply(x, flags, range(len(AUGMENTATION_OPS)))


def invert_augmentations(x: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """F^-1(x): the flagged ops undone in reverse order."""
    return _apply(x, flags, reversed(range(len(AUGMENTATION_OPS))))


def transform(x: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
    """The named ops applied to the whole batch in ``AUGMENTATION_OPS`` order (shapes may change)."""
    for op in AUGMENTATION_OPS:
        if op in ops:
            x = _OPS[op](x)
    return x


def inverse_transform(x: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
    """Undo ``transform(x, ops)``: the same ops in reverse order."""
    for op in reversed(AUGMENTATION_OPS):
        if op in ops:
            x = _OPS[op](x)
    return x


# The 8 geometric transforms (dihedral group of the square) used by x8 self-ensemble.
DIHEDRAL_TRANSFORMS = tuple(
    tuple(op for bit, op in enumerate(('vflip', 'hflip', 'transpose')) if code >> bit & 1) for code in range(8))
