"""Gradient averaging for trainable modules that live outside the student's DDP wrapper (torch only)."""
import torch.distributed as dist
from torch import nn


def average_gradients_across_ranks(module: nn.Module):
    """DDP does not synchronise the gradients of modules it does not wrap (feature adapters); average each
    one over the ranks as soon as it is accumulated, so every rank's copy stays identical."""

    def hook(param):
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
        param.grad.div_(dist.get_world_size())

    for p in module.parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(hook)
