"""Real-ESRGAN stage with distillation: DUKD's terms plus perceptual and adversarial losses, on any device.

Generator loss: ``pixel + kd + zoom-in + zoom-out (teacher)`` (``DUKDRealESRNetModel``) ``+ perceptual +
gan`` on the real pair, as Real-ESRGAN's ``RealESRGANModel`` adds them; then one discriminator step on
the (sharpened or clean) GT versus the student's output. Extra options:

* ``network_d`` (e.g. ``UNetDiscriminatorSN``), ``path.pretrain_network_d`` / ``param_key_d`` /
  ``strict_load_d``, ``train.optim_d``, ``train.gan_opt`` (required), ``train.perceptual_opt`` (optional:
  BasicSR's ``PerceptualLoss`` needs VGG weights, see docs/realworld.md), ``train.net_d_iters`` (1),
  ``train.net_d_init_iters`` (0);
* ``percep_gt_usm`` (true) and ``gan_gt_usm`` (false): targets of the perceptual loss and the
  discriminator's "real" images, as in Real-ESRGAN.
"""
from collections import OrderedDict

import torch

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ..io.network import load_weights
from .dukd_realesrnet_model import DUKDRealESRNetModel


@MODEL_REGISTRY.register()
class DUKDRealESRGANModel(DUKDRealESRNetModel):
    """``DUKDRealESRNetModel`` + perceptual + GAN losses and a discriminator."""

    option_families = ('gan', )

    PAIRED_L1_GT_USM = True  # RealESRGANModel: the pixel target is the sharpened GT unless l1_gt_usm is false

    def init_training_settings(self):
        train_opt = self.opt['train']
        if not train_opt.get('gan_opt'):
            raise KeyError('DUKDRealESRGANModel needs `train.gan_opt` (e.g. {type: GANLoss, gan_type: vanilla, '
                           'loss_weight: 0.1}); without a GAN use DUKDRealESRNetModel.')
        if not self.opt.get('network_d'):
            raise KeyError('DUKDRealESRGANModel needs a `network_d:` section (e.g. {type: UNetDiscriminatorSN, '
                           'num_in_ch: 3, num_feat: 64, skip_connection: true}).')
        self.net_d = self.model_to_device(build_network(dict(self.opt['network_d'])))
        path_opt = self.opt['path']
        if path_opt.get('pretrain_network_d') is not None:
            load_weights(self.get_bare_model(self.net_d), path_opt['pretrain_network_d'],
                         path_opt.get('param_key_d', 'params'), path_opt.get('strict_load_d', True),
                         option='path.pretrain_network_d')
        self.net_d.train()
        self.cri_gan = build_loss(dict(train_opt['gan_opt'])).to(self.device)
        percep_opt = train_opt.get('perceptual_opt')
        self.cri_perceptual = build_loss(dict(percep_opt)).to(self.device) if percep_opt else None
        if self.cri_perceptual is None:
            get_root_logger().warning('DUKDRealESRGANModel: no `train.perceptual_opt`, training without the '
                                      'perceptual loss (Real-ESRGAN uses VGG19 conv1_2..conv5_4).')
        self.net_d_iters = int(train_opt.get('net_d_iters', 1))
        self.net_d_init_iters = int(train_opt.get('net_d_init_iters', 0))
        self.percep_gt_usm = bool(self.opt.get('percep_gt_usm', True))
        self.gan_gt_usm = bool(self.opt.get('gan_gt_usm', False))
        super().init_training_settings()
        if self.dukd.two_step:
            raise ValueError('train.dukd_opt.two_step is not supported with the GAN stage; remove it.')

    def setup_optimizers(self):
        super().setup_optimizers()
        optim_opt = dict(self.opt['train'].get('optim_d') or {})
        if 'type' not in optim_opt:
            raise KeyError('DUKDRealESRGANModel needs `train.optim_d` (e.g. {type: Adam, lr: 1e-4, '
                           'betas: [0.9, 0.99]}).')
        optim_type = optim_opt.pop('type')
        self.optimizer_d = self.get_optimizer(optim_type, self.net_d.parameters(), **optim_opt)
        self.optimizers.append(self.optimizer_d)

    def _target(self, sharpened: bool):
        return self.gt_usm if sharpened else self.gt_clean

    def compute_losses(self, current_iter, groups=('real', 'upcycled')):
        l_total, loss_dict = super().compute_losses(current_iter, groups)
        if 'real' in groups:
            if self.cri_perceptual:
                l_percep, l_style = self.cri_perceptual(self.output, self._target(self.percep_gt_usm))
                for name, term in (('l_percep', l_percep), ('l_style', l_style)):
                    if term is not None:
                        loss_dict[name] = term
                        l_total = l_total + term
            loss_dict['l_g_gan'] = self.cri_gan(self.net_d(self.output), True, is_disc=False)
            l_total = l_total + loss_dict['l_g_gan']
        return l_total, loss_dict

    def _set_d_trainable(self, flag: bool):
        for p in self.net_d.parameters():
            p.requires_grad_(flag)

    def optimize_parameters(self, current_iter):
        # generator step (the discriminator is a fixed critic here)
        self._set_d_trainable(False)
        self.optimizer_g.zero_grad(set_to_none=True)
        loss_dict, stepped = OrderedDict(), False
        if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
            l_total, loss_dict = self.compute_losses(current_iter)
            loss_dict['l_total'] = l_total
            stepped = self.backward_step(l_total, loss_dict, current_iter)
        else:
            with torch.no_grad():
                self.output = self.student_forward(self.lq)
        # discriminator step
        self._set_d_trainable(True)
        self.optimizer_d.zero_grad(set_to_none=True)
        real_pred = self.net_d(self._target(self.gan_gt_usm))
        fake_pred = self.net_d(self.output.detach().clone())
        d_terms = OrderedDict(l_d_real=self.cri_gan(real_pred, True, is_disc=True),
                              l_d_fake=self.cri_gan(fake_pred, False, is_disc=True))
        l_d = d_terms['l_d_real'] + d_terms['l_d_fake']
        if self.loss_is_finite(l_d, d_terms, current_iter):
            l_d.backward()
            self.optimizer_d.step()
        else:
            self.optimizer_d.zero_grad(set_to_none=True)
        loss_dict.update(d_terms)
        loss_dict['out_d_real'] = real_pred.detach().mean()
        loss_dict['out_d_fake'] = fake_pred.detach().mean()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if stepped and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def save(self, epoch, current_iter):
        if current_iter == -1:  # before net_d_latest.pth, as KDModel does before net_g_latest.pth
            self.check_skipped_steps()
        self.save_network(self.net_d, 'net_d', current_iter)
        super().save(epoch, current_iter)
