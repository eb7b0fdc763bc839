"""Trained student weights for evaluation and export: the EMA weights when the checkpoint has them.

Validation and testing during training use the EMA student (``params_ema``), so the model card and the
exported files must use the same weights, or they would describe a different network.
"""
from typing import Optional

import torch

from .checkpoint import check_state_dict, extract_state_dict, read_checkpoint


def student_state_dict(path: str, param_key: Optional[str] = None):
    """``(state_dict, key used)`` from a student checkpoint; ``params_ema`` preferred when ``param_key`` is None."""
    ckpt = read_checkpoint(path, what='student checkpoint')
    if param_key is None and isinstance(ckpt, dict) and 'params_ema' in ckpt:
        param_key = 'params_ema'
    return extract_state_dict(ckpt, param_key, path)


def load_student(net: torch.nn.Module, path: str, param_key: Optional[str] = None,
                 option: str = 'network_g') -> str:
    """Load a trained student into ``net`` (strict, clear errors); returns the param key used."""
    state, used = student_state_dict(path, param_key)
    check_state_dict(net, state, path, option, strict=True)
    net.load_state_dict(state, strict=True)
    return used
