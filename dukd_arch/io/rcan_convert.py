"""Original RCAN checkpoints (EDSR-PyTorch key names, e.g. ``RCAN_BIX4.pt``) to BasicSR's ``RCAN`` keys.

The original code wraps every stage in ``nn.Sequential`` named ``head``/``body``/``tail`` and normalises
with two 1x1 ``MeanShift`` convolutions (``sub_mean``/``add_mean``). BasicSR's RCAN names the stages
and subtracts/adds ``rgb_mean`` in ``forward`` instead, so the MeanShift layers are dropped here; the mean
they encode is returned so a caller can check it against the network's ``rgb_mean``.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

# Original name pattern -> BasicSR name template; tried in order, first match wins.
_BLOCK = re.compile(r'^body\.(\d+)\.body\.(\d+)\.body\.([023])\.(.+)$')
_ATTENTION = re.compile(r'^body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.([02])\.(.+)$')
_GROUP_CONV = re.compile(r'^body\.(\d+)\.body\.(\d+)\.(weight|bias)$')
_BODY_CONV = re.compile(r'^body\.(\d+)\.(weight|bias)$')
_HEAD = re.compile(r'^head\.0\.(weight|bias)$')
_UPSAMPLE = re.compile(r'^tail\.0\.(\d+)\.(weight|bias)$')
_LAST = re.compile(r'^tail\.1\.(weight|bias)$')
_MEAN_SHIFT = ('sub_mean.', 'add_mean.')


def is_original_rcan(state: Dict[str, torch.Tensor]) -> bool:
    """True for a state dict with EDSR-PyTorch RCAN names (channel attention under ``conv_du``)."""
    return ('head.0.weight' in state and 'tail.1.weight' in state
            and any(_ATTENTION.match(k) for k in state))


def rcan_layout(state: Dict[str, torch.Tensor]) -> Dict[str, int]:
    """Architecture options of an original RCAN state dict (num_group, num_block, num_feat, squeeze_factor)."""
    blocks = {(int(m.group(1)), int(m.group(2))) for m in map(_ATTENTION.match, state) if m}
    num_group = 1 + max(g for g, _ in blocks)
    num_block = 1 + max(b for _, b in blocks)
    num_feat = state['head.0.weight'].shape[0]
    reduced = state['body.0.body.0.body.3.conv_du.0.weight'].shape[0]
    return dict(num_group=num_group, num_block=num_block, num_feat=num_feat, squeeze_factor=num_feat // reduced)


def _rename(key: str, num_block: int, num_group: int) -> Optional[str]:
    m = _ATTENTION.match(key)
    if m:
        g, b, i, rest = m.groups()
        return f'body.{g}.residual_group.{b}.rcab.3.attention.{int(i) + 1}.{rest}'
    m = _BLOCK.match(key)
    if m:
        g, b, i, rest = m.groups()
        return f'body.{g}.residual_group.{b}.rcab.{i}.{rest}'
    m = _GROUP_CONV.match(key)
    if m and int(m.group(2)) == num_block:
        return f'body.{m.group(1)}.conv.{m.group(3)}'
    m = _BODY_CONV.match(key)
    if m and int(m.group(1)) == num_group:
        return f'conv_after_body.{m.group(2)}'
    m = _HEAD.match(key)
    if m:
        return f'conv_first.{m.group(1)}'
    m = _UPSAMPLE.match(key)
    if m:
        return f'upsample.{m.group(1)}.{m.group(2)}'
    m = _LAST.match(key)
    if m:
        return f'conv_last.{m.group(1)}'
    return None


def convert_rcan_state_dict(state: Dict[str, torch.Tensor],
                            path: str = '') -> Tuple['OrderedDict[str, torch.Tensor]', Optional[Tuple[float, ...]]]:
    """Rename an original RCAN state dict to BasicSR ``RCAN`` keys.

    Returns the converted state dict and the RGB mean (0-1 range) stored in ``sub_mean`` (None when absent).
    Unknown keys raise, naming the file: silently dropping weights would make a broken teacher.
    """
    layout = rcan_layout(state)
    converted = OrderedDict()
    unknown = []
    for key, value in state.items():
        if key.startswith(_MEAN_SHIFT):
            continue
        new = _rename(key, layout['num_block'], layout['num_group'])
        if new is None:
            unknown.append(key)
        else:
            converted[new] = value
    if unknown:
        raise ValueError(f'{path or "state dict"} looks like an original RCAN checkpoint but has keys the RCAN '
                         f'converter does not know: {unknown[:5]} ({len(unknown)} in all). It is not a plain '
                         'RCAN; load it with `type: AutoTeacher` instead.')
    return converted, _mean_from_shift(state)


def _mean_from_shift(state: Dict[str, torch.Tensor]) -> Optional[Tuple[float, ...]]:
    """``sub_mean`` is a 1x1 conv with weight I/std and bias -rgb_range*mean/std; the original RCAN
    always trains with rgb_range 255, so the mean in [0, 1] is -bias*std/255."""
    if 'sub_mean.bias' not in state or 'sub_mean.weight' not in state:
        return None
    weight = state['sub_mean.weight'].double().flatten(1)
    inv_std = torch.diagonal(weight[:, :weight.shape[0]])
    mean = -state['sub_mean.bias'].double() / inv_std / 255.0
    return tuple(round(v, 4) for v in mean.tolist())


def original_rcan_from_basicsr(state: Dict[str, torch.Tensor], num_group: int, num_block: int,
                               rgb_mean=(0.4488, 0.4371, 0.4040), rgb_range: float = 255.) -> 'OrderedDict':
    """The inverse map (BasicSR RCAN -> original names, MeanShift layers added): for tests and round trips."""
    out = OrderedDict()
    mean = torch.tensor(rgb_mean, dtype=torch.float32) * rgb_range
    eye = torch.eye(3).view(3, 3, 1, 1)
    out['sub_mean.weight'], out['sub_mean.bias'] = eye.clone(), -mean
    out['add_mean.weight'], out['add_mean.bias'] = eye.clone(), mean.clone()
    for key, value in state.items():
        m = re.match(r'^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.([13])\.(.+)$', key)
        if m:
            g, b, i, rest = m.groups()
            out[f'body.{g}.body.{b}.body.3.conv_du.{int(i) - 1}.{rest}'] = value
            continue
        m = re.match(r'^body\.(\d+)\.residual_group\.(\d+)\.rcab\.([02])\.(.+)$', key)
        if m:
            g, b, i, rest = m.groups()
            out[f'body.{g}.body.{b}.body.{i}.{rest}'] = value
            continue
        m = re.match(r'^body\.(\d+)\.conv\.(.+)$', key)
        if m:
            out[f'body.{m.group(1)}.body.{num_block}.{m.group(2)}'] = value
            continue
        for prefix, target in (('conv_after_body.', f'body.{num_group}.'), ('conv_first.', 'head.0.'),
                               ('upsample.', 'tail.0.'), ('conv_last.', 'tail.1.')):
            if key.startswith(prefix):
                out[target + key[len(prefix):]] = value
                break
        else:
            raise KeyError(f'not a BasicSR RCAN key: {key}')
    return out
