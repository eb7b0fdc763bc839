"""Data upcycling: new in-domain inputs made from a training pair, labelled by the teacher alone.

* zoom-in: LR-sized tiles cut out of the HR patch (real high-frequency content at LR size);
* zoom-out: the LR patch shrunk once more by the SR scale with the benchmark's bicubic operator.
"""
from typing import List, Optional, Sequence, Tuple

import torch

from .matlab_resize import matlab_imresize


def grid_tile_positions(hr_size: Tuple[int, int], tile_size: Tuple[int, int], num_tiles: int,
                        generator: Optional[torch.Generator] = None) -> List[Tuple[int, int]]:
    """Top-left corners of ``num_tiles`` distinct cells of the non-overlapping tile grid of the HR patch."""
    rows, cols = hr_size[0] // tile_size[0], hr_size[1] // tile_size[1]
    if num_tiles < 1 or num_tiles > rows * cols:
        raise ValueError(f'zoom_in.num_tiles={num_tiles} does not fit: an HR patch of {hr_size[0]}x{hr_size[1]} '
                         f'holds {rows * cols} non-overlapping {tile_size[0]}x{tile_size[1]} tiles. '
                         f'Lower num_tiles (authors: n_gt_sub) or enlarge gt_size.')
    cells = torch.randperm(rows * cols, generator=generator)[:num_tiles].tolist()
    return [((c // cols) * tile_size[0], (c % cols) * tile_size[1]) for c in cells]


def zoom_in(hr: torch.Tensor, tile_size: Sequence[int], num_tiles: int = 1, positions: str = 'grid',
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Cut ``num_tiles`` tiles of ``tile_size`` from each HR patch; returns (num_tiles * B, C, th, tw).

    The result is tile-major: rows ``[k * B, (k + 1) * B)`` hold tile ``k`` of every sample.
    ``positions='grid'`` takes cells of the non-overlapping grid, the same cells for the whole batch
    (the authors' choice); ``'random'`` draws an independent, unaligned position per tile and sample.
    """
    th, tw = int(tile_size[0]), int(tile_size[1])
    b, c, h, w = hr.shape
    if positions == 'grid':
        corners = grid_tile_positions((h, w), (th, tw), num_tiles, generator)
        return torch.cat([hr[:, :, t:t + th, l:l + tw] for t, l in corners], dim=0)
    if positions != 'random':
        raise ValueError(f"zoom_in.positions must be 'grid' or 'random', got {positions!r}")
    if th > h or tw > w or num_tiles < 1:
        raise ValueError(f'zoom_in: cannot cut {num_tiles} tile(s) of {th}x{tw} from an HR patch of {h}x{w}.')
    n = num_tiles * b
    tops = torch.randint(0, h - th + 1, (n, ), generator=generator).to(hr.device)
    lefts = torch.randint(0, w - tw + 1, (n, ), generator=generator).to(hr.device)
    rows = tops[:, None] + torch.arange(th, device=hr.device)[None]  # (n, th)
    cols = lefts[:, None] + torch.arange(tw, device=hr.device)[None]  # (n, tw)
    src = torch.arange(n, device=hr.device) % b
    tiles = hr[src[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (n, th, tw, C)
    return tiles.permute(0, 3, 1, 2).contiguous()


def zoom_out(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """Shrink the LR patch by the SR scale with MATLAB's antialiased bicubic (the benchmark LR operator)."""
    return matlab_imresize(lq, 1.0 / scale)
