"""Feature distillation (FitNet, AT, FAKD, RKD, CrossKD) on top of output KD or DUKD.

Options (one entry or a list of entries)::

    train:
      feature_kd_opt:
        - type: FAKDLoss                 # any registered feature loss
          layers: {body.7: body.7, body.15: body.15}   # student module -> teacher module; omit for the
          loss_weight: 1.0                              # default map (losses/feature_taps.default_layer_map)
        - type: FitNetLoss
          layers: default
          num_pairs: 2                   # pairs in the default map (4 unless set)
          loss_weight: 0.1
        - type: CrossKDLoss              # student feature through the teacher's later layers
          layers: {conv_after_body: conv_after_body}   # the default for CrossKD
          loss_weight: 1.0

Feature terms use the real LR/HR pair only: features are taken from the first student / teacher
forward of each iteration (which starts with the real LR patch in both KDModel and DUKDModel;
checked every iteration), limited to the real samples and cropped to the unpadded size. Trainable
parts (FitNet adapters) become ``extra_trainable['feature_kd_<i>']`` (i = entry index): optimised with
the student, saved as ``net_feature_kd_<i>_<iter>.pth``, reloaded on resume.
"""
import contextlib
import math
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import nn

from basicsr.losses import build_loss
from basicsr.utils import get_root_logger
from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY

from ..ops import forward_padded
from ..losses.feature_taps import FeatureTaps, parse_layer_map, probe_feature_shapes, replace_output, resolve_module
from ..archs.teacher import window_multiple
from .dukd_model import DUKDModel
from .kd_model import KDModel

OPTION = 'feature_kd_opt'
CROSSKD_DEFAULT_LAYERS = {'conv_after_body': 'conv_after_body'}


@dataclass
class FeatureTerm:
    log_name: str
    loss: nn.Module
    pairs: List[Tuple[str, str]]
    cross: bool
    index: int  # position in feature_kd_opt: names the saved file of trainable parts


def _log_name(loss_type: str, taken: set) -> str:
    base = 'l_' + (loss_type[:-4] if loss_type.endswith('Loss') else loss_type).lower()
    name, k = base, 1
    while name in taken:
        k += 1
        name = f'{base}{k}'
    taken.add(name)
    return name


def _probe_size(*nets: nn.Module, at_least: int = 16) -> int:
    multiple = 1
    for net in nets:
        multiple = math.lcm(multiple, window_multiple(net))
    return -(-at_least // multiple) * multiple


def build_feature_terms(entries, student: nn.Module, teacher: nn.Module, device=None,
                        option: str = f'train.{OPTION}') -> Tuple[List[FeatureTerm], List[str], List[str]]:
    """Parse ``feature_kd_opt`` entries against the two networks: layer maps resolved, feature shapes probed
    (one tiny forward of each network), losses built (FitNet adapters sized by the probed channels).

    Returns the terms and the student / teacher module names to tap (the teacher modules that CrossKD
    replaces are not tapped). Every problem is reported here, before training starts.
    """
    if isinstance(entries, dict):
        entries = [entries]
    parsed = []
    s_names, t_names = [], []
    for i, entry in enumerate(entries):
        entry = dict(entry)
        loss_type = entry.get('type')
        if loss_type is None:
            raise ValueError(f'{option}[{i}] has no `type` (e.g. FAKDLoss, FitNetLoss, AttentionTransferLoss, '
                             'RKDLoss, CrossKDLoss)')
        loss_cls = LOSS_REGISTRY.get(loss_type)
        cross = getattr(loss_cls, 'crosses_teacher', False)
        layers = entry.pop('layers', None)
        num_pairs = int(entry.pop('num_pairs', 4))
        if cross:
            pairs = parse_layer_map(CROSSKD_DEFAULT_LAYERS if layers in (None, 'default') else layers, student,
                                    teacher)
            if len(pairs) != 1:
                raise ValueError(f'{option}[{i}] ({loss_type}) takes exactly one layer pair '
                                 '{student_module: teacher_module}: the teacher module whose output the '
                                 f'student feature replaces; got {pairs}')
        else:
            pairs = parse_layer_map(layers, student, teacher, num_pairs)
            if layers in (None, 'default') and len(pairs) < num_pairs:
                get_root_logger().warning(
                    f'{option}[{i}] ({loss_type}): num_pairs {num_pairs}, but the student has only {len(pairs)} '
                    f'stages, so the default map pairs {len(pairs)} layers; set `num_pairs: {len(pairs)}` or '
                    '`layers:` to silence this.')
        for s, t in pairs:
            if s not in s_names:
                s_names.append(s)
            if t not in t_names and not cross:
                t_names.append(t)
        parsed.append((i, entry, loss_cls, pairs, cross))

    size = _probe_size(student, teacher)
    s_shapes = dict(zip(s_names, probe_feature_shapes(student, s_names, size, 'student', device)))
    t_all = t_names + [t for *_, pairs, cross in parsed if cross for _, t in pairs if t not in t_names]
    t_shapes = dict(zip(t_all, probe_feature_shapes(teacher, t_all, size, 'teacher', device)))

    terms, taken = [], set()
    for i, entry, loss_cls, pairs, cross in parsed:
        where = f'{option}[{i}] ({entry["type"]})'
        if getattr(loss_cls, 'needs_channels', False):
            entry['student_channels'] = [s_shapes[s][0] for s, _ in pairs]
            entry['teacher_channels'] = [t_shapes[t][0] for _, t in pairs]
        for s, t in pairs:
            if cross and s_shapes[s] != t_shapes[t]:
                raise ValueError(f"{where}: student '{s}' gives {s_shapes[s]} features but teacher '{t}' "
                                 f'gives {t_shapes[t]}; CrossKD needs equal (C, H, W) (pairs of equal width). '
                                 'For unequal widths use FitNetLoss.')
            if not cross and getattr(loss_cls, 'needs_same_size', True) and s_shapes[s][1:] != t_shapes[t][1:]:
                raise ValueError(f"{where}: student '{s}' works at {s_shapes[s][1:]} but teacher '{t}' at "
                                 f'{t_shapes[t][1:]} (on a {size}px probe); pair layers of equal resolution')
        if cross and window_multiple(student) != window_multiple(teacher):
            raise ValueError(f'{where}: student and teacher pad inputs to different window multiples '
                             f'({window_multiple(student)} vs {window_multiple(teacher)}), so their features '
                             'differ in size; CrossKD needs the same padding')
        terms.append(FeatureTerm(_log_name(entry['type'], taken), build_loss(entry), pairs, cross, i))
    return terms, s_names, t_names


class FeatureKDMixin:
    """Adds ``train.feature_kd_opt`` terms to a KDModel subclass's real-pair losses."""

    option_families = ('feature', )

    # ------------------------------------------------------------------------------------------ setup
    def build_extra_modules(self):
        super().build_extra_modules()
        entries = self.opt['train'].get(OPTION)
        if not entries:
            raise ValueError(f"model_type {self.opt['model_type']} needs `train.{OPTION}`, e.g. "
                             '{type: FAKDLoss, loss_weight: 1.0} (layers default to the stage map), '
                             'or use model_type KDModel / DUKDModel without feature distillation.')
        student, teacher = self.get_bare_model(self.net_g), self.net_t
        self.feature_terms, s_names, t_names = build_feature_terms(entries, student, teacher, self.device)
        batch = (self.opt.get('datasets', {}).get('train') or {}).get('batch_size_per_gpu')
        for term in self.feature_terms:  # relational losses compare samples: too small a batch fails mid-run
            need = getattr(term.loss, 'min_batch', 1)
            if batch is not None and int(batch) < need:
                raise ValueError(f'{OPTION}[{term.index}] ({term.loss.__class__.__name__}) relates the samples of a '
                                 f'batch and needs at least {need} per GPU; datasets.train.batch_size_per_gpu is '
                                 f'{batch}. Raise it to {need} or more.')
        for term in self.feature_terms:
            term.loss.to(self.device)
            if any(p.requires_grad for p in term.loss.parameters()):
                self.extra_trainable[f'feature_kd_{term.index}'] = term.loss
            get_root_logger().info(f'Feature KD {term.log_name}: {term.loss.__class__.__name__} on '
                                   + ', '.join(f'{s} -> {t}' for s, t in term.pairs))
        self.student_taps = FeatureTaps(student, s_names, 'student')
        self.teacher_taps = FeatureTaps(teacher, t_names, 'teacher')

    # ------------------------------------------------------------------------------------------ losses
    def _check_real_batch(self, taps: FeatureTaps):
        b, (h, w) = self.lq.shape[0], self.lq.shape[-2:]
        seen = taps.input
        if seen is None or seen.shape[0] < b or not torch.equal(seen[:b, :, :h, :w], self.lq):
            raise RuntimeError(f'feature KD: the first {taps.role} forward of the iteration was not on the real LR '
                               'batch; the model calling compute_losses changed its forward order')

    def compute_losses(self, current_iter, *args, **kwargs):
        groups = kwargs.get('groups', args[0] if args else ('real', ))
        if 'real' not in groups:  # two-step DUKD's upcycled step: no real-pair forward to tap
            return super().compute_losses(current_iter, *args, **kwargs)
        b, (h, w) = self.lq.shape[0], self.lq.shape[-2:]
        # else the parent never runs the teacher on the real LR (no kd term, or its label comes from the store)
        teacher_in_parent = self.cri_kd is not None and self.stored_teacher_label() is None
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.student_taps.capture(b))
            if teacher_in_parent:
                stack.enter_context(self.teacher_taps.capture(b))
            l_total, loss_dict = super().compute_losses(current_iter, *args, **kwargs)
        self._check_real_batch(self.student_taps)
        if teacher_in_parent:
            self._check_real_batch(self.teacher_taps)
        else:
            with self.teacher_taps.capture(b):
                self.teacher_forward(self.lq)

        s_feats = self.student_taps.feature_dict(crop=(h, w))
        t_feats = self.teacher_taps.feature_dict(crop=(h, w))
        for term in self.feature_terms:
            if term.cross:
                value = self._cross_kd(term)
            else:
                value = term.loss([s_feats[s] for s, _ in term.pairs], [t_feats[t] for _, t in term.pairs])
            loss_dict[term.log_name] = value
            l_total = l_total + value
        self.student_taps.clear()
        self.teacher_taps.clear()
        return l_total, loss_dict

    def _cross_kd(self, term: FeatureTerm) -> torch.Tensor:
        """Teacher forward on the real LR with its module's output replaced by the student's feature.

        Not under no_grad: the teacher's weights are frozen, so only the path from the replaced
        feature to the output builds a graph, and the gradient flows back into the student.
        """
        (s_name, t_name), = term.pairs
        b, (h, w) = self.lq.shape[0], self.lq.shape[-2:]
        s_feat = self.student_taps.feature_dict()[s_name]  # at the padded size, like the teacher's
        with replace_output(resolve_module(self.net_t, t_name, 'teacher'), s_feat):
            cross_out = forward_padded(self.net_t, self.lq, window_multiple(self.net_t), self.scale)
        teacher_out = self.teacher_taps.output[:b, :, :h * self.scale, :w * self.scale]
        return term.loss(cross_out, teacher_out)


@MODEL_REGISTRY.register()
class FeatureKDModel(FeatureKDMixin, KDModel):
    """Output KD (``kd_opt``, optional) + feature distillation terms (``feature_kd_opt``)."""


@MODEL_REGISTRY.register()
class FeatureDUKDModel(FeatureKDMixin, DUKDModel):
    """DUKD (zoom-in, zoom-out, label consistency) + feature distillation terms on the real pair."""
