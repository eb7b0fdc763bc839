"""Family 4, checkpoints: a tiny student's weights as .pth, as a .safetensors this package wrote (with its
SHA-256) and as a .safetensors from elsewhere, damaged, then loaded as ``pretrain_network_g`` or as the teacher.

A damaged file must be refused with its name in the message, and its bytes must be left as they were; a file
that still loads (a flipped byte in zip padding) must give exactly the weights that were saved. Flipped
tensor bytes of a .safetensors from elsewhere (no digest) are not generated: nothing can tell them from
real weights, and such a file loads as before.
"""
import os
import pickle

import torch

from basicsr.archs.edsr_arch import EDSR
from conftest import TINY_EDSR
from dukd_arch.io.safetensors_file import save_safetensors_file
from dukd_arch.io.network import load_network_safely
from dukd_arch.archs.teacher import build_teacher
from test_safe_loading import _Payload  # unpickling it creates a folder: the proof that code ran
from verdict import ACCEPTED, DEFECT, Verdict, judge_error

FAMILY = 'checkpoints'
FORMATS = ('pth', 'ours.safetensors', 'theirs.safetensors')


def _net(**changes):
    torch.manual_seed(0)
    return EDSR(**{**{k: v for k, v in TINY_EDSR.items() if k != 'type'}, **changes})


def _write(state, path):
    if path.endswith('.pth'):
        torch.save({'params': state}, path)
    elif path.endswith('ours.safetensors'):
        save_safetensors_file(state, path)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, path)


def _damage(rng, path, fmt, marker):
    """Damage (or replace) the checkpoint at ``path``; returns the description."""
    kind = rng.choice(('truncated', 'flipped_byte', 'wrong_keys', 'wrong_shapes', 'nan', 'inf', 'another_scale',
                       'pickle_with_code', 'zero_byte', 'not_a_checkpoint', 'missing'))
    if kind == 'flipped_byte' and fmt == 'theirs.safetensors':
        kind = 'truncated'
    state = _net().state_dict()
    if kind == 'truncated':
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:rng.randrange(len(data))])
    elif kind == 'flipped_byte':
        data = bytearray(open(path, 'rb').read())
        at = rng.randrange(len(data))
        data[at] ^= rng.randrange(1, 256)
        open(path, 'wb').write(bytes(data))
        kind += f' at {at}/{len(data)}'
    elif kind == 'wrong_keys':
        name = rng.choice(sorted(state))
        state[name + rng.choice(('_', 'x'))] = state.pop(name)
        _write(state, path)
    elif kind == 'wrong_shapes':
        _write(_net(num_feat=rng.choice((4, 12))).state_dict(), path)
    elif kind in ('nan', 'inf'):
        name = rng.choice([k for k, v in state.items() if v.is_floating_point()])
        state[name].view(-1)[rng.randrange(state[name].numel())] = float(kind)
        _write(state, path)
    elif kind == 'another_scale':
        _write(_net(upscale=4).state_dict(), path)
    elif kind == 'pickle_with_code':
        path = path.rsplit('.', 1)[0] + '.pth'  # a pickle has no .safetensors form
        torch.save({'params': _Payload(marker)}, path)
    elif kind == 'zero_byte':
        open(path, 'wb').close()
    elif kind == 'not_a_checkpoint':
        with open(path, 'wb') as f:
            pickle.dump([1, 2, 3], f) if rng.random() < 0.5 else f.write(bytes(rng.randrange(256) for _ in range(64)))
    else:
        os.remove(path)
    return kind, path


def one_input(rng, work, index):
    folder = os.path.join(work, f'ckpt{index}')
    os.makedirs(folder, exist_ok=True)
    fmt = rng.choice(FORMATS)
    path = os.path.join(folder, f'weights_{index}.{fmt}')
    original = _net().state_dict()
    _write(original, path)
    marker = os.path.join(folder, 'code_ran')
    kind, path = _damage(rng, path, fmt, marker)
    role = rng.choice(('pretrain_network_g', 'teacher'))
    what = f'{fmt} as {role}: {kind}'
    before = open(path, 'rb').read() if os.path.exists(path) else None
    net = _net(num_feat=TINY_EDSR['num_feat'])
    param_key = 'params' if path.endswith('.pth') else None
    try:
        if role == 'teacher':
            opt = {'network_t': dict(TINY_EDSR), 'path': {'pretrain_network_t': path, 'param_key_t': param_key}}
            net = build_teacher(opt, torch.device('cpu'))
        else:
            load_network_safely(net, path, strict=True, param_key=param_key)
    except Exception as err:  # noqa: BLE001
        verdict = judge_error(FAMILY, what, err, [os.path.basename(path)])
    else:
        same = all(torch.equal(v, original[k]) for k, v in net.state_dict().items())
        verdict = Verdict(FAMILY, what, ACCEPTED, 'the byte is in a part of the file that holds no weight (zip '
                          'padding, a name field): the loaded weights equal the saved ones') if same else Verdict(
                              FAMILY, what, DEFECT, 'loaded without an error, but the weights differ from the saved')
    if os.path.exists(marker):
        return Verdict(FAMILY, what, DEFECT, 'code in the checkpoint ran')
    if before is not None and (not os.path.exists(path) or open(path, 'rb').read() != before):
        return Verdict(FAMILY, what, DEFECT, 'the checkpoint file was changed or removed')
    return verdict
