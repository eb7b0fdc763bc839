"""PairedImageDataset that also prepares DUKD's upcycled inputs on the data-loader workers."""
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.registry import DATASET_REGISTRY

from ..ops import zoom_in, zoom_out
from .bad_images import checked_pair
from .pair_folders import dataset_option
from .teacher_label_dataset import TrainingPairMixin


@DATASET_REGISTRY.register()
class UpcyclingPairedImageDataset(TrainingPairMixin, PairedImageDataset):
    """BasicSR's PairedImageDataset (disk / lmdb / meta_info, crop, flip, rot) plus, in the train phase:

    * ``zoom_in`` (n, C, h, w): ``upcycling.zoom_in_tiles`` LR-sized tiles of the cropped HR patch, at
      ``upcycling.positions`` ('grid': a random cell of the non-overlapping grid; 'random': any offset),
      drawn per sample;
    * ``zoom_out`` (C, h/s, w/s): the LR patch shrunk by the scale with MATLAB's antialiased bicubic;
    * ``teacher`` (C, sh, sw) with ``dataroot_teacher``: the stored teacher label, cropped and augmented with the
      HR patch (``data/teacher_label_dataset.py``);
    * with ``decoded_cache_mib``, decoded images stay in memory (``data/decoded_cache.py``).

    Doing this on the workers keeps the CPU resize out of the training step. Every pair is checked:
    an HR image that is not ``scale`` x its LR image is reported with both file names, and an unreadable
    or truncated image with its path; ``bad_images: skip`` skips such pairs instead (``data/bad_images.py``).
    """

    def __init__(self, opt):
        super().__init__(opt)  # missing folders are named there (compat.py, data/pair_folders.py)
        up = dict(opt.get('upcycling') or {})
        unknown = set(up) - {'zoom_in_tiles', 'positions', 'zoom_out'}
        if unknown:
            raise ValueError(f'{dataset_option(opt, "upcycling")}: unknown key(s) {sorted(unknown)}; '
                             'known: zoom_in_tiles, positions, zoom_out')
        self.zoom_in_tiles = int(up.get('zoom_in_tiles', 1))
        self.positions = up.get('positions', 'grid')
        self.with_zoom_out = bool(up.get('zoom_out', True))
        self._init_training_pairs()

    def __getitem__(self, index):
        return self.load_checked(self._load_pair, index)

    def _load_pair(self, index):
        item = checked_pair(self, index, self._paired_item)  # bad files named (data/bad_images.py)
        scale = self.opt['scale']
        lq, gt = item['lq'], item['gt']
        if self.opt['phase'] == 'train':
            if self.zoom_in_tiles > 0:
                item['zoom_in'] = zoom_in(gt[None], lq.shape[-2:], self.zoom_in_tiles, self.positions)
            if self.with_zoom_out:
                item['zoom_out'] = zoom_out(lq[None], scale)[0]
        return item
