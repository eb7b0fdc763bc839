"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017): match spatial attention maps.

Attention map of a (B, C, H, W) feature: mean over channels of |F|^p, flattened and L2-normalised
per sample. Loss per pair: squared L2 distance between the student's and teacher's normalised maps,
averaged over the batch (in [0, 4]; independent of the patch size and of the channel widths, so
pairs of different widths need no adapter).
"""
import torch
import torch.nn.functional as F

from basicsr.utils.registry import LOSS_REGISTRY

from .feature_loss_base import FeatureLoss


def attention_map(feat: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    return F.normalize(feat.abs().pow(p).mean(dim=1).flatten(1), dim=1)


@LOSS_REGISTRY.register()
class AttentionTransferLoss(FeatureLoss):
    """Args: loss_weight; p: exponent of the attention map (2 in the paper)."""

    def __init__(self, loss_weight: float = 1.0, p: float = 2.0):
        super().__init__(loss_weight)
        self.p = float(p)

    def pair_loss(self, index: int, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        diff = attention_map(student, self.p) - attention_map(teacher, self.p)
        return diff.pow(2).sum(dim=1).mean()
