"""Mixed-precision options: ``train.amp`` (student), ``train.teacher_amp`` (teacher forwards).

Both accept ``false``/``~``/``fp32`` (off), ``bf16``, ``fp16``, or ``{enabled: bool, dtype: bf16|fp16}``.
Autocast runs on whatever device the model is on (``torch.autocast(device_type=...)``), so the same
options work on CUDA and on the CPU.
"""
import contextlib
from typing import Optional

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}
OFF = (None, False, 'fp32', 'float32', 'none')


def parse_amp(value, option: str) -> Optional[torch.dtype]:
    """The autocast dtype an amp option asks for, or None when it is off."""
    if isinstance(value, dict):
        unknown = set(value) - {'enabled', 'dtype'}
        if unknown:
            raise ValueError(f'{option}: unknown key(s) {sorted(unknown)}; known: enabled, dtype')
        if not value.get('enabled', True):
            return None
        value = value.get('dtype', 'bf16')
    if value is True:
        value = 'bf16'
    if isinstance(value, str):
        value = value.lower()
    if value in OFF:
        return None
    if value not in AMP_DTYPES:
        raise ValueError(f'{option}: dtype {value!r} is not supported; use bf16, fp16 or false '
                         '(e.g. `amp: {enabled: true, dtype: bf16}`)')
    return AMP_DTYPES[value]


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """``torch.autocast`` on ``device`` with ``dtype``; a no-op context when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, dtype: Optional[torch.dtype], logger=None):
    """A GradScaler, enabled only for fp16 (bf16 has fp32's range and needs none).

    Where the device has no grad scaler, fp16 runs unscaled and says so: small gradients may underflow
    to zero; bf16 is the safe choice there.
    """
    wanted = dtype == torch.float16
    try:
        scaler = torch.amp.GradScaler(device.type, enabled=wanted)
    except (RuntimeError, ValueError, AssertionError) as err:
        scaler, reason = torch.amp.GradScaler('cpu', enabled=False), str(err)  # a pass-through
    else:
        reason = f'GradScaler is unavailable on {device.type}'
    if wanted and not scaler.is_enabled() and logger is not None:
        logger.warning(f'train.amp fp16 on {device.type} without a grad scaler ({reason}): small gradients may '
                       'underflow to zero. Prefer `train.amp: {enabled: true, dtype: bf16}` here.')
    return scaler


COMPILE_DEFAULTS = {
    # DUKD runs the student on two input sizes (LR patches and zoom-out inputs): one static graph each.
    # Automatic dynamic shapes made inductor fail on the second size (torch 2.14, CPU).
    'dynamic': False,
}


def parse_compile(value, option: str = 'train.compile') -> Optional[dict]:
    """``train.compile``: false (default), true, or a dict of ``torch.compile`` keyword arguments."""
    if value in (None, False):
        return None
    if value is True:
        return dict(COMPILE_DEFAULTS)
    if isinstance(value, dict):
        unknown = set(value) - {'mode', 'backend', 'dynamic', 'fullgraph', 'options'}
        if unknown:
            raise ValueError(f'{option}: unknown key(s) {sorted(unknown)}; known: mode, backend, dynamic, '
                             'fullgraph, options')
        return {**COMPILE_DEFAULTS, **value}
    raise ValueError(f'{option} must be true, false or a dict of torch.compile arguments, got {value!r}')
