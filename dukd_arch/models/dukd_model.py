"""Data Upcycling Knowledge Distillation (DUKD).

On top of output KD, the teacher labels upcycled inputs made from the training pair itself:
zoom-in tiles of the HR patch and the zoomed-out LR patch, optionally seen by the student through a
random invertible augmentation whose exact inverse maps its output back (label consistency).
Teacher forwards of equal input size are batched into one call, and so are student forwards.
"""
from collections import OrderedDict

import torch

from basicsr.losses import build_loss
from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY

from ..data.upcycling_paired_image_dataset import UpcyclingPairedImageDataset
from ..ops import apply_augmentations, invert_augmentations, padding_needed, sample_augmentations, zoom_in, zoom_out
from .dukd_options import parse_dukd_options
from ..registry import registered_as
from ..archs.teacher import window_multiple
from .kd_model import KDModel


@MODEL_REGISTRY.register()
class DUKDModel(KDModel):
    """``L = pixel + kd + zoom_in + zoom_out (lr + teacher)``; see ``dukd_options.py`` for the options."""

    option_families = ('dukd', )

    def init_training_settings(self):
        self.dukd = parse_dukd_options(self.opt['train'])
        super().init_training_settings()
        pixel_opt = self.opt['train'].get('pixel_opt') or {'type': 'L1Loss'}
        kd_opt = self.opt['train'].get('kd_opt') or {'type': 'L1Loss'}
        # upcycled terms share the loss types of pixel_opt / kd_opt; their weights are their own
        self.cri_label = build_loss({**kd_opt, 'loss_weight': 1.0, 'reduction': 'mean'}).to(self.device)
        self.cri_lr_label = build_loss({**pixel_opt, 'loss_weight': 1.0, 'reduction': 'mean'}).to(self.device)
        self.zoom_out_lr_weight, self.zoom_out_lr_source = (
            (self.dukd.zoom_out_lr_weight, 'zoom_out.lr_weight') if self.dukd.zoom_out_lr_weight is not None
            else self.default_zoom_out_lr_weight(pixel_opt))
        if self.dukd.two_step and self.grad_scaler.is_enabled():
            raise ValueError('two_step carries step A\'s unscaled gradients into step B, which an fp16 GradScaler '
                             'would rescale wrongly; use `train.amp: {enabled: true, dtype: bf16}` with two_step.')
        self._check_upcycling_fits()
        get_root_logger().info(f'DUKD settings: {self.dukd}')
        self.log_loss_weights(pixel_opt)

    def default_zoom_out_lr_weight(self, pixel_opt):
        """(weight, its source) of the zoom-out LR-label term when zoom_out.lr_weight is not given."""
        return (float(pixel_opt.get('loss_weight', 1.0)) if self.cri_pix else 0.0), 'pixel_opt.loss_weight'

    def log_loss_weights(self, pixel_opt):
        """The weight each term is multiplied by, and where it comes from, so a run shows what it optimises."""
        kd_opt = self.opt['train'].get('kd_opt')
        d = self.dukd
        terms = [f"l_pix {float(pixel_opt.get('loss_weight', 1.0)) if self.cri_pix else 0.0}",
                 f"l_kd {float(kd_opt.get('loss_weight', 1.0)) if self.cri_kd else 0.0}"]
        if d.zoom_in_tiles:
            terms.append(f'l_zoom_in {d.zoom_in_weight} ({d.zoom_in_weight_source})')
        if d.zoom_out:
            terms += [f'l_zoom_out_lr {self.zoom_out_lr_weight} ({self.zoom_out_lr_source})',
                      f'l_zoom_out_kd {d.zoom_out_weight} ({d.zoom_out_weight_source})']
        get_root_logger().info('Effective loss weights: ' + '; '.join(terms))

    def _check_upcycling_fits(self):
        """Fail before the first iteration when the configured upcycling cannot work with these patches."""
        train_set = self.opt.get('datasets', {}).get('train', {})
        if registered_as(DATASET_REGISTRY, train_set.get('type'), UpcyclingPairedImageDataset):
            data_tiles = int((train_set.get('upcycling') or {}).get('zoom_in_tiles', 1))
            if data_tiles not in (0, self.dukd.zoom_in_tiles):
                raise ValueError(f'datasets.train.upcycling.zoom_in_tiles={data_tiles} but train.dukd_opt asks for '
                                 f'{self.dukd.zoom_in_tiles} zoom-in tiles: make them equal (or 0 to cut tiles on '
                                 'the device).')
            data_positions = (train_set.get('upcycling') or {}).get('positions', 'grid')
            if data_tiles and data_positions != self.dukd.zoom_in_positions:
                raise ValueError(f'datasets.train.upcycling.positions={data_positions!r} cuts the zoom-in tiles, but '
                                 f'train.dukd_opt.zoom_in.positions is {self.dukd.zoom_in_positions!r} (default '
                                 "'grid'): the dataset setting would win silently. Make them equal.")
        key, gt_size = self.training_gt_size()
        if gt_size is None:
            return
        lq_size = gt_size // self.scale
        if self.dukd.zoom_in_positions == 'grid' and self.dukd.zoom_in_tiles > self.scale**2:
            raise ValueError(f'train.dukd_opt.zoom_in.num_tiles={self.dukd.zoom_in_tiles} does not fit: the '
                             f'{gt_size}px HR patch holds {self.scale**2} non-overlapping {lq_size}px tiles. Lower '
                             'num_tiles (authors: n_gt_sub) or use positions: random.')
        if self.dukd.zoom_out:
            small = -(-lq_size // self.scale)  # zoom_out: MATLAB imresize rounds the size up
            if small * self.scale != lq_size:  # the student's output of it is compared with the LR patch
                fits = self.scale**2
                raise ValueError(f'{key} {gt_size} at scale {self.scale} gives {lq_size}px LR '
                                 f'patches, which zoom-out shrinks to {small}px: the student returns '
                                 f'{small * self.scale}px, not the {lq_size}px LR label. Use a gt_size that is a '
                                 f'multiple of scale x scale = {fits} (e.g. {gt_size // fits * fits or fits} or '
                                 f'{-(-gt_size // fits) * fits}), or set train.dukd_opt.zoom_out: false.')
            for label, net in (('teacher', self.net_t), ('student', self.get_bare_model(self.net_g))):
                multiple = window_multiple(net)
                if padding_needed(small, multiple) >= small:
                    raise ValueError(f'zoom-out inputs are {small}px, which the {label} window size {multiple} '
                                     'cannot tile even after reflect padding. Use a larger gt_size, a smaller '
                                     'window, or set train.dukd_opt.zoom_out: false.')

    def training_gt_size(self):
        """(option key, value) of the HR patch size the training step sees: the train dataset's crop."""
        return 'datasets.train.gt_size', self.opt.get('datasets', {}).get('train', {}).get('gt_size')

    # ------------------------------------------------------------------------------------------- data
    def feed_data(self, data):
        super().feed_data(data)
        # tiles / zoom-out inputs prepared by UpcyclingPairedImageDataset on the loader workers
        self.zoom_in_data = data['zoom_in'].to(self.device) if 'zoom_in' in data else None
        self.zoom_out_data = data['zoom_out'].to(self.device) if 'zoom_out' in data else None

    def zoom_in_inputs(self):
        n = self.dukd.zoom_in_tiles
        if n == 0:
            return None
        if self.zoom_in_data is not None:  # (B, n, C, h, w) -> tile-major (n * B, C, h, w)
            if self.zoom_in_data.shape[1] != n:
                raise ValueError(f'the dataset prepared {self.zoom_in_data.shape[1]} zoom-in tiles per sample but '
                                 f'train.dukd_opt asks for {n}; make the dataset option zoom_in_tiles match')
            return self.zoom_in_data.transpose(0, 1).flatten(0, 1)
        return zoom_in(self.gt, self.lq.shape[-2:], n, self.dukd.zoom_in_positions)

    def zoom_out_inputs(self):
        if not self.dukd.zoom_out:
            return None
        return self.zoom_out_data if self.zoom_out_data is not None else zoom_out(self.lq, self.scale)

    def _lcr_flags(self, target, batch):
        if self.dukd.lcr_prob > 0 and target in self.dukd.lcr_apply_to:
            return sample_augmentations(batch, self.dukd.lcr_prob, self.dukd.lcr_ops)
        return None

    # ------------------------------------------------------------------------------------------- losses
    def compute_losses(self, current_iter, groups=('real', 'upcycled')):
        """Losses of the requested groups, with one teacher and one student call per input size."""
        real, upcycled = 'real' in groups, 'upcycled' in groups
        b = self.lq.shape[0]
        tiles = self.zoom_in_inputs() if upcycled else None
        small = self.zoom_out_inputs() if upcycled else None

        # inputs of LR size: the real LR (student always; teacher when kd is on and no stored label) and the tiles
        teacher_in, student_in = [], []
        label = self.stored_teacher_label() if real and self.cri_kd else None
        live_real = real and self.cri_kd and label is None
        if real:
            student_in.append(self.lq)
            if live_real:
                teacher_in.append(self.lq)
        tile_flags = None
        if tiles is not None:
            teacher_in.append(tiles)
            tile_flags = self._lcr_flags('zoom_in', tiles.shape[0])
            student_in.append(apply_augmentations(tiles, tile_flags) if tile_flags is not None else tiles)
        s_out = self.student_forward(torch.cat(student_in)) if student_in else None
        t_out = self.teacher_forward(torch.cat(teacher_in)) if teacher_in else None

        l_total, loss_dict = self.lq.new_zeros(()), OrderedDict()
        if real:
            self.output = s_out[:b]
            l_total, loss_dict = self.real_pair_losses(self.output, t_out[:b] if live_real else label)
        if tiles is not None:
            s_tiles, t_tiles = s_out[b if real else 0:], t_out[b if live_real else 0:]
            if tile_flags is not None:
                s_tiles = invert_augmentations(s_tiles, tile_flags)
            loss_dict['l_zoom_in'] = self.dukd.zoom_in_weight * self.cri_label(s_tiles, t_tiles)
            l_total = l_total + loss_dict['l_zoom_in']
        if small is not None:
            flags = self._lcr_flags('zoom_out', small.shape[0])
            s_small = self.student_forward(apply_augmentations(small, flags) if flags is not None else small)
            if flags is not None:
                s_small = invert_augmentations(s_small, flags)
            t_small = self.teacher_forward(small)
            loss_dict['l_zoom_out_lr'] = self.zoom_out_lr_weight * self.cri_lr_label(s_small, self.lq)
            loss_dict['l_zoom_out_kd'] = self.dukd.zoom_out_weight * self.cri_label(s_small, t_small)
            l_total = l_total + loss_dict['l_zoom_out_lr'] + loss_dict['l_zoom_out_kd']
        return l_total, loss_dict

    def optimize_parameters(self, current_iter):
        if not self.dukd.two_step:
            return super().optimize_parameters(current_iter)
        # Authors' update, kept for parity: step A on the real pair, then step B on the upcycled inputs
        # WITHOUT zeroing the gradients in between, so step A's gradient is applied a second time.
        self.optimizer_g.zero_grad(set_to_none=True)
        l_real, loss_dict = self.compute_losses(current_iter, groups=('real', ))
        stepped = self.backward_step(l_real, loss_dict, current_iter)
        l_up, up_dict = self.compute_losses(current_iter, groups=('upcycled', ))
        if stepped and l_up.requires_grad:
            stepped = self.backward_step(l_up, up_dict, current_iter)
        loss_dict.update(up_dict)
        loss_dict['l_total'] = l_real + l_up.detach()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if stepped and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)


MODEL_REGISTRY._do_register('DUKD', DUKDModel)  # the authors' model_type
