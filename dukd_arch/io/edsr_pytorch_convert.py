"""Original EDSR-PyTorch checkpoints (RCAN ``RCAN_BIX4.pt``, EDSR ``edsr_x4-4f62e9ef.pt``) to BasicSR keys.

The original code wraps every stage in ``nn.Sequential`` named ``head``/``body``/``tail`` and normalises
with two 1x1 ``MeanShift`` convolutions (``sub_mean``/``add_mean``). BasicSR's RCAN and EDSR name the stages
and subtract/add ``rgb_mean`` in ``forward`` instead, so the MeanShift layers are dropped here; the mean
they encode is returned so a caller can check it against the network's ``rgb_mean``.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

# Original name pattern -> BasicSR name template; tried in order, first match wins.
_BLOCK = re.compile(r'^body\.(\d+)\.body\.(\d+)\.body\.([023])\.(.+)$')
_ATTENTION = re.compile(r'^body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.([02])\.(.+)$')
_GROUP_CONV = re.compile(r'^body\.(\d+)\.body\.(\d+)\.(weight|bias)$')  # RCAN group conv = EDSR ResBlock conv
_BODY_CONV = re.compile(r'^body\.(\d+)\.(weight|bias)$')
_HEAD = re.compile(r'^head\.0\.(weight|bias)$')
_UPSAMPLE = re.compile(r'^tail\.0\.(\d+)\.(weight|bias)$')
_LAST = re.compile(r'^tail\.1\.(weight|bias)$')
_MEAN_SHIFT = ('sub_mean.', 'add_mean.')


def is_original_rcan(state: Dict[str, torch.Tensor]) -> bool:
    """True for a state dict with EDSR-PyTorch RCAN names (channel attention under ``conv_du``)."""
    return ('head.0.weight' in state and 'tail.1.weight' in state
            and any(_ATTENTION.match(k) for k in state))


def is_original_edsr(state: Dict[str, torch.Tensor]) -> bool:
    """True for EDSR-PyTorch EDSR names: convs right inside the ResBlocks (``body.0.body.0``; an RCAN nests
    them one level deeper) and no channel attention."""
    return ('head.0.weight' in state and 'tail.1.weight' in state and 'body.0.body.0.weight' in state
            and not is_original_rcan(state))


def original_kind(state: Dict[str, torch.Tensor]) -> Optional[str]:
    """'RCAN' or 'EDSR' for an original EDSR-PyTorch state dict of that network, else None."""
    return 'RCAN' if is_original_rcan(state) else 'EDSR' if is_original_edsr(state) else None


def rcan_layout(state: Dict[str, torch.Tensor]) -> Dict[str, int]:
    """Architecture options of an original RCAN state dict (num_group, num_block, num_feat, squeeze_factor)."""
    blocks = {(int(m.group(1)), int(m.group(2))) for m in map(_ATTENTION.match, state) if m}
    num_group = 1 + max(g for g, _ in blocks)
    num_block = 1 + max(b for _, b in blocks)
    num_feat = state['head.0.weight'].shape[0]
    reduced = state['body.0.body.0.body.3.conv_du.0.weight'].shape[0]
    return dict(num_group=num_group, num_block=num_block, num_feat=num_feat, squeeze_factor=num_feat // reduced)


def edsr_layout(state: Dict[str, torch.Tensor]) -> Dict[str, int]:
    """BasicSR ``EDSR`` options of an original EDSR state dict (res_scale is not in the weights)."""
    num_feat = state['head.0.weight'].shape[0]
    ups = [v for k, v in state.items() if _UPSAMPLE.match(k) and k.endswith('weight')]
    # Upsampler: one conv to 9*num_feat for x3, else one conv to 4*num_feat per x2 step
    upscale = 3 if len(ups) == 1 and ups[0].shape[0] == 9 * num_feat else 2**len(ups)
    return dict(num_in_ch=state['head.0.weight'].shape[1], num_out_ch=state['tail.1.weight'].shape[0],
                num_feat=num_feat, num_block=1 + max(int(m.group(1)) for m in map(_GROUP_CONV.match, state) if m),
                upscale=upscale)


def edsr_network_t(state: Dict[str, torch.Tensor]) -> str:
    """The ``network_t`` that fits an original EDSR file, for error messages."""
    options = ', '.join(f'{k}: {v}' for k, v in edsr_layout(state).items())
    return (f'`network_t: {{type: EDSR, {options}, res_scale: ...}}` (res_scale is not in the weights: 1 for '
            'edsr_baseline_x*, 0.1 for edsr_x*)')


def _rename_rcan(key: str, layout: Dict[str, int]) -> Optional[str]:
    m = _ATTENTION.match(key)
    if m:
        g, b, i, rest = m.groups()
        return f'body.{g}.residual_group.{b}.rcab.3.attention.{int(i) + 1}.{rest}'
    m = _BLOCK.match(key)
    if m:
        g, b, i, rest = m.groups()
        return f'body.{g}.residual_group.{b}.rcab.{i}.{rest}'
    m = _GROUP_CONV.match(key)
    if m and int(m.group(2)) == layout['num_block']:
        return f'body.{m.group(1)}.conv.{m.group(3)}'
    m = _BODY_CONV.match(key)
    if m and int(m.group(1)) == layout['num_group']:
        return f'conv_after_body.{m.group(2)}'
    return _rename_ends(key)


def _rename_edsr(key: str, layout: Dict[str, int]) -> Optional[str]:
    m = _GROUP_CONV.match(key)
    if m and m.group(2) in ('0', '2'):  # ResBlock body: conv, ReLU, conv
        return f'body.{m.group(1)}.conv{int(m.group(2)) // 2 + 1}.{m.group(3)}'
    m = _BODY_CONV.match(key)
    if m and int(m.group(1)) == layout['num_block']:
        return f'conv_after_body.{m.group(2)}'
    return _rename_ends(key)


def _rename_ends(key: str) -> Optional[str]:
    """head and tail: the same in RCAN and EDSR."""
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


# kind -> (layout, renaming, what to do with a variant the converter does not know)
_KINDS = {'RCAN': (rcan_layout, _rename_rcan, 'load it with `type: AutoTeacher` instead'),
          'EDSR': (edsr_layout, _rename_edsr, 'build the network it was trained with')}


def convert_original_state_dict(state: Dict[str, torch.Tensor], path: str = '', kind: Optional[str] = None
                                ) -> Tuple['OrderedDict[str, torch.Tensor]', Optional[Tuple[float, ...]]]:
    """Rename an original RCAN or EDSR state dict (``kind``; detected when None) to BasicSR keys.

    Returns the converted state dict and the RGB mean (0-1 range) stored in ``sub_mean`` (None when absent).
    Unknown keys raise, naming the file: silently dropping weights would make a broken teacher.
    """
    kind = kind or original_kind(state)
    layout_of, rename, advice = _KINDS[kind]
    layout = layout_of(state)
    converted = OrderedDict()
    unknown = []
    for key, value in state.items():
        if key.startswith(_MEAN_SHIFT):
            continue
        new = rename(key, layout)
        if new is None:
            unknown.append(key)
        else:
            converted[new] = value
    if unknown:
        raise ValueError(f'{path or "state dict"} looks like an original {kind} checkpoint but has keys the {kind} '
                         f'converter does not know: {unknown[:5]} ({len(unknown)} in all). It is not a plain '
                         f'{kind}; {advice}.')
    return converted, _mean_from_shift(state)


def _mean_from_shift(state: Dict[str, torch.Tensor]) -> Optional[Tuple[float, ...]]:
    """``sub_mean`` is a 1x1 conv with weight I/std and bias -rgb_range*mean/std; the released RCAN and EDSR
    models train with rgb_range 255, so the mean in [0, 1] is -bias*std/255."""
    if 'sub_mean.bias' not in state or 'sub_mean.weight' not in state:
        return None
    weight = state['sub_mean.weight'].double().flatten(1)
    inv_std = torch.diagonal(weight[:, :weight.shape[0]])
    mean = -state['sub_mean.bias'].double() / inv_std / 255.0
    return tuple(round(v, 4) + 0.0 for v in mean.tolist())  # + 0.0: a zero bias gives -0.0, printed '-0.0'


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
