"""FitNet (Romero et al., ICLR 2015): regress the teacher's features from the student's through
trainable 1x1 conv adapters (student channels -> teacher channels), one adapter per layer pair.

The adapters are trained with the student (the model puts this loss in ``extra_trainable``) and
are saved and resumed with it; they are not part of the deployed student.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import LOSS_REGISTRY

from .feature_loss_base import FeatureLoss


@LOSS_REGISTRY.register()
class FitNetLoss(FeatureLoss):
    """Args:
        loss_weight: weight of the mean over layer pairs.
        student_channels / teacher_channels: channels of each tapped feature (filled in by the model
            from a probe forward; give them yourself when using the loss on its own).
        criterion: 'l2' (mean squared error, FitNet) or 'l1'.
        normalize: divide each pair's error by the teacher feature's mean square (l2) / mean absolute
            value (l1), detached: a relative error, so one loss_weight suits teachers whose features live
            on very different scales (EDSR/RCAN work at img_range 255, SwinIR at 1). false: plain FitNet.
    """
    needs_channels = True

    def __init__(self, loss_weight: float = 1.0, student_channels: Sequence[int] = None,
                 teacher_channels: Sequence[int] = None, criterion: str = 'l2',
                 normalize: bool = True):
        super().__init__(loss_weight)
        if student_channels is None or teacher_channels is None:
            raise ValueError('FitNetLoss needs student_channels and teacher_channels (one per layer pair) to build '
                             'its adapters; the feature-KD models fill them in from the layer map')
        if len(student_channels) != len(teacher_channels):
            raise ValueError(f'FitNetLoss: {len(student_channels)} student but {len(teacher_channels)} teacher '
                             'channel counts; give one per layer pair')
        if criterion not in ('l1', 'l2'):
            raise ValueError(f"FitNetLoss criterion must be 'l1' or 'l2', got {criterion!r}")
        self.criterion = criterion
        self.normalize = bool(normalize)
        self.adapters = nn.ModuleList(
            nn.Conv2d(int(cs), int(ct), kernel_size=1) for cs, ct in zip(student_channels, teacher_channels))

    def pair_loss(self, index: int, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if index >= len(self.adapters):
            raise ValueError(f'FitNetLoss was built for {len(self.adapters)} layer pairs, got pair {index}')
        adapter = self.adapters[index]
        if student.shape[1] != adapter.in_channels or teacher.shape[1] != adapter.out_channels:
            raise ValueError(f'FitNetLoss pair {index}: adapter maps {adapter.in_channels} -> {adapter.out_channels} '
                             f'channels but the features have {student.shape[1]} -> {teacher.shape[1]}')
        regressed = adapter(student)
        if self.criterion == 'l2':
            loss, scale = F.mse_loss(regressed, teacher), teacher.pow(2).mean()
        else:
            loss, scale = F.l1_loss(regressed, teacher), teacher.abs().mean()
        return loss / scale.clamp(min=1e-12) if self.normalize else loss
