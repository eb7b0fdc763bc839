"""Validation / test images too small for a window network: named and left out, the others evaluated.

A window network (SwinIR) needs input sizes that are multiples of its window; smaller inputs are
reflect-padded, which is impossible when the padding would exceed the image. BasicSR stops the whole
test run at the first such image with a padding error that names no file.
"""
from ..ops.padding import fits_window


class ImagesThatFit:
    """Wraps a validation DataLoader: yields only the batches whose LR fits ``multiple``, warns for the others.

    BasicSR's validation loop averages metrics over the batches it enumerates, so left-out images do not
    dilute them. Raises when no image of the set fits (an average over nothing would be meaningless).
    """

    def __init__(self, loader, multiple: int, logger):
        self.loader, self.multiple, self.logger = loader, multiple, logger
        self.dataset = loader.dataset  # BasicSR reads dataset.opt['name']

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        used = left_out = 0
        for batch in self.loader:
            h, w = batch['lq'].shape[-2:]
            if fits_window(h, w, self.multiple):
                used += 1
                yield batch
                continue
            left_out += 1
            names = ', '.join(map(str, batch.get('lq_path', ['(unnamed)'])))
            self.logger.warning(f'{names}: the LR image is {h}x{w}, too small to pad to a multiple of the window '
                                f'size {self.multiple}; left out of the metrics. Use images of at least '
                                f'{self.multiple // 2 + 1}px per side, or a network with a smaller window.')
        name = self.dataset.opt.get('name', '?') if hasattr(self.dataset, 'opt') else '?'
        if left_out and not used:
            raise ValueError(f'validation set {name}: none of its {left_out} images is large enough for the window '
                             f'size {self.multiple}; use larger images or a network with a smaller window.')
        if left_out:
            self.logger.warning(f'validation set {name}: {left_out} image(s) left out, metrics over {used}.')
