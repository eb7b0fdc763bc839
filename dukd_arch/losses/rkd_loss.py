"""Relational KD (Park et al., CVPR 2019): match the relations between the samples of a batch.

Each sample's feature is flattened to one vector (widths and sizes may differ between student and
teacher). Distance term: pairwise distances, each set divided by its mean non-zero distance,
compared with smooth L1. Angle term: cosines of the angles e_i - e_j, e_k - e_j for all triplets,
compared with smooth L1. Both are computed from the B x B Gram matrix of batch-centred vectors
(distances and angles do not change under centring), so memory is O(B^3), not O(B^2 x C x H x W).
Needs batch size >= 3 (>= 2 with ``angle_weight: 0``).
"""
import torch
import torch.nn.functional as F

from basicsr.utils.registry import LOSS_REGISTRY

from .feature_loss_base import FeatureLoss


def _gram(feat: torch.Tensor) -> torch.Tensor:
    e = feat.flatten(1)
    if e.dtype in (torch.float16, torch.bfloat16):  # Gram entries overflow / lose precision in half
        e = e.float()
    e = e - e.mean(dim=0, keepdim=True)
    return e @ e.t()


def pairwise_distances(gram: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    sq = gram.diagonal()
    d2 = (sq.unsqueeze(0) + sq.unsqueeze(1) - 2 * gram).clamp(min=eps)
    off_diag = ~torch.eye(gram.shape[0], dtype=torch.bool, device=gram.device)
    return d2.sqrt() * off_diag


def triplet_cosines(gram: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """cos of the angle at j between e_i and e_k, for all (i, j, k): a (B, B, B) tensor indexed [j, i, k]."""
    # <e_i - e_j, e_k - e_j> = G_ik - G_ij - G_jk + G_jj
    g_jj = gram.diagonal().view(-1, 1, 1)
    g_ij = gram.t().unsqueeze(2)  # [j, i, 1] = G_ij
    g_jk = gram.unsqueeze(1)  # [j, 1, k] = G_jk
    dots = gram.unsqueeze(0) - g_ij - g_jk + g_jj
    norms = dots.diagonal(dim1=1, dim2=2).clamp(min=eps).sqrt()  # [j, i] = |e_i - e_j|
    # i == j or k == j: no angle (a zero vector); rounding would otherwise divide noise by eps
    not_anchor = ~torch.eye(gram.shape[0], dtype=torch.bool, device=gram.device)  # [j, i]
    valid = not_anchor.unsqueeze(2) & not_anchor.unsqueeze(1)
    denominators = torch.where(valid, norms.unsqueeze(2) * norms.unsqueeze(1), torch.ones_like(dots))
    return torch.where(valid, dots / denominators, torch.zeros_like(dots))


@LOSS_REGISTRY.register()
class RKDLoss(FeatureLoss):
    """Args: loss_weight; distance_weight, angle_weight (relative weights, 1 : 2 as the paper's 25 : 50)."""
    needs_same_size = False

    def __init__(self, loss_weight: float = 1.0, distance_weight: float = 1.0, angle_weight: float = 2.0):
        super().__init__(loss_weight)
        self.distance_weight = float(distance_weight)
        self.angle_weight = float(angle_weight)
        if self.distance_weight < 0 or self.angle_weight < 0 or self.distance_weight + self.angle_weight == 0:
            raise ValueError('RKDLoss needs non-negative distance_weight / angle_weight, not both 0')
        self.min_batch = 3 if self.angle_weight > 0 else 2

    def pair_loss(self, index: int, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        gs, gt = _gram(student), _gram(teacher)
        loss = student.new_zeros((), dtype=gs.dtype)
        if self.distance_weight > 0:
            ds, dt = pairwise_distances(gs), pairwise_distances(gt)
            ds = ds / ds[ds > 0].mean()
            dt = dt / dt[dt > 0].mean()
            loss = loss + self.distance_weight * F.smooth_l1_loss(ds, dt)
        if self.angle_weight > 0:
            loss = loss + self.angle_weight * F.smooth_l1_loss(triplet_cosines(gs), triplet_cosines(gt))
        return loss.to(student.dtype)
