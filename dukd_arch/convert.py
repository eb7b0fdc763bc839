"""Convert a checkpoint into a plain, safely loadable weights file.

    python -m dukd_arch.convert IN OUT [--param-key K] [--unsafe-trust] [--bare] [--keep-names]

* ``OUT`` ending in ``.safetensors``: a safetensors file (no pickle at all);
  ``.pth``/``.pt``: ``{'params': state_dict}`` (BasicSR's layout), or the bare state dict with ``--bare``.
* An original RCAN or EDSR release (EDSR-PyTorch key names) is renamed to BasicSR ``RCAN`` / ``EDSR`` keys unless
  ``--keep-names`` is given.
* ``--unsafe-trust`` is the ONLY place in dukd that unpickles arbitrary objects
  (``torch.load(weights_only=False)``): use it once, on a file you trust, to get rid of the pickle.
  Without it the input is read with ``weights_only=True`` / safetensors like everywhere else.
"""
import argparse
import os
import pickle
import sys
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from .io.atomic import atomic_save
from .io.checkpoint import extract_state_dict, read_checkpoint, read_trusted
from .io.edsr_pytorch_convert import convert_original_state_dict, original_kind
from .io.safetensors_file import save_safetensors_file

WEIGHT_SUFFIXES = ('.pth', '.pt', '.ckpt', '.bin')


def _modules_to_state_dicts(ckpt):
    """Whole pickled networks (``torch.save(model)``) become their state dicts."""
    if isinstance(ckpt, torch.nn.Module):
        return ckpt.state_dict()
    if isinstance(ckpt, dict):
        return {k: (v.state_dict() if isinstance(v, torch.nn.Module) else v) for k, v in ckpt.items()}
    return ckpt


def load_state_dict_for_conversion(path: str, param_key: Optional[str] = None, unsafe_trust: bool = False,
                                   keep_names: bool = False) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """The network weights in ``path`` as a plain state dict, plus notes on what was done."""
    if unsafe_trust and not path.endswith('.safetensors'):
        ckpt = read_trusted(path)
    else:
        ckpt = read_checkpoint(path, what='input checkpoint')
    ckpt = _modules_to_state_dicts(ckpt)
    state, used = extract_state_dict(ckpt, param_key, path)
    notes = {'source': os.path.basename(path), 'param_key': used or '(bare state dict)'}
    others = [k for k in ('params', 'params_ema') if used and k != used and isinstance(ckpt, dict) and k in ckpt]
    if others:  # e.g. a training checkpoint: the EMA weights are not carried over unless asked for
        notes['not_converted'] = f'{", ".join(others)} (pass --param-key {others[0]} for those weights)'
    kind = None if keep_names else original_kind(state)
    if kind:
        state, mean = convert_original_state_dict(state, path, kind)
        notes['converted'] = f'original {kind} -> BasicSR {kind} keys'
        if mean is not None:
            notes['rgb_mean'] = str(list(mean))
    return OrderedDict((k, v.detach().contiguous().clone()) for k, v in state.items()), notes


def save_state_dict(state: Dict[str, torch.Tensor], out: str, notes: Optional[Dict[str, str]] = None,
                    bare: bool = False) -> None:
    """Write ``state`` as safetensors or as a weights-only ``.pth``; the result is re-read safely as a check."""
    if out.endswith('.safetensors'):
        save_safetensors_file(dict(state), out, {k: str(v) for k, v in (notes or {}).items()})
    elif out.endswith(WEIGHT_SUFFIXES):
        atomic_save(dict(state) if bare else {'params': dict(state)}, out)
    else:
        raise ValueError(f'output {out!r}: use a .safetensors or .pth file name')
    read_checkpoint(out, what='converted file')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dukd_arch.convert', description=__doc__.split('\n\n')[0])
    parser.add_argument('input', help='checkpoint to convert (.pth/.pt/.safetensors)')
    parser.add_argument('output', help='result: .safetensors or .pth')
    parser.add_argument('--param-key', default=None,
                        help='key holding the weights (default: auto: params, params_ema, ..., bare)')
    parser.add_argument('--unsafe-trust', action='store_true',
                        help='unpickle the input with weights_only=False. Runs code stored in the file: '
                        'only for files from a source you trust')
    parser.add_argument('--bare', action='store_true', help='.pth output: bare state dict instead of {"params": ...}')
    parser.add_argument('--keep-names', action='store_true', help='do not rename original RCAN / EDSR keys')
    args = parser.parse_args(argv)
    if os.path.exists(args.output) and os.path.realpath(args.output) == os.path.realpath(args.input):
        parser.error(f'OUT is IN ({args.input}): the source would be replaced; give another file name')
    try:
        state, notes = load_state_dict_for_conversion(args.input, args.param_key, args.unsafe_trust, args.keep_names)
        save_state_dict(state, args.output, notes, bare=args.bare)
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except (pickle.UnpicklingError, EOFError) as err:  # --unsafe-trust on a file that holds no pickle
        print(f'error: {args.input} is not a readable checkpoint ({type(err).__name__}: {err})', file=sys.stderr)
        return 1
    n_params = sum(v.numel() for v in state.values())
    print(f'wrote {args.output}: {len(state)} tensors, {n_params:,} values')
    for key, value in notes.items():
        print(f'  {key}: {value}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
