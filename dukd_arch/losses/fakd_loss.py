"""FAKD (He et al., "Feature-affinity based knowledge distillation for efficient image super-resolution",
ICIP 2020): match the spatial affinity matrices of student and teacher features.

Affinity of a (B, C, H, W) feature: each of the N = H*W position vectors is L2-normalised over the
channels, A = F^T F (B x N x N cosine similarities). Loss per pair: mean |A_student - A_teacher|.
Widths may differ (A is N x N either way).

Memory: A has N^2 entries per sample (48 x 48 patch: 5.3M; 96 x 96: 85M). Two remedies, both options:
- ``chunk_size`` (default 512): A is built ``chunk_size`` rows at a time and each chunk is
  recomputed in the backward pass (activation checkpointing), so at most B x chunk_size x N
  affinities live at once; the loss and its gradient are exact.
- ``max_positions`` (default off): when N exceeds it, a random subset of positions (the same for
  student and teacher, redrawn every call) is used: an unbiased estimate of the full loss at
  O(max_positions^2) cost, for very large patches.

Unlike the authors' port (which summed terms through ``torch.tensor([...])`` and so never trained on
them), the returned loss is differentiable.
"""
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from basicsr.utils.registry import LOSS_REGISTRY

from .feature_loss_base import FeatureLoss


def normalised_positions(feat: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, N) with every position vector of unit L2 norm over channels."""
    return F.normalize(feat.flatten(2), dim=1, eps=eps)


def spatial_affinity(feat: torch.Tensor) -> torch.Tensor:
    """The full (B, N, N) affinity matrix (for inspection and tests; the loss never builds it whole)."""
    f = normalised_positions(feat)
    return f.transpose(1, 2) @ f


def _affinity_l1_rows(fs: torch.Tensor, ft: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    rows_s = fs[:, :, start:stop].transpose(1, 2) @ fs
    rows_t = ft[:, :, start:stop].transpose(1, 2) @ ft
    return (rows_s - rows_t).abs().sum()


@LOSS_REGISTRY.register()
class FAKDLoss(FeatureLoss):
    """Args: loss_weight; chunk_size (rows of A per checkpointed chunk); max_positions (None: all)."""

    def __init__(self, loss_weight: float = 1.0, chunk_size: int = 512, max_positions: int = None):
        super().__init__(loss_weight)
        if int(chunk_size) < 1:
            raise ValueError(f'FAKDLoss chunk_size must be >= 1, got {chunk_size}')
        if max_positions is not None and int(max_positions) < 2:
            raise ValueError(f'FAKDLoss max_positions must be >= 2 or null, got {max_positions}')
        self.chunk_size = int(chunk_size)
        self.max_positions = None if max_positions is None else int(max_positions)

    def pair_loss(self, index: int, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        fs, ft = normalised_positions(student), normalised_positions(teacher)
        b, _, n = fs.shape
        if self.max_positions is not None and n > self.max_positions:
            keep = torch.randperm(n, device=fs.device)[:self.max_positions]
            fs, ft = fs[:, :, keep], ft[:, :, keep]
            n = self.max_positions
        use_checkpoint = n > self.chunk_size and torch.is_grad_enabled() and fs.requires_grad
        total = fs.new_zeros(())
        for start in range(0, n, self.chunk_size):
            stop = min(start + self.chunk_size, n)
            if use_checkpoint:
                total = total + checkpoint(_affinity_l1_rows, fs, ft, start, stop, use_reentrant=False)
            else:
                total = total + _affinity_l1_rows(fs, ft, start, stop)
        return total / (b * n * n)
