"""Run an SR network tile by tile with overlap: memory bounded by the tile, output as if run whole.

Each tile is widened by ``overlap`` input pixels on every side that has image there, and only the
output of its own (unwidened) area is kept. For a network whose receptive field reaches at most
``overlap`` pixels this equals the untiled output up to float rounding; networks with global
operations (channel attention, window attention) are only approximately equal, so callers measure
the difference (``tiling_error``).

``window=(fh, fw)`` serves networks with a fixed input size (a static ONNX graph): each tile's context
is then a whole ``fh`` x ``fw`` window kept inside the image, shifted inward at the borders, because
padding a short window would change the border pixels.
"""
from typing import Callable, Optional, Tuple

import torch


def tiled_forward(net_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int,
                  tile: Optional[int], overlap: int, window: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """``net_fn(x)`` (an ``x scale`` upscaler) computed on ``tile`` x ``tile`` input tiles; ``tile=None``: whole."""
    h, w = x.shape[-2:]
    if not tile or (h <= tile and w <= tile and window is None):
        return net_fn(x)
    if tile < 1 or overlap < 0:
        raise ValueError(f'tile must be >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}')
    out = None
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            if window is None:
                t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
                t1, l1 = min(bottom + overlap, h), min(right + overlap, w)
            else:
                t0, l0 = max(0, min(top - overlap, h - window[0])), max(0, min(left - overlap, w - window[1]))
                t1, l1 = min(h, t0 + window[0]), min(w, l0 + window[1])
            y = net_fn(x[..., t0:t1, l0:l1])
            if out is None:
                out = y.new_zeros(*y.shape[:-2], h * scale, w * scale)
            dt, dl = (top - t0) * scale, (left - l0) * scale
            out[..., top * scale:bottom * scale, left * scale:right * scale] = \
                y[..., dt:dt + (bottom - top) * scale, dl:dl + (right - left) * scale]
    return out


def tiling_error(net_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int, tile: int,
                 overlap: int) -> float:
    """Largest |tiled - untiled| on the top-left ``2 tile`` x ``2 tile`` crop of ``x`` (tiles meet inside it)."""
    crop = x[..., :2 * tile, :2 * tile]
    return float((tiled_forward(net_fn, crop, scale, tile, overlap) - net_fn(crop)).abs().max())
