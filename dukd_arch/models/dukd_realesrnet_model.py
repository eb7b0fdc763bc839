"""Real-world distillation: Real-ESRNet's on-the-fly degradation feeding output KD and DUKD, on any device.

BasicSR's ``RealESRNetModel`` synthesises the LR inside ``feed_data`` but hard-codes ``.cuda()``. Here the
same second-order pipeline (``data/degradation.py``) runs on the model's device, and the pair goes to
``KDModel`` / ``DUKDModel``. Extra options (top level, as in Real-ESRGAN's files):

* the degradation keys of ``REAL_ESRGAN_DEGRADATION``, ``gt_size``, ``queue_size`` (180), ``scale``;
* ``gt_usm`` (true): degrade the USM-sharpened GT, as Real-ESRNet does;
* ``l1_gt_usm`` (default: ``gt_usm``): the pixel-loss target is the sharpened GT;
* ``high_order_degradation`` (true): false trains on a paired (lq, gt) dataset instead; the pixel target
  is then the clean GT unless ``l1_gt_usm`` is set, as in BasicSR's ``RealESRNetModel`` (the GAN model
  follows ``RealESRGANModel``: sharpened unless ``l1_gt_usm: false``);
* ``upcycling.zoom_in_source`` (DUKD only): ``degraded`` (default) cuts zoom-in tiles from the GT the LR
  is made from (sharpened when ``gt_usm``) and degrades them like the LR
  (``SecondOrderDegradation.degrade_like_lr``: every operator at the LR's pixel scale); ``clean`` cuts
  them from the clean, unsharpened GT (the paper's bicubic-setting zoom-in).

Why, and what happens to zoom-out and label consistency here: docs/realworld.md.
"""
import torch

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ..ops import zoom_in
from ..data.degradation import (REAL_ESRGAN_DEGRADATION, SecondOrderDegradation, TrainingPairQueue, USMSharp,
                                paired_random_crop)
from ..io.network import load_network_safely
from .dukd_model import DUKDModel
from .kd_model import KDModel

ZOOM_IN_SOURCES = ('degraded', 'clean')


class RealWorldSynthesis:
    """Mixin for an SRModel subclass (needs ``self.scale``): LR synthesis, sharpened targets, training-pair queue."""

    option_families = ('sr', 'realworld')
    # the degradation and crop are configured at the top level: compared on resume with the rest (KD models)
    top_level_settings = tuple(REAL_ESRGAN_DEGRADATION) + (
        'gt_size', 'queue_size', 'gt_usm', 'l1_gt_usm', 'percep_gt_usm', 'gan_gt_usm', 'high_order_degradation')

    PAIRED_L1_GT_USM = False  # pixel target of paired training without an explicit l1_gt_usm (BasicSR's choice)

    def _init_synthesis(self):
        """Degradation, sharpener and queue; built only for training (test options need none of the keys)."""
        opt = self.opt
        self.usm_sharpener = USMSharp().to(self.device)
        self.gt_usm_input = bool(opt.get('gt_usm', True))
        explicit = opt.get('l1_gt_usm')
        self.l1_gt_usm = self.gt_usm_input if explicit is None else bool(explicit)
        # paired training: BasicSR's RealESRNetModel keeps the clean GT as pixel target (RealESRGANModel: l1_gt_usm)
        self.paired_l1_gt_usm = self.PAIRED_L1_GT_USM if explicit is None else bool(explicit)
        if not self.synthesising():
            return
        self.degradation = SecondOrderDegradation(opt, self.scale).to(self.device)
        self.queue = TrainingPairQueue(opt.get('queue_size', 180))
        if opt.get('gt_size') is None:
            raise KeyError('Real-world training crops the synthesised pair to `gt_size` (top level of the options, '
                           'e.g. gt_size: 256 as in Real-ESRGAN).')
        self.gt_size = int(opt['gt_size'])

    def synthesising(self) -> bool:
        return self.is_train and self.opt.get('high_order_degradation', True)

    @torch.no_grad()
    def feed_data(self, data):
        if not self.synthesising():
            super().feed_data(data)
            if self.is_train and 'gt' in data:  # paired training: the sharpened GT for the targets that use it
                self.gt_clean = self.gt
                self.gt_usm = self.usm_sharpener(self.gt)
                self.gt = self.gt_usm if self.paired_l1_gt_usm else self.gt_clean
            return
        for key in ('gt', 'kernel1', 'kernel2', 'sinc_kernel'):
            if key not in data:
                raise KeyError(f'real-world training needs `{key}` in every batch: use RealESRGANDataset for the '
                               'train set, or set `high_order_degradation: false` to train on a paired dataset.')
        gt = data['gt'].to(self.device)
        kernels = [data[k].to(self.device) for k in ('kernel1', 'kernel2', 'sinc_kernel')]
        gt_usm = self.usm_sharpener(gt)
        lq = self.degradation(gt_usm if self.gt_usm_input else gt, *kernels)
        (gt, gt_usm), lq = paired_random_crop([gt, gt_usm], lq, self.gt_size, self.scale)
        # the pool mixes degradations drawn for different batches (a batch shares resize factors and modes);
        # the kernels travel with their pair (zoom-in tiles are degraded with their sample's kernels)
        lq, gt, gt_usm, *kernels = self.queue(lq, gt, gt_usm, *kernels)
        self.lq = lq.contiguous()
        if hasattr(self, 'note_epoch_position'):  # KDModel subclasses: exact resume within the epoch
            self.note_epoch_position(data)
        self.gt_clean, self.gt_usm, self.kernels = gt, gt_usm, kernels
        self.gt = self.gt_usm if self.l1_gt_usm else self.gt_clean  # the pixel-loss target
        self.zoom_in_data = self.zoom_out_data = None

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        if self.synthesising():  # the one part of a real-world run that training states do not hold
            get_root_logger().warning(
                f"resume from iter {resume_state['iter']}: the training-pair queue (queue_size {self.queue.size}) is "
                'not in training states (as in Real-ESRGAN: it holds that many full-size pairs); it refills, passing '
                'its batches unmixed meanwhile, so the resumed run is valid but not bit-identical to an '
                'uninterrupted one.')

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        # validation pairs come from disk: no synthesis, clean GT
        was_train = self.is_train
        self.is_train = False
        try:
            super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self.is_train = was_train


@MODEL_REGISTRY.register()
class ScratchRealESRNetModel(RealWorldSynthesis, SRModel):
    """The student trained alone (no teacher): BasicSR's Real-ESRNet, but on any device. The scratch baseline."""

    def __init__(self, opt):
        self.scale = int(opt['scale'])
        super().__init__(opt)
        self._init_synthesis()

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """Through the safe reader, as in KDModel (BasicSR: plain torch.load)."""
        load_network_safely(self.get_bare_model(net), load_path, strict, param_key)


@MODEL_REGISTRY.register()
class KDRealESRNetModel(RealWorldSynthesis, KDModel):
    """Output KD on Real-ESRNet's synthetic pairs: ``pixel(S(x), y_usm) + kd(S(x), T(x))``."""

    def __init__(self, opt):
        super().__init__(opt)
        self._init_synthesis()


@MODEL_REGISTRY.register()
class DUKDRealESRNetModel(RealWorldSynthesis, DUKDModel):
    """DUKD on Real-ESRNet's synthetic pairs (zoom-in from the GT, zoom-out from the degraded LR)."""

    option_families = ('realworld_dukd', )

    def __init__(self, opt):
        super().__init__(opt)
        self._init_synthesis()
        up = dict(opt.get('upcycling') or {})
        unknown = set(up) - {'zoom_in_source'}
        if unknown:
            raise ValueError(f'upcycling: unknown key(s) {sorted(unknown)}; known: zoom_in_source')
        self.zoom_in_source = up.get('zoom_in_source', 'degraded')
        if self.zoom_in_source not in ZOOM_IN_SOURCES:
            raise ValueError(f'upcycling.zoom_in_source must be one of {ZOOM_IN_SOURCES}, got {self.zoom_in_source!r}')

    def training_gt_size(self):
        # synthesised pairs are cropped to the top-level gt_size (RealESRGANDataset's own is not read)
        return ('gt_size', self.opt.get('gt_size')) if self.synthesising() else super().training_gt_size()

    def default_zoom_out_lr_weight(self, pixel_opt):
        # the LR is degraded: as a label it would teach the student to reproduce noise and JPEG blocks
        return 0.0, 'real-world default: the degraded LR is no label'

    def zoom_in_inputs(self):
        n = self.dukd.zoom_in_tiles
        if n == 0:
            return None
        if not self.synthesising():  # paired training: the dataset's tiles, else tiles of the clean GT
            if self.zoom_in_data is not None:
                return super().zoom_in_inputs()
            return zoom_in(self.gt_clean, self.lq.shape[-2:], n, self.dukd.zoom_in_positions)
        if self.zoom_in_source == 'clean':
            return zoom_in(self.gt_clean, self.lq.shape[-2:], n, self.dukd.zoom_in_positions)
        # degraded: tiles of the GT the LR is made from, degraded like the LR (fresh draws, the sample's
        # kernels; tile-major rows, so kernel k of sample i serves row j * B + i)
        source = self.gt_usm if self.gt_usm_input else self.gt_clean
        tiles = zoom_in(source, self.lq.shape[-2:], n, self.dukd.zoom_in_positions)
        return self.degradation.degrade_like_lr(tiles, *(k.repeat(n, 1, 1) for k in self.kernels))
