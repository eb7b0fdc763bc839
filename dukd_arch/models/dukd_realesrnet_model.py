"""Real-world distillation: Real-ESRNet's on-the-fly degradation feeding output KD and DUKD, on any device.

BasicSR's ``RealESRNetModel`` synthesises the LR inside ``feed_data`` but hard-codes ``.cuda()``. Here the
same second-order pipeline (``data/degradation.py``) runs on the model's device, and the pair goes to
``KDModel`` / ``DUKDModel``. Extra options (top level, as in Real-ESRGAN's files):

* the degradation keys of ``REAL_ESRGAN_DEGRADATION``, ``gt_size``, ``queue_size`` (180), ``scale``;
* ``gt_usm`` (true): degrade the USM-sharpened GT, as Real-ESRNet does;
* ``l1_gt_usm`` (default: ``gt_usm``): the pixel-loss target is the sharpened GT;
* ``high_order_degradation`` (true): false trains on a paired (lq, gt) dataset instead;
* ``upcycling.zoom_in_source`` (DUKD only): ``degraded`` (default) cuts zoom-in tiles from the GT the LR
  is made from (sharpened when ``gt_usm``) degraded at its own size by the same pipeline (scale 1:
  blur, resizes, noise, JPEG, sinc, no net shrink); ``clean`` cuts them from the clean, unsharpened GT
  (the paper's bicubic-setting zoom-in).

Why, and what happens to zoom-out and label consistency here: docs/realworld.md.
"""
import torch

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ..ops import zoom_in
from ..data.degradation import SecondOrderDegradation, TrainingPairQueue, USMSharp, paired_random_crop
from ..utils.student import load_network_safely
from .dukd_model import DUKDModel
from .kd_model import KDModel

ZOOM_IN_SOURCES = ('degraded', 'clean')


class RealWorldSynthesis:
    """Mixin for an SRModel subclass (needs ``self.scale``): LR synthesis, sharpened targets, training-pair queue."""

    def _init_synthesis(self):
        """Degradation, sharpener and queue; built only for training (test options need none of the keys)."""
        opt = self.opt
        self.usm_sharpener = USMSharp().to(self.device)
        self.gt_usm_input = bool(opt.get('gt_usm', True))
        self.l1_gt_usm = bool(opt.get('l1_gt_usm', self.gt_usm_input))
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

    def extra_views(self, gt, gt_usm, kernels):
        """Hook: further full-size views of the GT to crop and queue with the pair (name -> tensor)."""
        return {}

    @torch.no_grad()
    def feed_data(self, data):
        if not self.synthesising():
            super().feed_data(data)
            if self.is_train and 'gt' in data:  # paired training: sharpened targets as well
                self.gt_clean = self.gt
                self.gt_usm = self.usm_sharpener(self.gt)
                self.gt = self.gt_usm if self.l1_gt_usm else self.gt_clean
            return
        for key in ('gt', 'kernel1', 'kernel2', 'sinc_kernel'):
            if key not in data:
                raise KeyError(f'real-world training needs `{key}` in every batch: use RealESRGANDataset for the '
                               'train set, or set `high_order_degradation: false` to train on a paired dataset.')
        gt = data['gt'].to(self.device)
        kernels = [data[k].to(self.device) for k in ('kernel1', 'kernel2', 'sinc_kernel')]
        gt_usm = self.usm_sharpener(gt)
        lq = self.degradation(gt_usm if self.gt_usm_input else gt, *kernels)
        views = {'gt': gt, 'gt_usm': gt_usm, **self.extra_views(gt, gt_usm, kernels)}
        names = list(views)
        crops, lq = paired_random_crop([views[n] for n in names], lq, self.gt_size, self.scale)
        # the pool mixes degradations drawn for different batches (a batch shares resize factors and modes)
        lq, *crops = self.queue(lq, *crops)
        views = dict(zip(names, crops))
        self.lq = lq.contiguous()
        if hasattr(self, 'note_epoch_position'):  # KDModel subclasses: exact resume within the epoch
            self.note_epoch_position(data)
        self.gt_clean = views.pop('gt')
        self.gt_usm = views.pop('gt_usm')
        self.gt = self.gt_usm if self.l1_gt_usm else self.gt_clean  # the pixel-loss target
        self.views = views
        self.zoom_in_data = self.zoom_out_data = None

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

    def init_training_settings(self):
        super().init_training_settings()
        if self.dukd.zoom_out_lr_weight is None:
            # the LR is degraded: as a label it would teach the student to reproduce noise and JPEG blocks
            self.zoom_out_lr_weight = 0.0
        get_root_logger().info(f'Real-world DUKD: zoom-out LR-label weight {self.zoom_out_lr_weight}')

    def extra_views(self, gt, gt_usm, kernels):
        if self.zoom_in_source != 'degraded' or self.dukd.zoom_in_tiles == 0:
            return {}
        # the same pipeline at scale 1 (fresh draws, the sample's kernels), on the same source as the LR
        return {'gt_degraded': self.degradation(gt_usm if self.gt_usm_input else gt, *kernels, scale=1)}

    def zoom_in_inputs(self):
        n = self.dukd.zoom_in_tiles
        if n == 0:
            return None
        if not self.synthesising():  # paired training: the dataset's tiles, else tiles of the clean GT
            if self.zoom_in_data is not None:
                return super().zoom_in_inputs()
            return zoom_in(self.gt_clean, self.lq.shape[-2:], n, self.dukd.zoom_in_positions)
        source = self.views['gt_degraded'] if self.zoom_in_source == 'degraded' else self.gt_clean
        return zoom_in(source, self.lq.shape[-2:], n, self.dukd.zoom_in_positions)
