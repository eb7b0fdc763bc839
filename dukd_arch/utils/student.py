"""Student weights: BasicSR's ``load_network`` through the safe reader, and trained students for evaluation and
export (the EMA weights when the checkpoint has them).

Validation and testing during training use the EMA student (``params_ema``), so the model card and the
exported files must use the same weights, or they would describe a different network.
"""
import logging
from typing import Optional

import torch

from .checkpoint import check_finite, check_state_dict, extract_state_dict, read_checkpoint

logger = logging.getLogger('basicsr')


def load_network_safely(net: torch.nn.Module, load_path: str, strict: bool = True, param_key: Optional[str] = 'params',
                        option: str = 'network_g') -> None:
    """``BaseModel.load_network`` (``pretrain_network_g``, resume, test.py) with the same meaning, read safely.

    BasicSR's version calls ``torch.load`` without ``weights_only`` (a pickle in the file runs code on
    torch < 2.6) and its errors do not name the file. Kept from BasicSR: a missing ``param_key`` falls
    back to ``params``; ``None`` loads the file's root; non-strict loading skips missing, unexpected and
    mis-shaped keys with a warning. Added: non-finite weights and files that fail their CRC are refused.
    """
    ckpt = read_checkpoint(load_path, what=f'{option} weights')
    if param_key is not None and isinstance(ckpt, dict) and param_key not in ckpt and 'params' in ckpt:
        logger.info(f'{load_path}: no {param_key!r}, loading its "params".')
        param_key = 'params'
    if param_key is None:
        state, _ = extract_state_dict({'root': ckpt}, 'root', load_path)
    else:
        state, _ = extract_state_dict(ckpt, param_key, load_path)
    check_finite(state, load_path, f'{option} weights')
    if not strict:
        own = net.state_dict()
        skipped = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        for label, keys in (('mis-shaped (kept at init)', skipped), ('missing in file (kept at init)', missing),
                            ('not in the network (ignored)', unexpected)):
            if keys:
                logger.warning(f'{load_path} loaded non-strictly: {len(keys)} {label}: {keys[:5]}')
        state = type(state)((k, v) for k, v in state.items() if k not in skipped)
    logger.info(f'Loading {net.__class__.__name__} from {load_path}, with param key: [{param_key}].')
    try:  # the network's own load_state_dict decides (quantized students complete their quantizer state)
        net.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        check_state_dict(net, state, load_path, option, strict=strict)  # the readable version, naming the file
        raise ValueError(f'{load_path} does not fit the network built from `{option}`: {str(err).splitlines()[0]}'
                         ) from err


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
    check_finite(state, path, 'student checkpoint')
    check_state_dict(net, state, path, option, strict=True)
    net.load_state_dict(state, strict=True)
    return used
