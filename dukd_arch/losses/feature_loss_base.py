"""Common shape checks and layer averaging for feature-distillation losses.

A feature loss is called with two equally long lists of (B, C, H, W) maps, pair i being
(student feature i, teacher feature i) of the layer map. The result is ``loss_weight`` times the
mean over pairs (so the weight does not change meaning with the number of tapped layers). Teacher
features are detached: the teacher is a fixed target.
"""
from typing import List, Sequence

import torch
from torch import nn


class FeatureLoss(nn.Module):
    # subclasses with trainable parts sized by the features (FitNet adapters) set this; the model then
    # passes ``student_channels`` and ``teacher_channels`` (lists, one per pair) to the constructor
    needs_channels = False
    # False for losses that compare relations only and accept different spatial sizes (RKD)
    needs_same_size = True
    min_batch = 1

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = float(loss_weight)

    def pair_loss(self, index: int, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, student_feats: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor]) -> torch.Tensor:
        name = self.__class__.__name__
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise ValueError(f'{name}: got {len(student_feats)} student and {len(teacher_feats)} teacher features; '
                             'it needs one teacher feature per student feature (at least one pair)')
        losses: List[torch.Tensor] = []
        for i, (s, t) in enumerate(zip(student_feats, teacher_feats)):
            if s.dim() != 4 or t.dim() != 4:
                raise ValueError(f'{name}: pair {i} has shapes {tuple(s.shape)} / {tuple(t.shape)}; '
                                 'expected (B, C, H, W) maps')
            if s.shape[0] != t.shape[0]:
                raise ValueError(f'{name}: pair {i} has batch sizes {s.shape[0]} (student) and {t.shape[0]} (teacher)')
            if s.shape[0] < self.min_batch:
                raise ValueError(f'{name} relates samples of a batch and needs batch size >= {self.min_batch}, '
                                 f'got {s.shape[0]}; raise `datasets.train.batch_size_per_gpu`')
            if self.needs_same_size and s.shape[-2:] != t.shape[-2:]:
                raise ValueError(f'{name}: pair {i} has spatial sizes {tuple(s.shape[-2:])} (student) and '
                                 f'{tuple(t.shape[-2:])} (teacher); map layers that work at the same resolution')
            losses.append(self.pair_loss(i, s, t.detach()))
        return self.loss_weight * torch.stack(losses).mean()
