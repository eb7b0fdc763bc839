"""A network's weights from a checkpoint file: teachers (any layout, original RCAN / EDSR releases converted), BasicSR's
``load_network`` through the safe reader, and trained students for evaluation and export (the EMA weights when
the checkpoint has them).

Validation and testing during training use the EMA student (``params_ema``), so the model card and the
exported files must use the same weights, or they would describe a different network.
"""
import logging
from typing import Optional

import torch

from .checkpoint import check_finite, check_state_dict, extract_state_dict, read_checkpoint
from .edsr_pytorch_convert import convert_original_state_dict, edsr_network_t, original_kind

logger = logging.getLogger('basicsr')


def load_weights(net: torch.nn.Module, path: str, param_key=None, strict: bool = True,
                 option: str = 'network_t') -> str:
    """Load ``path`` into ``net`` safely; returns the param key used. Errors name the file and the fix."""
    ckpt = read_checkpoint(path, what=f'checkpoint for {option}')
    state, used = extract_state_dict(ckpt, param_key, path)
    if param_key is None and used == 'params' and isinstance(ckpt.get('params_ema'), dict):
        logger.warning(f'{path} holds both "params" and "params_ema"; auto-detection loads "params" (as the authors\' '
                       'default does). A teacher trained with EMA was validated with "params_ema": set the '
                       'param key to choose.')
    kind = original_kind(state) if 'head.0.weight' not in net.state_dict() else None
    # computed before the keys are renamed, for the error below
    fits = edsr_network_t(state) if kind == 'EDSR' else None
    if kind:
        state = _convert_original(net, state, path, kind)
    check_finite(state, path, f'checkpoint for {option}')
    try:
        check_state_dict(net, state, path, option, strict=strict)
    except ValueError as err:
        if fits:  # the renamed keys alone would not say which EDSR the file holds
            raise ValueError(f'{err}\n  {path} is an original EDSR; it fits {fits}.') from None
        raise
    if not strict:
        _report_non_strict(net, state, path, option)
    net.load_state_dict(state, strict=strict)
    return used


def _report_non_strict(net: torch.nn.Module, state, path: str, option: str) -> list:
    """A non-strict load says what it leaves at init and ignores, and refuses to load nothing at all (a key
    prefix or another architecture would otherwise train on from random weights). Returns the mis-shaped keys."""
    own = net.state_dict()
    skipped = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if own and len(missing) + len(skipped) >= len(own):
        raise ValueError(f'{path}: none of its {len(state)} tensors fits the network built from `{option}` (e.g. file '
                         f'{list(state)[:3]} vs network {list(own)[:3]}), so a non-strict load would leave every '
                         f'weight at init. Fix `{option}`, or strip the key prefix from the file.')
    for label, keys in (('mis-shaped (kept at init)', skipped), ('missing in file (kept at init)', missing),
                        ('not in the network (ignored)', unexpected)):
        if keys:
            logger.warning(f'{path} loaded non-strictly: {len(keys)} {label}: {keys[:5]}')
    return skipped


def _convert_original(net: torch.nn.Module, state, path: str, kind: str):
    """Original RCAN / EDSR release (EDSR-PyTorch names) into its BasicSR network: rename keys, check the mean."""
    state, file_mean = convert_original_state_dict(state, path, kind)
    logger.info(f'{path}: original {kind} checkpoint (EDSR-PyTorch key names) converted to BasicSR {kind} keys '
                f'({len(state)} tensors; MeanShift layers dropped).')
    net_mean = getattr(net, 'mean', None)
    if file_mean is not None and torch.is_tensor(net_mean):
        ours = tuple(net_mean.flatten().tolist())
        if len(ours) == len(file_mean) and max(abs(a - b) for a, b in zip(ours, file_mean)) > 1e-3:
            logger.warning(f'{path} was trained with RGB mean {file_mean}, the network uses {ours}: set '
                           f'`rgb_mean: {list(file_mean)}` in the teacher options for identical outputs.')
    return state


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
        skipped = _report_non_strict(net, state, load_path, option)
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
