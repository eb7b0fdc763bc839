"""Random-number-generator states of python, numpy and torch (CPU and CUDA) as plain tensors and scalars,
so a training state holding them still loads with ``torch.load(weights_only=True)``."""
import random

import numpy as np
import torch
import torch.distributed as dist


def capture_rng_states() -> dict:
    _, key, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        'python': {'version': version, 'state': torch.tensor(internal, dtype=torch.int64), 'gauss_next': gauss_next},
        'numpy': {'key': torch.from_numpy(key.astype(np.int64)), 'pos': int(pos), 'has_gauss': int(has_gauss),
                  'gauss': float(gauss)},
        'torch': torch.get_rng_state(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: dict) -> bool:
    """Restore what ``capture_rng_states`` saved; False when the CUDA states do not fit the visible GPUs
    (then those are left as they are and the run is no longer bit-exact)."""
    py = states['python']
    random.setstate((py['version'], tuple(py['state'].tolist()), py['gauss_next']))
    nps = states['numpy']
    np.random.set_state(('MT19937', nps['key'].numpy().astype(np.uint32), nps['pos'], nps['has_gauss'], nps['gauss']))
    torch.set_rng_state(states['torch'])
    if not states['cuda'] or not torch.cuda.is_available():
        return not states['cuda'] and not torch.cuda.is_available()
    if len(states['cuda']) != torch.cuda.device_count():
        return False
    torch.cuda.set_rng_state_all(states['cuda'])
    return True


def gather_rng_states(distributed: bool) -> list:
    """Every rank's states (a collective in distributed runs: all ranks must call it); index = rank."""
    states = capture_rng_states()
    if not distributed:
        return [states]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, states)
    return gathered
