"""Output knowledge distillation: the student learns from the GT and from a frozen teacher's output."""
import json
import os
from collections import OrderedDict

import torch

from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info, master_only
from basicsr.utils.registry import MODEL_REGISTRY

from ..data.fitting_images import ImagesThatFit
from ..data.resumable_sampler import POSITION_KEY
from ..ops import DIHEDRAL_TRANSFORMS, forward_padded, inverse_transform, transform
from ..io.atomic import atomic_save, remove_stale_temporaries
from ..io.checkpoint import read_checkpoint
from ..io.safetensors_file import tensors_sha256
from ..training.grad_sync import average_gradients_across_ranks
from ..data.label_store import check_run_store
from ..model_card import write_model_card
from ..training.precision import autocast, make_grad_scaler, parse_amp, parse_compile
from ..training.rng import gather_rng_states, restore_rng_states
from ..training.run_settings import STATE_KEY, changed_settings, run_settings
from ..io.network import load_network_safely, load_weights
from ..archs.teacher import build_teacher, probe_scale, window_multiple

NONFINITE_POLICIES = ('error', 'skip')
MAX_CONSECUTIVE_SKIPS = 20


def parse_nonfinite(train_opt):
    """``(policy, max_consecutive_skips)`` from ``train.nonfinite`` / ``train.max_consecutive_skips``."""
    policy = train_opt.get('nonfinite', 'error')
    if policy not in NONFINITE_POLICIES:
        raise ValueError(f'train.nonfinite must be one of {NONFINITE_POLICIES}, got {policy!r}')
    limit = train_opt.get('max_consecutive_skips', MAX_CONSECUTIVE_SKIPS)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f'train.max_consecutive_skips must be a whole number >= 1 (default {MAX_CONSECUTIVE_SKIPS}), '
                         f'got {limit!r}')
    return policy, limit


@MODEL_REGISTRY.register()
class KDModel(SRModel):
    """SRModel + a frozen teacher. ``L = pixel(S(x), y) + kd(S(x), T(x))``.

    The teacher is built from ``network_t`` / ``path.pretrain_network_t`` only when training; it runs in
    eval mode under ``no_grad``, is never wrapped in DDP/DataParallel, never saved and never resumed.
    """

    # the groups of option keys this class reads (FAMILY_KEYS in options/schema.py); subclasses add theirs
    option_families = ('sr', 'kd')

    def __init__(self, opt):
        self.scale = int(opt['scale'])
        super().__init__(opt)

    # ----------------------------------------------------------------------------------------- setup
    def load_network(self, net, load_path, strict=True, param_key='params'):
        """``pretrain_network_g`` and resumed students through the safe reader (BasicSR: plain torch.load)."""
        load_network_safely(self.get_bare_model(net), load_path, strict, param_key)

    def init_training_settings(self):
        train_opt = self.opt['train']
        self.nonfinite_policy, self.max_consecutive_skips = parse_nonfinite(train_opt)
        # iterations seen / skipped for a non-finite loss (kept in training states), skips in a row
        self.nonfinite_counts = {'iters': 0, 'skipped': 0}
        self._consecutive_skips, self._last_counted_iter, self._last_skipped_iter = 0, None, None
        self.remove_stale_temporaries()
        self.amp_dtype = parse_amp(train_opt.get('amp'), 'train.amp')
        self.teacher_amp_dtype = parse_amp(train_opt.get('teacher_amp'), 'train.teacher_amp')
        self.channels_last = bool(train_opt.get('channels_last', False))
        self.grad_scaler = make_grad_scaler(self.device, self.amp_dtype, get_root_logger())
        self.net_t = build_teacher(self.opt, self.device)
        # the teacher's identity on resume: its file may move (paths are not compared), its weights may not change
        self.teacher_sha256 = tensors_sha256(self.net_t.state_dict())
        if self.channels_last:
            self.net_t.to(memory_format=torch.channels_last)
        self._check_scales()
        synthesising = callable(getattr(self, 'synthesising', None)) and self.synthesising()  # real-world models
        self.uses_teacher_labels = check_run_store(self.opt, synthesising)
        self.extra_trainable = {}
        self.build_extra_modules()
        for name, module in self.extra_trainable.items():
            module.to(self.device)
            if self.opt.get('dist', False):  # outside the student's DDP wrapper: DDP would not sync them
                average_gradients_across_ranks(module)
            path = self.opt['path'].get(f'pretrain_network_{name}')
            if path is not None:
                load_weights(module, path, 'params', True, option=f'path.pretrain_network_{name}')
        super().init_training_settings()
        self.fill_ema_from_student()
        kd_opt = train_opt.get('kd_opt')
        self.cri_kd = build_loss(dict(kd_opt)).to(self.device) if kd_opt else None
        compile_kwargs = parse_compile(train_opt.get('compile'))
        # training forwards only; saving, EMA and testing keep using the plain (uncompiled) modules
        self.net_g_train = self.net_g if compile_kwargs is None else torch.compile(self.net_g, **compile_kwargs)

    def fill_ema_from_student(self):
        """With ``strict_load_g: false`` (the EDSR x4 students start from the x2 students) BasicSR loads the
        file's ``params_ema`` into net_g_ema and leaves the layers the file lacks (the x4 upsampler) at the
        EMA's own random init, different from the student's. Those layers are copied from the student."""
        path_opt = self.opt['path']
        load_path = path_opt.get('pretrain_network_g')
        if load_path is None or path_opt.get('strict_load_g', True) or not hasattr(self, 'net_g_ema'):
            return
        ckpt = read_checkpoint(load_path, what='student checkpoint (path.pretrain_network_g)')
        key = next((k for k in ('params_ema', 'params') if k in ckpt), None)  # BasicSR's fallback order
        loaded = {(k[7:] if k.startswith('module.') else k): v for k, v in (ckpt[key] if key else ckpt).items()}
        student = self.get_bare_model(self.net_g).state_dict()
        ema = self.net_g_ema.state_dict()
        copied = [k for k, v in ema.items() if k not in loaded or loaded[k].shape != v.shape]
        for name in copied:
            ema[name].copy_(student[name])
        if copied:
            get_root_logger().info(f'net_g_ema: {len(copied)} tensors not in {load_path} ({key or "state dict"}) '
                                   f'copied from the loaded student, e.g. {copied[:3]}')

    def model_to_device(self, net):
        """channels_last is set before DDP wraps the student, so DDP's buckets match the parameter layout."""
        if self.is_train and self.opt['train'].get('channels_last', False):
            net = net.to(memory_format=torch.channels_last)
        return super().model_to_device(net)

    def remove_stale_temporaries(self):
        """Temporary files of saves killed by SIGKILL (never read; up to a checkpoint's size each) go at start."""
        if self.opt.get('rank', 0) != 0:
            return
        for key in ('models', 'training_states'):
            folder = self.opt['path'].get(key)
            removed = remove_stale_temporaries(folder) if folder else []
            if removed:
                get_root_logger().info(f'Removed {len(removed)} temporary file(s) of interrupted saves from {folder}: '
                                       f"{', '.join(removed[:3])}{' ...' if len(removed) > 3 else ''}")

    def build_extra_modules(self):
        """Hook: create trainable extras (e.g. feature adapters) in ``self.extra_trainable`` here."""

    def _check_scales(self):
        for label, net in (('teacher (network_t)', self.net_t), ('student (network_g)', self.get_bare_model(
                self.net_g))):
            found = probe_scale(net, self.device)
            if found != self.scale:
                raise ValueError(f'The {label} upscales x{found} but `scale: {self.scale}` is set. Use a '
                                 f'x{self.scale} network (check `upscale`/`scale` in its options and checkpoint).')

    def setup_optimizers(self):
        optim_opt = dict(self.opt['train']['optim_g'])
        optim_type = optim_opt.pop('type')
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        for module in self.extra_trainable.values():
            params += [p for p in module.parameters() if p.requires_grad]
        self.optimizer_g = self.get_optimizer(optim_type, params, **optim_opt)
        self.optimizers.append(self.optimizer_g)

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        if optim_type in ('Adam', 'AdamW'):
            return getattr(torch.optim, optim_type)(params, lr, **kwargs)
        raise ValueError(f'train.optim_g.type {optim_type!r} is not supported; use Adam or AdamW')

    # ----------------------------------------------------------------------------------------- forwards
    def _layout(self, x):
        return x.contiguous(memory_format=torch.channels_last) if getattr(self, 'channels_last', False) else x

    @torch.no_grad()
    def teacher_forward(self, x):
        """Teacher labels, under ``train.teacher_amp`` autocast; returned in fp32."""
        with autocast(self.device, self.teacher_amp_dtype):
            out = forward_padded(self.net_t, self._layout(x), window_multiple(self.net_t), self.scale)
        return out.float()

    def student_forward(self, x, net=None):
        """The training forward (``net=None``: compiled when ``train.compile``, ``train.amp`` autocast) or, with
        ``net`` given, a plain forward of that network (testing). Returned in fp32 so losses run in fp32."""
        multiple = window_multiple(self.get_bare_model(self.net_g if net is None else net))
        if net is not None:
            return forward_padded(net, x, multiple, self.scale)
        with autocast(self.device, self.amp_dtype):
            out = forward_padded(self.net_g_train, self._layout(x), multiple, self.scale)
        return out.float()

    # ----------------------------------------------------------------------------------------- training
    def feed_data(self, data):
        super().feed_data(data)
        self.lq_paths = data.get('lq_path')  # names the image in errors of test()
        self.note_epoch_position(data)
        # the teacher's stored output on this batch's LR (datasets.train.dataroot_teacher), cropped like the GT
        self.teacher_label = data['teacher'].to(self.device) if 'teacher' in data else None

    def note_epoch_position(self, data):
        """Training batches from the ResumableSampler carry their position: remember how far the epoch got
        (saved in the training state for an exact resume). A ``feed_data`` override must call this."""
        if POSITION_KEY in data:
            self.epoch_samples = int(data[POSITION_KEY].max()) + 1

    def compute_losses(self, current_iter):
        self.output = self.student_forward(self.lq)
        teacher_out = self.real_pair_teacher_output() if self.cri_kd else None
        return self.real_pair_losses(self.output, teacher_out)

    def stored_teacher_label(self):
        """The teacher's output on the real LR batch from the label store, or None (no store: run the teacher)."""
        return getattr(self, 'teacher_label', None)

    def real_pair_teacher_output(self):
        """T(x) for the real-pair KD term: stored when the batch brought it, else computed now."""
        label = self.stored_teacher_label()
        return label if label is not None else self.teacher_forward(self.lq)

    def real_pair_losses(self, output, teacher_out):
        """Pixel loss to the GT and output KD to the teacher on the real LR/HR pair."""
        loss_dict = OrderedDict()
        l_total = output.new_zeros(())
        if self.cri_pix:
            loss_dict['l_pix'] = self.cri_pix(output, self.gt)
            l_total = l_total + loss_dict['l_pix']
        if self.cri_kd:
            loss_dict['l_kd'] = self.cri_kd(output, teacher_out)
            l_total = l_total + loss_dict['l_kd']
        return l_total, loss_dict

    def loss_is_finite(self, l_total, loss_dict, current_iter):
        """Stop (or skip the step, ``train.nonfinite: skip``) on a non-finite loss instead of saving NaN weights.

        Skipping is bounded: more than ``train.max_consecutive_skips`` iterations in a row with a skipped step
        stop the run (it has diverged). Counts are per iteration (a GAN iteration has two steps)."""
        bad = (~torch.isfinite(l_total.detach())).float().reshape(1)
        if self.opt.get('dist'):  # every rank must take the same branch, or DDP's all-reduce hangs
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        counts = self.nonfinite_counts
        if current_iter != self._last_counted_iter:
            counts['iters'] += 1
            self._last_counted_iter = current_iter
        if not bad.item():
            if self._last_skipped_iter != current_iter:
                self._consecutive_skips = 0
            return True
        terms = ', '.join(f'{k}={float(v.detach()):.4g}' for k, v in loss_dict.items())
        if self.nonfinite_policy == 'skip':
            if self._last_skipped_iter != current_iter:
                counts['skipped'] += 1
                self._consecutive_skips += 1
                self._last_skipped_iter = current_iter
            if self._consecutive_skips > self.max_consecutive_skips:
                raise FloatingPointError(
                    f'iter {current_iter}: non-finite loss ({terms}) in {self._consecutive_skips} iterations in a row, '
                    f'more than train.max_consecutive_skips ({self.max_consecutive_skips}): the run has diverged. '
                    'The last checkpoint is intact; start a new run from it with a lower learning rate '
                    '(docs/scaling.md).')
            get_root_logger().warning(f'iter {current_iter}: non-finite loss ({terms}); step skipped')
            return False
        raise FloatingPointError(f'iter {current_iter}: non-finite loss ({terms}). The last checkpoint is intact; '
                                 'lower the learning rate, or set `train.nonfinite: skip` to skip such steps.')

    def check_skipped_steps(self):
        """End of training: a run that skipped more iterations than it trained on is a failure, not a result."""
        counts = getattr(self, 'nonfinite_counts', None)
        if not counts or not counts['skipped'] or getattr(self, '_skips_checked', False):
            return
        self._skips_checked = True
        iters, skipped = counts['iters'], counts['skipped']
        if skipped > iters - skipped:
            raise RuntimeError(f'training skipped {skipped} of its {iters} iterations for a non-finite loss '
                               '(train.nonfinite: skip), more than it trained on: the weights are not a trained '
                               'result and net_g_latest.pth was not written. Start a new run from an earlier '
                               'checkpoint with a lower learning rate (docs/scaling.md).')
        get_root_logger().warning(f'{skipped} of {iters} iterations were skipped for a non-finite loss.')

    def backward_step(self, l_total, loss_dict, current_iter):
        if not self.loss_is_finite(l_total, loss_dict, current_iter):
            self.optimizer_g.zero_grad(set_to_none=True)
            return False
        # the scaler is a pass-through unless train.amp is fp16 (then it skips steps with inf/nan gradients)
        self.grad_scaler.scale(l_total).backward()
        self.grad_scaler.step(self.optimizer_g)
        self.grad_scaler.update()
        return True

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad(set_to_none=True)
        l_total, loss_dict = self.compute_losses(current_iter)
        loss_dict['l_total'] = l_total
        stepped = self.backward_step(l_total, loss_dict, current_iter)
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if stepped and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def model_ema(self, decay=0.999):
        """basicsr averages parameters only; buffers (e.g. quantizer state) are copied as well."""
        super().model_ema(decay)
        ema_buffers = dict(self.net_g_ema.named_buffers())
        for name, buf in self.get_bare_model(self.net_g).named_buffers():
            ema_buffers[name].data.copy_(buf.data)

    # ----------------------------------------------------------------------------------------- testing
    def test(self):
        """EMA weights when present, window padding, and x8 self-ensemble when ``val.self_ensemble``."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                if self.opt.get('val', {}).get('self_ensemble', False):
                    outs = [
                        inverse_transform(self.student_forward(transform(self.lq, ops), net), ops)
                        for ops in DIHEDRAL_TRANSFORMS
                    ]
                    self.output = torch.stack(outs).mean(0)
                else:
                    self.output = self.student_forward(self.lq, net)
        except ValueError as err:  # e.g. too small to pad for a window network (ops do not know file names)
            names = getattr(self, 'lq_paths', None)
            if not names:
                raise
            raise ValueError(f"{', '.join(map(str, names))}: {err}") from err
        finally:
            net.train(was_training)

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """Images too small for the student's window padding are reported by name and left out (test.py and
        validation go on with the others); the metrics average the images that were evaluated."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        multiple = window_multiple(self.get_bare_model(net))
        if multiple > 1:
            dataloader = ImagesThatFit(dataloader, multiple, get_root_logger())
        super().validation(dataloader, current_iter, tb_logger, save_img)

    # ----------------------------------------------------------------------------------------- saving
    top_level_settings = ()  # option keys read at the top level that decide training (real-world degradation)

    def _refuse_changed_settings(self, resume_state):
        """The options must still describe the run being resumed (``training/run_settings.py``)."""
        it = resume_state['iter']
        if resume_state.get(STATE_KEY):
            changes = changed_settings(json.loads(resume_state[STATE_KEY]), run_settings(self.opt,
                                                                                         self.top_level_settings))
            if changes:
                raise ValueError(
                    f'resume from iter {it}: the options differ from the run\'s in {len(changes)} setting(s) that '
                    f'decide training ({"; ".join(changes[:6])}), and resuming would silently make it another run. '
                    'Restore them to resume; to go on with new settings, start a new run from the checkpoint '
                    f'(path.pretrain_network_g: experiments/<name>/models/net_g_{it}.pth, param_key_g: params_ema).')
        teacher = resume_state.get('teacher_sha256')
        if teacher is not None and teacher != self.teacher_sha256:
            raise ValueError(
                f'resume from iter {it}: the teacher\'s weights differ from the run\'s (sha256 of its tensors '
                f'{teacher[:12]}... in the run, {self.teacher_sha256[:12]}... now), and resuming would silently '
                'distil from another teacher. Point path.pretrain_network_t (or network_t.path) at the run\'s '
                'teacher file, with the same param_key_t; to distil from this teacher, start a new run.')
        seed = resume_state.get('manual_seed')
        if seed is not None and seed != self.opt.get('manual_seed'):
            get_root_logger().warning(
                f"resume from iter {it}: manual_seed is {self.opt.get('manual_seed')} now but {seed} in the run, so "
                f'the data order goes on differently (BasicSR draws a new seed each start when the options set '
                f'none). Set manual_seed: {seed} to resume exactly.')

    def resume_training(self, resume_state):
        """Optimizers, schedulers, extras, the fp16 grad scaler and this rank's RNG states."""
        self._refuse_changed_settings(resume_state)
        wanted = _schedule_settings(self.optimizers, self.schedulers)  # what the options built
        super().resume_training(resume_state)
        _refuse_changed_schedule(wanted, _schedule_settings(self.optimizers, self.schedulers), resume_state['iter'])
        for name, module in getattr(self, 'extra_trainable', {}).items():
            path = os.path.join(self.opt['path']['models'], f"net_{name}_{resume_state['iter']}.pth")
            load_weights(module, path, 'params', True, option=f'extra module {name}')
        if resume_state.get('nonfinite_counts'):
            self.nonfinite_counts.update(resume_state['nonfinite_counts'])
        if resume_state.get('grad_scaler') and self.grad_scaler.is_enabled():
            self.grad_scaler.load_state_dict(resume_state['grad_scaler'])
        rank, world_size = get_dist_info()
        rng = resume_state.get('rng')
        exact = rng is not None and len(rng) == world_size and restore_rng_states(rng[rank])
        if not exact:
            get_root_logger().warning(
                f"The random streams of iter {resume_state['iter']} were not all restored "
                f"({'none saved' if rng is None else f'saved for {len(rng)} processes, {world_size} now'}): "
                'training continues correctly but not bit-identically to an uninterrupted run.')

    def save(self, epoch, current_iter):
        if current_iter == -1:  # the end of training
            self.check_skipped_steps()
        nets, keys = [self.net_g], ['params']
        if hasattr(self, 'net_g_ema'):
            nets, keys = [self.net_g, self.net_g_ema], ['params', 'params_ema']
        self.save_network(nets, 'net_g', current_iter, param_key=keys)
        for name, module in getattr(self, 'extra_trainable', {}).items():
            self.save_network(module, f'net_{name}', current_iter)
        self.save_training_state(epoch, current_iter)
        if current_iter == -1 and self.opt.get('rank', 0) == 0 and self.opt['train'].get('model_card', True):
            self.write_model_card()

    def write_model_card(self):
        """End of training: parameters, FLOPs and latency of student (EMA) and teacher, as Markdown."""
        path = os.path.join(self.opt['path']['experiments_root'], 'model_card.md')
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        write_model_card(self.opt, net, self.net_t, path, repeats=5, metrics=False)
        get_root_logger().info(f'Model card written to {path}')

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """Atomic: a kill mid-save leaves the previous file loadable."""
        label = 'latest' if current_iter == -1 else current_iter
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        save_dict = {
            key: OrderedDict((k, v.detach().cpu()) for k, v in self.get_bare_model(n).state_dict().items())
            for n, key in zip(nets, keys)
        }
        atomic_save(save_dict, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    def save_training_state(self, epoch, current_iter):
        """Atomic, and complete enough to continue bit-exactly: optimizers, schedulers, grad scaler, every rank's
        RNG states and the position within the epoch. Only tensors and plain types (loads with weights_only).
        Called on every rank (gathering the RNG states is a collective); rank 0 writes."""
        if current_iter == -1:
            return
        rng = gather_rng_states(self.opt['dist'])
        rank, world_size = get_dist_info()
        if rank != 0:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'grad_scaler': self.grad_scaler.state_dict(),
            'rng': rng,
            'world_size': world_size,
            'nonfinite_counts': dict(self.nonfinite_counts),
            STATE_KEY: json.dumps(run_settings(self.opt, self.top_level_settings)),
            'manual_seed': self.opt.get('manual_seed'),
            'teacher_sha256': self.teacher_sha256,
        }
        if hasattr(self, 'epoch_samples'):
            state['epoch_samples'] = self.epoch_samples
        atomic_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))


MODEL_REGISTRY._do_register('BaseKD', KDModel)  # the authors' name for output KD


# Progress, not settings: these change as training runs and are rightly restored from the training state.
_PROGRESS_KEYS = {'lr', 'params', 'last_epoch', '_step_count', '_is_initial', '_get_lr_called_within_step', '_last_lr',
                  'verbose', 'foreach', 'fused', 'capturable', 'differentiable'}


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _schedule_settings(optimizers, schedulers) -> list:
    """The learning-rate settings of each optimizer group and scheduler (initial lr, betas, milestones, ...)."""
    found = [(f'optimizer {i} group {g}', {k: _plain(v) for k, v in group.items() if k not in _PROGRESS_KEYS})
             for i, opt in enumerate(optimizers) for g, group in enumerate(opt.param_groups)]
    found += [(f'scheduler {i} ({type(sch).__name__})', {k: _plain(v) for k, v in sch.state_dict().items()
                                                          if k not in _PROGRESS_KEYS})
              for i, sch in enumerate(schedulers)]
    return found


def _refuse_changed_schedule(wanted: list, restored: list, iteration: int) -> None:
    """BasicSR's resume restores the saved optimizer and scheduler, so a learning rate, beta or milestone changed
    in the options since would be ignored without a word; refuse instead."""
    changes = [f'{where} {key}: options {new[key]!r}, training state {old[key]!r}'
               for (where, new), (_, old) in zip(wanted, restored)
               for key in new if key in old and new[key] != old[key]]
    if changes:
        raise ValueError(
            f'resume from iter {iteration}: the options change learning-rate settings that the saved training state '
            f'fixes ({"; ".join(changes[:4])}), and resuming would keep the saved ones. Restore those options to '
            'resume; to go on with new settings, start a new run from the checkpoint instead '
            '(path.pretrain_network_g: experiments/<name>/models/net_g_<iter>.pth, param_key_g: params_ema).')
