"""Safe checkpoint reading: every checkpoint read in dukd goes through this module (writing: ``atomic.py``).

Reading never executes pickled code: ``.safetensors`` via safetensors, everything else via
``torch.load(weights_only=True)`` (which is only safe from torch 2.6 on: CVE-2025-32434). torch's zip
reader does not verify the CRC-32 of its records, so a file with flipped bytes would load as garbage
weights: the CRCs are checked here first.
"""
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from . import shipped

SAFE_TORCH = (2, 6)  # torch.load(weights_only=True) could still run code before 2.6 (CVE-2025-32434)

class ParamKeyError(KeyError):
    """A param key the checkpoint does not have; shown as its message (a KeyError would print it quoted)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ''


PREFERRED_PARAM_KEYS = ('params', 'params_ema', 'state_dict', 'model', 'net', 'generator')


def locate(path: str, what: str = 'checkpoint',
           hint: str = "Check the path (the options file's path.* key, or the command's --checkpoint).") -> str:
    """The file a checkpoint path names (``dukd:<file>``: a weight file shipped with the package), or
    ``FileNotFoundError`` naming it."""
    path = shipped.resolve(path)
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path!r}' + (' is a folder' if path and os.path.isdir(path) else '')
                                + f'. {hint}')
    return path


def read_checkpoint(path: str, what: str = 'checkpoint') -> dict:
    """Load a checkpoint safely; every failure names the file and what to do.

    ``dukd:<file>`` names a weight file shipped with the package; shipped files are hash-checked first."""
    path = locate(path, what)
    shipped.verify(path)
    if str(path).endswith('.safetensors'):
        from .safetensors_file import read_safetensors_file
        return read_safetensors_file(path, what)[0]
    if torch_version() < SAFE_TORCH:
        raise RuntimeError(f'{what} {path}: torch {torch.__version__} cannot load .pth files safely (weights_only=True '
                           'can still run code before torch 2.6, CVE-2025-32434). Upgrade torch to >= 2.6, or use a '
                           '.safetensors file.')
    verify_zip_crc(path, what)
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f'{what} {path} holds pickled Python objects that need code execution to load, which dukd refuses '
            f'for safety ({first_line(err)}). If you trust the file, convert it once with '
            f'`python -m dukd_arch.convert --unsafe-trust {path} out.safetensors` and point the options at the '
            f'result.') from err
    except Exception as err:  # torch's unpickler raises many types on garbage (IndexError, EOFError, ...)
        raise ValueError(f'{what} {path} is truncated or corrupt ({first_line(err)}); '
                         f're-download or re-save it.') from err


def read_trusted(path: str):
    """Full unpickling: runs code stored in the file. Only ``python -m dukd_arch.convert --unsafe-trust`` calls it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'input checkpoint not found: {path!r}')
    return torch.load(path, map_location='cpu', weights_only=False)


def safetensors_metadata(path: str) -> dict:
    """The string metadata of a safetensors file (JSON header only: no tensor, no code is read)."""
    from safetensors import safe_open
    try:
        with safe_open(path, framework='pt', device='cpu') as f:
            return dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f'{path} is not a readable safetensors file ({err}); re-export or re-download it.') from err


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type when the message is empty (torch's on a 0-byte file)."""
    return (str(err).splitlines() or [type(err).__name__])[0]


def torch_version() -> Tuple[int, int]:
    major, minor = re.match(r'(\d+)\.(\d+)', torch.__version__).groups()
    return int(major), int(minor)


def verify_zip_crc(path: str, what: str = 'checkpoint') -> None:
    """Raise when a record of a zip-format checkpoint fails its CRC-32 (bit rot, a bad copy, tampering).

    Legacy (non-zip) torch files carry no checksums and pass; truncated zips are left to torch.load.
    """
    try:
        if not zipfile.is_zipfile(path):
            return
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        return  # no readable zip directory (e.g. truncated): torch.load reports it, naming the file
    with archive:
        try:
            bad = archive.testzip()
        except Exception as err:  # a record whose header or compressed data is damaged
            raise ValueError(f'{what} {path} is corrupt ({err}); re-download or re-save it.') from err
    if bad is not None:
        raise ValueError(f'{what} {path} is corrupt: record {bad!r} fails its CRC-32 check (the file was changed '
                         'after it was written: bit rot, an incomplete copy or tampering). Re-download or re-save '
                         'it.')


def check_finite(state: Dict, path: str, what: str = 'checkpoint') -> None:
    """Raise when a floating-point tensor of ``state`` holds NaN or Inf (names the file and the tensors)."""
    bad = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f'{what} {path} has non-finite values (NaN/Inf) in {len(bad)} tensor(s): {bad[:5]}. It '
                         'comes from a diverged run or a corrupt file; use an earlier or re-downloaded checkpoint.')


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(torch.is_tensor(v) for v in obj.values())


def extract_state_dict(ckpt: dict, param_key: Optional[str] = None, path: str = '') -> Tuple[Dict, str]:
    """Pick the network weights out of a checkpoint.

    ``param_key=None`` auto-detects: ``params``, then ``params_ema`` (and other common keys), then a bare
    state dict. Returns the state dict (``module.`` prefixes stripped) and the key used ('' for bare).
    """
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path}: expected a dict of tensors, got {type(ckpt).__name__}')
    if param_key is not None:
        if param_key not in ckpt and _is_state_dict(ckpt):  # its keys are tensor names, not param keys
            raise ParamKeyError(f'{path} holds a bare state dict (tensor names at the top level, no params / '
                                f'params_ema wrapper), so it has no param key {param_key!r}. Set the param key to ~ '
                                '(null): `param_key_g: ~` (param_key_t for a teacher; no --param-key for the tools).')
        if param_key not in ckpt:
            raise ParamKeyError(f'{path} has no param key {param_key!r}; it has {sorted(ckpt)[:8]}. Give one of '
                                'these (param_key_g / param_key_t in the options, --param-key for the tools), or '
                                'none to auto-detect.')
        state, used = ckpt[param_key], param_key
    else:
        for key in PREFERRED_PARAM_KEYS:
            if key in ckpt and _is_state_dict(ckpt[key]):
                state, used = ckpt[key], key
                break
        else:
            if not _is_state_dict(ckpt):
                raise ValueError(f'{path}: no network weights found (keys: {sorted(ckpt)[:8]})')
            state, used = ckpt, ''
    state = OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state.items())
    return state, used


def check_state_dict(net: torch.nn.Module, state: Dict, path: str, option: str, strict: bool = True) -> None:
    """Raise a readable error when ``state`` does not fit ``net`` (instead of torch's wall of keys)."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f'{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}' for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong or (strict and (missing or unexpected)):
        lines = [f'{path} does not fit the network built from `{option}`:']
        if missing:
            lines.append(f'  missing in file ({len(missing)}): {missing[:5]}')
        if unexpected:
            lines.append(f'  unexpected in file ({len(unexpected)}): {unexpected[:5]}')
        if wrong:
            lines.append(f'  shape mismatches ({len(wrong)}): {wrong[:5]}')
        lines.append(f'  Fix `{option}` (type, num_feat, num_block, upscale, ...) to match the checkpoint.')
        raise ValueError('\n'.join(lines))
