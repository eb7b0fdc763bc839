"""``train.dukd_opt``: our readable keys, the authors' keys as aliases, and early validation.

Readable form::

    dukd_opt:
      zoom_in: {num_tiles: 1, positions: grid, loss_weight: 1.0}     # or an int, or false
      zoom_out: {loss_weight: 1.0, lr_weight: ~}                       # or true / false
      label_consistency: {prob: 0.3, ops: [invert, vflip, hflip, transpose], apply_to: [zoom_in]}
      two_step: false                                                  # authors' two-optimizer-step update

Authors' form (runs unchanged): ``dukd_opt.n_gt_sub: [1]``, ``dukd_opt.zoom_out: true`` and
``train.noisy.prob: 0.3`` (the presence of ``noisy`` turns label consistency on).

Loss weights: a readable ``loss_weight`` is used as given (default 1.0). When the authors' keys are used
(``n_gt_sub`` or ``noisy``), a term without its own ``loss_weight`` takes ``kd_opt.loss_weight``, as in
their code, where the zoom-in and zoom-out teacher terms are computed by the KD criterion itself.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from ..ops import AUGMENTATION_OPS

_KNOWN_KEYS = {'zoom_in', 'zoom_out', 'label_consistency', 'two_step', 'n_gt_sub'}
_UPCYCLED = ('zoom_in', 'zoom_out')


@dataclass(frozen=True)
class DUKDConfig:
    zoom_in_tiles: int = 1
    zoom_in_positions: str = 'grid'
    zoom_in_weight: float = 1.0
    zoom_out: bool = False
    zoom_out_weight: float = 1.0
    zoom_out_lr_weight: Optional[float] = None  # None: the pixel loss weight, as in the authors' code
    lcr_prob: float = 0.0
    lcr_ops: Tuple[str, ...] = AUGMENTATION_OPS
    lcr_apply_to: Tuple[str, ...] = ('zoom_in', )
    two_step: bool = False
    zoom_in_weight_source: str = 'default'  # where each weight came from (logged at start)
    zoom_out_weight_source: str = 'default'


def _unknown(section: str, given: dict, known: set):
    extra = set(given) - known
    if extra:
        raise ValueError(f'train.{section}: unknown key(s) {sorted(extra)}; known keys are {sorted(known)}')


def _check_types(train_opt: dict):
    """The option schema's checks on these keys (a string 'false', a float tile count, a bool probability),
    also for models built without train.py's whole-file validation."""
    from ..options.schema import DUKD_TRAIN
    from ..options.spec import Context, check
    ctx = Context(opt={}, is_train=True)
    for key in ('dukd_opt', 'noisy'):
        if key in train_opt:
            check(DUKD_TRAIN[key], train_opt[key], f'train.{key}', ctx)
    if ctx.errors:
        raise ValueError('; '.join(f'{path}: {message}' for path, message in ctx.errors))


def parse_dukd_options(train_opt: dict) -> DUKDConfig:
    _check_types(train_opt)
    dukd = dict(train_opt.get('dukd_opt') or {})
    _unknown('dukd_opt', dukd, _KNOWN_KEYS)
    kw = {}
    if 'n_gt_sub' in dukd or train_opt.get('noisy') is not None:  # the authors' keys: their weighting
        kw['zoom_in_weight'] = kw['zoom_out_weight'] = float((train_opt.get('kd_opt') or {}).get('loss_weight', 1.0))
        kw['zoom_in_weight_source'] = kw['zoom_out_weight_source'] = "kd_opt.loss_weight: the authors' keys"

    zoom_in = dukd.get('zoom_in', None)
    if 'n_gt_sub' in dukd:  # authors: a one-element list
        if zoom_in is not None:
            raise ValueError('train.dukd_opt: give either zoom_in or the authors\' n_gt_sub, not both')
        n = dukd['n_gt_sub']
        zoom_in = int(n[0] if isinstance(n, (list, tuple)) else n)
    if isinstance(zoom_in, bool):
        kw['zoom_in_tiles'] = 1 if zoom_in else 0
    elif isinstance(zoom_in, int):
        kw['zoom_in_tiles'] = zoom_in
    elif isinstance(zoom_in, dict):
        _unknown('dukd_opt.zoom_in', zoom_in, {'num_tiles', 'positions', 'loss_weight'})
        kw['zoom_in_tiles'] = int(zoom_in.get('num_tiles', 1))
        kw['zoom_in_positions'] = zoom_in.get('positions', 'grid')
        if 'loss_weight' in zoom_in:
            kw['zoom_in_weight'] = float(zoom_in['loss_weight'])
            kw['zoom_in_weight_source'] = 'zoom_in.loss_weight'
    elif zoom_in is not None:
        raise ValueError(f'train.dukd_opt.zoom_in must be an int, a bool or a mapping, got {zoom_in!r}')
    if kw.get('zoom_in_tiles', 1) < 0:
        raise ValueError('train.dukd_opt.zoom_in.num_tiles must be >= 0')
    if kw.get('zoom_in_positions', 'grid') not in ('grid', 'random'):
        raise ValueError("train.dukd_opt.zoom_in.positions must be 'grid' (authors) or 'random' (per sample)")

    zoom_out = dukd.get('zoom_out', False)
    if isinstance(zoom_out, dict):
        _unknown('dukd_opt.zoom_out', zoom_out, {'loss_weight', 'lr_weight'})
        kw['zoom_out'] = True
        if 'loss_weight' in zoom_out:
            kw['zoom_out_weight'] = float(zoom_out['loss_weight'])
            kw['zoom_out_weight_source'] = 'zoom_out.loss_weight'
        if zoom_out.get('lr_weight') is not None:
            kw['zoom_out_lr_weight'] = float(zoom_out['lr_weight'])
    else:
        kw['zoom_out'] = bool(zoom_out)

    lcr = dukd.get('label_consistency')
    noisy = train_opt.get('noisy')
    if lcr is not None and noisy is not None:
        raise ValueError('give either train.dukd_opt.label_consistency or the authors\' train.noisy, not both')
    if noisy is not None:
        lcr = {'prob': (noisy or {}).get('prob', 0.3)}
    if lcr:
        if isinstance(lcr, (int, float)) and not isinstance(lcr, bool):
            lcr = {'prob': lcr}
        _unknown('dukd_opt.label_consistency', lcr, {'prob', 'ops', 'apply_to'})
        kw['lcr_prob'] = float(lcr.get('prob', 0.3))
        kw['lcr_ops'] = tuple(lcr.get('ops', AUGMENTATION_OPS))
        kw['lcr_apply_to'] = tuple(lcr.get('apply_to', ('zoom_in', )))
        bad_ops = set(kw['lcr_ops']) - set(AUGMENTATION_OPS)
        bad_targets = set(kw['lcr_apply_to']) - set(_UPCYCLED)
        if bad_ops or bad_targets:
            raise ValueError(f'train.dukd_opt.label_consistency: unknown ops {sorted(bad_ops)} / apply_to '
                             f'{sorted(bad_targets)}; ops from {AUGMENTATION_OPS}, apply_to from {_UPCYCLED}')
        if not 0 <= kw['lcr_prob'] <= 1:
            raise ValueError('train.dukd_opt.label_consistency.prob must lie in [0, 1]')
    kw['two_step'] = bool(dukd.get('two_step', False))
    return DUKDConfig(**kw)
