"""safetensors files that carry a SHA-256 of their tensors, written with the umask's mode.

safetensors checks the header's structure but not the tensor bytes: a flipped byte in the data loads as
a wrong weight (caught before only when it made a NaN/Inf). Every file this package writes records
``sha256(name, dtype, shape, bytes of each tensor, by name)`` in its metadata under ``DIGEST_KEY``; the
reader recomputes it and refuses, naming the file, a file that no longer matches. Files written elsewhere
have no digest and load as before (with the callers' NaN/Inf checks).
"""
import hashlib
from typing import Dict, Optional, Tuple

import torch

from .atomic import atomic_write

DIGEST_KEY = 'dukd_tensors_sha256'


def tensors_sha256(state: Dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f'{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def save_safetensors_file(state: Dict[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """Write ``state`` with ``metadata`` and its digest; atomic (temporary file, then rename), mode 0o666 - umask
    (safetensors' own ``save_file`` makes files private, 0600, unlike the checkpoints training writes)."""
    from safetensors.torch import save
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    data = save(state, metadata={**(metadata or {}), DIGEST_KEY: tensors_sha256(state)})
    atomic_write(path, lambda f: f.write(data))


def read_safetensors_file(path: str, what: str = 'checkpoint') -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(tensors, metadata) of ``path``; the digest is checked when the file has one."""
    from safetensors import safe_open
    try:
        with safe_open(path, framework='pt', device='cpu') as f:
            metadata = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f'{what} {path} is not a readable safetensors file ({err}); re-download it.') from err
    recorded = metadata.get(DIGEST_KEY)
    if recorded is not None and recorded != tensors_sha256(state):
        raise ValueError(f'{what} {path} is corrupt: its tensors do not match the SHA-256 recorded in it when it was '
                         'written (bit rot, an incomplete copy or tampering). Re-download or re-export it.')
    return state, metadata
