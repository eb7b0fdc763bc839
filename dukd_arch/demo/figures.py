"""The demo's pictures: a side-by-side crop comparison and validation PSNR against iteration."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


def most_textured_window(img: np.ndarray, size: int, stride: int = 8) -> Tuple[int, int]:
    """Top-left of the ``size`` x ``size`` window with the most gradient energy (where SR methods differ)."""
    grey = img.astype(np.float64).mean(axis=2) if img.ndim == 3 else img.astype(np.float64)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    integral = np.pad(energy, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    best, best_pos = -1.0, (0, 0)
    h, w = energy.shape
    for top in range(0, max(1, h - size + 1), stride):
        for left in range(0, max(1, w - size + 1), stride):
            b, r = min(top + size, h), min(left + size, w)
            e = integral[b, r] - integral[top, r] - integral[b, left] + integral[top, left]
            if e > best:
                best, best_pos = e, (top, left)
    return best_pos


def side_by_side(panels: Sequence[Tuple[str, np.ndarray]], out_path: str, crop: Tuple[int, int, int],
                 scale: int, title: str = '') -> None:
    """Save a row of crops. ``panels``: (label, RGB uint8 image); the first is the LR image (shown
    nearest-upscaled so pixels stay visible), the others are HR-sized. ``crop`` = (top, left, size) in HR."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    top, left, size = crop
    fig, axes = plt.subplots(1, len(panels), figsize=(2.3 * len(panels), 3.0))
    for ax, (label, img) in zip(np.atleast_1d(axes), panels):
        if img.shape[0] * scale == panels[-1][1].shape[0] and img.shape[1] * scale == panels[-1][1].shape[1]:
            t, l, s = top // scale, left // scale, size // scale
            patch = np.repeat(np.repeat(img[t:t + s, l:l + s], scale, 0), scale, 1)
        else:
            patch = img[top:top + size, left:left + size]
        ax.imshow(patch, interpolation='nearest')
        ax.set_title(label, fontsize=8)
        ax.axis('off')
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92) if title else None)
    fig.savefig(out_path, dpi=150)
    plt.close(fig)


def psnr_curves(curves: Dict[str, List[Tuple[int, float]]], out_path: str, hlines: Optional[Dict[str, float]] = None,
                title: str = '') -> None:
    """Validation PSNR against iteration, one line per run, with reference levels (bicubic, teacher)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        if curve:
            its, vals = zip(*curve)
            ax.plot(its, vals, marker='o', markersize=3, label=label)
    for i, (label, value) in enumerate((hlines or {}).items()):
        ax.axhline(value, linestyle='--', linewidth=1, color=f'C{len(curves) + i}', label=f'{label} ({value:.2f} dB)')
    ax.set_xlabel('iteration')
    ax.set_ylabel('held-out PSNR, Y (dB)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, dpi=150)
    plt.close(fig)
