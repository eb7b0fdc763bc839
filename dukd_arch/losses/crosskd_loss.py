"""CrossKD (Wang et al., CVPR 2024) for SR: the student's feature replaces the teacher's at one layer,
the teacher's *later* layers (its tail: e.g. long skip, upsampler, last conv) turn it into an image,
and that image is pulled towards the teacher's own output. The gradient reaches the student through
the frozen teacher tail, so the student learns features the teacher can read.

This loss only compares the two images; the feature-KD models run the teacher with the replaced
feature (``dukd_arch.losses.feature_taps.replace_output``). The replaced feature must have exactly
the teacher's shape, so CrossKD needs pairs of equal width at that layer (RCAN 64 -> 64, EDSR-baseline
64 -> 64); for unequal widths use FitNetLoss.
Options: ``{type: CrossKDLoss, layers: {conv_after_body: conv_after_body}, loss_weight: 1.0}``: one pair,
student module -> teacher module whose output it replaces.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import LOSS_REGISTRY


@LOSS_REGISTRY.register()
class CrossKDLoss(nn.Module):
    """Args: loss_weight; criterion 'l1' (default, as every other SR distillation term here) or 'l2'."""
    crosses_teacher = True  # the models recognise it by this flag and run the teacher tail for it

    def __init__(self, loss_weight: float = 1.0, criterion: str = 'l1'):
        super().__init__()
        if criterion not in ('l1', 'l2'):
            raise ValueError(f"CrossKDLoss criterion must be 'l1' or 'l2', got {criterion!r}")
        self.loss_weight = float(loss_weight)
        self.criterion = criterion

    def forward(self, cross_output: torch.Tensor, teacher_output: torch.Tensor) -> torch.Tensor:
        if cross_output.shape != teacher_output.shape:
            raise ValueError(f'CrossKDLoss: teacher tail gave {tuple(cross_output.shape)}, teacher output is '
                             f'{tuple(teacher_output.shape)}')
        fn = F.l1_loss if self.criterion == 'l1' else F.mse_loss
        return self.loss_weight * fn(cross_output, teacher_output.detach())
