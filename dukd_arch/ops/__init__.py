"""The method's tensor operations: pure functions on (N, C, H, W) tensors, no BasicSR dependency."""
from .invertible_aug import (AUGMENTATION_OPS, DIHEDRAL_TRANSFORMS, apply_augmentations, invert_augmentations,
                             inverse_transform, sample_augmentations, transform)
from .matlab_resize import matlab_imresize, matlab_imresize_uint8
from .padding import fits_window, forward_padded, pad_to_multiple, padding_needed
from .tiling import tiled_forward, tiling_error
from .upcycling import grid_tile_positions, zoom_in, zoom_out

__all__ = [
    'AUGMENTATION_OPS', 'apply_augmentations', 'invert_augmentations', 'sample_augmentations', 'transform',
    'inverse_transform', 'DIHEDRAL_TRANSFORMS',
    'matlab_imresize', 'matlab_imresize_uint8', 'fits_window', 'pad_to_multiple', 'padding_needed', 'forward_padded', 'tiled_forward',
    'tiling_error', 'grid_tile_positions', 'zoom_in', 'zoom_out'
]
