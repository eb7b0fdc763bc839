"""Every option key that BasicSR 1.4.2 or this project reads, with the type it must have.

Sections whose keys depend on a registered name are checked against that name: ``network_*`` against the
architecture's constructor signature, loss blocks against the loss class, metrics against the metric
function, ``optim_*`` against the torch optimizer, ``datasets.*`` against the dataset type, and the
``train`` keys against the model type (``dukd_opt`` under a plain ``KDModel`` is an error, not a no-op).
"""
import inspect

import torch
from basicsr.models.realesrgan_model import RealESRGANModel
from basicsr.models.realesrnet_model import RealESRNetModel
from basicsr.models.sr_model import SRModel
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from ..ops import AUGMENTATION_OPS
from ..registry import lookup, registered_names
from ..training.precision import parse_amp, parse_compile
from .spec import (ANY, BOOL, COUNT, NONNEGATIVE, NULL, NUMBER, POSITIVE, PROBABILITY, RATE, STR, Either, ListOf,
                   Section, Type, check, describe, one_of, optional, signature_keys, suggestion)

NUMBERS = ListOf(NUMBER, 'a list of numbers')
STRINGS = ListOf(STR, 'a list of strings')


# ----------------------------------------------------------------------------------------- registries
def _network_class(block):
    """The arch class a ``network_*`` block builds, or None (not a block, unknown, or its optional extra is missing:
    the type check reports those)."""
    try:
        return lookup(ARCH_REGISTRY, block.get('type')) if isinstance(block, dict) else None
    except ImportError:
        return None


def _check_registered_type(registry, what, value, path, ctx):
    if not isinstance(value, str):
        ctx.error(path, f'expected the name of a registered {what}, got {describe(value)}')
        return None
    try:
        obj = lookup(registry, value)
    except ImportError as err:  # a name of an optional extra (spandrel.<Class>) whose library is missing
        ctx.error(path, str(err))
        return None
    if obj is None:
        names = registered_names(registry)
        if registry is ARCH_REGISTRY and not any(n.startswith('spandrel.') for n in names):  # added on first use
            names.append('spandrel.<any class spandrel ships>')
        ctx.error(path, f'no {what} is registered as {value!r}; {suggestion(value, names, "registered")}')
    return obj


# constructor arguments that are sizes: an untyped one (no default, no annotation) would take any value
SIZES = ('num_in_ch', 'num_out_ch', 'num_feat', 'num_block', 'num_grow_ch', 'num_group', 'num_conv', 'upscale',
         'n_resgroups', 'n_resblocks', 'n_feats', 'in_chans', 'embed_dim', 'window_size', 'img_size', 'scale',
         'squeeze_factor', 'reduction')
UPSCALE_KEYS = ('upscale', 'scale', 'upscale_factor')


def typed_block(registry, what, skip=(), extra=None, closed=True):
    """A ``{type: <registered name>, **kwargs}`` block checked against the constructor's signature."""

    def validate(value, path, ctx):
        if not isinstance(value, dict):
            ctx.error(path, f'expected a mapping with `type`, got {describe(value)}')
            return
        if 'type' not in value:
            ctx.error(f'{path}.type', f'missing: name the {what} (`type: ...`)')
            return
        obj = _check_registered_type(registry, what, value['type'], f'{path}.type', ctx)
        if obj is None:
            return
        keys, required = signature_keys(obj, skip=skip)
        if registry is ARCH_REGISTRY:
            keys.update({k: POSITIVE for k in SIZES if k in keys and keys[k] in (ANY, COUNT, NUMBER)})
        if 'layer_weights' in keys:  # PerceptualLoss: untyped in its signature
            keys['layer_weights'] = Section({}, patterns={'*': NUMBER}, expected='a mapping of VGG layer to weight')
        keys = {**keys, **(extra or {}), 'type': STR}
        refused = getattr(obj, 'refused_keys', {})  # keys a type names with its reason (spandrel.<Class>: w_bits)
        for name in refused:
            if name in value:
                ctx.error(f'{path}.{name}', refused[name])
                keys[name] = ANY  # reported once, not again as unknown
        if not closed:
            keys.update({k: ANY for k in value if k not in keys})
        for name in required:
            if name not in value and name not in (extra or {}):
                ctx.error(f'{path}.{name}', f'missing: {value["type"]} needs `{name}`')
        Section(keys).validate(value, path, ctx)

    return validate


NETWORK = typed_block(ARCH_REGISTRY, 'architecture')
LOSS = typed_block(LOSS_REGISTRY, 'loss')
OPTIONAL_LOSS = Either(NULL, Type('{}', lambda v: v == {}), LOSS)  # `pixel_opt: ~` or `{}` turns a term off


def _optimizer(value, path, ctx):
    if not isinstance(value, dict):
        ctx.error(path, f'expected a mapping with `type` (e.g. Adam), got {describe(value)}')
        return
    if 'type' not in value:
        ctx.error(f'{path}.type', 'missing: name the torch.optim optimizer (e.g. Adam)')
        return
    cls = getattr(torch.optim, str(value['type']), None)
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        ctx.error(f'{path}.type', f'{value["type"]!r} is not a torch.optim optimizer (e.g. Adam, AdamW)')
        return
    keys, _ = signature_keys(cls, skip=('params', ))
    keys = {**keys, 'type': STR, 'lr': RATE, 'betas': NUMBERS}
    Section(keys).validate(value, path, ctx)


SCHEDULERS = {'MultiStepLR': 'MultiStepRestartLR', 'MultiStepRestartLR': 'MultiStepRestartLR',
              'CosineAnnealingRestartLR': 'CosineAnnealingRestartLR'}


def _scheduler(value, path, ctx):
    from basicsr.models import lr_scheduler
    if not isinstance(value, dict) or value.get('type') not in SCHEDULERS:
        got = value.get('type') if isinstance(value, dict) else value
        ctx.error(f'{path}.type' if isinstance(value, dict) else path, f'`type` must be one of {sorted(SCHEDULERS)} (what BasicSR 1.4.2 builds), got {got!r}')
        return
    keys, _ = signature_keys(getattr(lr_scheduler, SCHEDULERS[value['type']]), skip=('optimizer', 'last_epoch'))
    keys = {**keys, 'type': STR, 'milestones': ListOf(COUNT, 'a list of iterations'), 'periods': ListOf(COUNT)}
    Section(keys).validate(value, path, ctx)


def _parsed_by(parser, option_path):
    """A value checked by the parser the model itself uses (amp, compile), so both agree."""

    def validate(value, path, ctx):
        try:
            parser(value, path)
        except ValueError as err:
            ctx.error(path, str(err).replace(f'{path}: ', '').replace(f'{path} ', ''))

    return validate


def _metric(value, path, ctx):
    typed_block(METRIC_REGISTRY, 'metric', skip=('img', 'img2'),
                extra={'better': one_of('higher', 'lower'), 'crop_border': NONNEGATIVE})(value, path, ctx)


# ----------------------------------------------------------------------------------------- datasets
IO_BACKEND = Section({
    'type': one_of('disk', 'lmdb', 'memcached'),
    'db_paths': Either(STR, STRINGS), 'client_keys': Either(STR, STRINGS), 'readonly': BOOL, 'lock': BOOL,
    'readahead': BOOL, 'server_list_cfg': STR, 'client_cfg': STR, 'sys_path': STR,
}, required=('type', ))
LOADER = {
    'name': STR, 'type': STR, 'io_backend': IO_BACKEND,
    'num_worker_per_gpu': NONNEGATIVE, 'batch_size_per_gpu': POSITIVE, 'dataset_enlarge_ratio': POSITIVE,
    'use_shuffle': BOOL, 'prefetch_mode': optional(one_of('cpu', 'cuda')), 'num_prefetch_queue': POSITIVE,
    'pin_memory': BOOL, 'persistent_workers': BOOL,
    'phase': STR, 'scale': POSITIVE,  # set by BasicSR's parse_options
}
IMAGE_NORM = {'mean': optional(NUMBERS), 'std': optional(NUMBERS), 'color': one_of('y')}
PAIRED = {
    'dataroot_gt': STR, 'dataroot_lq': STR, 'meta_info_file': optional(STR), 'filename_tmpl': STR,
    'gt_size': POSITIVE, 'use_hflip': BOOL, 'use_rot': BOOL, **IMAGE_NORM,
}
UPCYCLING = Section({'zoom_in_tiles': NONNEGATIVE, 'positions': one_of('grid', 'random'), 'zoom_out': BOOL})
REALESRGAN_KERNELS = {}
for _s in ('', '2'):
    REALESRGAN_KERNELS.update({
        f'blur_kernel_size{_s}': COUNT, f'kernel_list{_s}': STRINGS, f'kernel_prob{_s}': NUMBERS,
        f'sinc_prob{_s}': NUMBER, f'blur_sigma{_s}': NUMBERS, f'betag_range{_s}': NUMBERS,
        f'betap_range{_s}': NUMBERS,
    })
# what data/teacher_label_dataset.py's TrainingPairMixin adds to PairedImageDataset (~ = not set)
TRAINING_PAIR = {**PAIRED, 'bad_images': one_of('error', 'skip'), 'dataroot_teacher': optional(STR),
                 'decoded_cache_mib': optional(POSITIVE)}
DATASET_KEYS = {
    'PairedImageDataset': PAIRED,
    'UpcyclingPairedImageDataset': {**TRAINING_PAIR, 'upcycling': UPCYCLING},
    'TeacherLabelPairedImageDataset': TRAINING_PAIR,
    'SingleImageDataset': {'dataroot_lq': STR, 'meta_info_file': optional(STR), **IMAGE_NORM},
    'RealESRGANDataset': {
        'dataroot_gt': STR, 'meta_info': STR, 'use_hflip': BOOL, 'use_rot': BOOL, 'final_sinc_prob': NUMBER,
        'gt_size': POSITIVE, **REALESRGAN_KERNELS,
    },
}
# keys each dataset type reads without a default (beyond name, type and io_backend), in every phase / in training
_PAIRED_NEEDS = (('dataroot_gt', 'dataroot_lq'), ('gt_size', 'use_hflip', 'use_rot'))
DATASET_NEEDS = {
    'PairedImageDataset': _PAIRED_NEEDS, 'UpcyclingPairedImageDataset': _PAIRED_NEEDS,
    'TeacherLabelPairedImageDataset': _PAIRED_NEEDS, 'SingleImageDataset': (('dataroot_lq', ), ()),
    'RealESRGANDataset': (('dataroot_gt', 'meta_info'), ('use_hflip', 'use_rot') + tuple(REALESRGAN_KERNELS) +
                          ('final_sinc_prob', )),
}


def _dataset(value, path, ctx):
    if not isinstance(value, dict):
        ctx.error(path, f'expected a dataset mapping, got {describe(value)}')
        return
    if 'type' not in value:
        ctx.error(f'{path}.type', 'missing: name the dataset class (e.g. PairedImageDataset)')
        return
    cls = _check_registered_type(DATASET_REGISTRY, 'dataset', value['type'], f'{path}.type', ctx)
    if cls is None:
        return
    # by the class, not the name: `dukd.UpcyclingPairedImageDataset` is checked like its short name, and a fork's
    # own class registered under a name of this table is not checked against keys it may not read
    kind = cls.__name__ if cls.__module__.split('.')[0] in ('dukd_arch', 'basicsr') else None
    keys = DATASET_KEYS.get(kind)
    if keys is None:  # a BasicSR dataset this project does not use (video, face, ...): loader keys only typed
        ctx.notes.append(f'{path}: keys of dataset type {value["type"]} are not checked')
        keys = {k: ANY for k in value}
    training = path.split('.')[-1] == 'train'
    always, in_training = DATASET_NEEDS.get(kind, ((), ()))
    required = ('name', 'io_backend') + always + (in_training + ('batch_size_per_gpu', 'num_worker_per_gpu')
                                                  if training else ())
    Section({**LOADER, **keys}, required=required).validate(value, path, ctx)
    scale = ctx.opt.get('scale')
    if training and POSITIVE.accepts(value.get('gt_size')) and POSITIVE.accepts(scale) and value['gt_size'] % scale:
        ctx.error(f'{path}.gt_size', f'{value["gt_size"]} is not a multiple of scale {scale}: the LR patch would be '
                  f'{value["gt_size"] / scale:g} pixels; use {value["gt_size"] // scale * scale or scale}')


def _datasets(value, path, ctx):
    if not isinstance(value, dict):
        ctx.error(path, f'expected a mapping of phases (train, val, val_1, test_1, ...), got {describe(value)}')
        return
    phases = ('train', 'val') if ctx.is_train else ('train', 'val', 'test')
    if ctx.is_train and 'train' not in value:
        ctx.error(f'{path}.train', 'missing: training needs a `train` dataset')
    for name, dataset in value.items():
        where = f'{path}.{name}'
        if ctx.allowed(where):
            continue
        if str(name).split('_')[0] not in phases or str(name).startswith('train_'):  # BasicSR: 'train' exactly
            ctx.error(where, f'a dataset phase is named {" / ".join(p + "[_N]" for p in phases)}; '
                      f'{suggestion(name, phases, "phases")}')
            continue
        _dataset(dataset, where, ctx)


# ----------------------------------------------------------------------------------------- train
DUKD_OPT = Section({
    'zoom_in': Either(NULL, BOOL, NONNEGATIVE, Section({'num_tiles': NONNEGATIVE,
                                                        'positions': one_of('grid', 'random'),
                                                        'loss_weight': NUMBER})),
    'zoom_out': Either(NULL, BOOL, Section({'loss_weight': NUMBER, 'lr_weight': optional(NUMBER)})),
    'label_consistency': Either(
        NULL, PROBABILITY,
        Section({'prob': PROBABILITY, 'ops': ListOf(one_of(*AUGMENTATION_OPS)),
                 'apply_to': ListOf(one_of('zoom_in', 'zoom_out'))})),
    'two_step': BOOL,
    'n_gt_sub': Either(COUNT, ListOf(COUNT, 'a one-element list such as [1]')),  # the authors' key
})
FEATURE_KD_ENTRY = typed_block(LOSS_REGISTRY, 'loss', skip=('student_channels', 'teacher_channels'),
                               extra={'layers': ANY, 'num_pairs': COUNT})
AUTHORS_FEATURE_DISTILLATION = Section({
    'positions': Either(ListOf(Either(STR, COUNT)), Section({'t': ListOf(Either(STR, COUNT)),
                                                             'g': ListOf(Either(STR, COUNT))})),
    'type': STR,
})

SRMODEL_TRAIN = {
    'ema_decay': PROBABILITY, 'optim_g': _optimizer, 'scheduler': _scheduler, 'total_iter': POSITIVE,
    'warmup_iter': COUNT, 'pixel_opt': OPTIONAL_LOSS,
    'exact_resume': BOOL,  # read by dukd_arch.compat for any model: the exact-resume data path on or off
}
GAN_TRAIN = {'optim_d': _optimizer, 'gan_opt': LOSS, 'net_d_iters': COUNT, 'net_d_init_iters': COUNT,
             'ldl_opt': OPTIONAL_LOSS}
KD_TRAIN = {
    'kd_opt': OPTIONAL_LOSS, 'nonfinite': one_of('error', 'skip'), 'max_consecutive_skips': COUNT, 'amp': _parsed_by(parse_amp, 'train.amp'),
    'teacher_amp': _parsed_by(parse_amp, 'train.teacher_amp'), 'channels_last': BOOL,
    'compile': _parsed_by(parse_compile, 'train.compile'), 'model_card': BOOL,
}
DUKD_TRAIN = {'dukd_opt': Either(NULL, DUKD_OPT), 'noisy': Either(NULL, Section({'prob': PROBABILITY}))}
FEATURE_TRAIN = {'feature_kd_opt': Either(ListOf(FEATURE_KD_ENTRY), FEATURE_KD_ENTRY)}
AUTHORS_FAKD_TRAIN = {'feature_distillation': AUTHORS_FEATURE_DISTILLATION, 'feature_opt': LOSS}

# Real-ESRNet / Real-ESRGAN: the degradation is configured at the top level (Real-ESRGAN's layout)
REALWORLD_TOP = {'gt_usm': BOOL, 'l1_gt_usm': BOOL, 'percep_gt_usm': BOOL, 'gan_gt_usm': BOOL,
                 'high_order_degradation': BOOL, 'gt_size': POSITIVE, 'queue_size': COUNT}
for _s in ('', '2'):
    REALWORLD_TOP.update({
        f'resize_prob{_s}': NUMBERS, f'resize_range{_s}': NUMBERS, f'gaussian_noise_prob{_s}': NUMBER,
        f'noise_range{_s}': NUMBERS, f'poisson_scale_range{_s}': NUMBERS, f'gray_noise_prob{_s}': NUMBER,
        f'jpeg_range{_s}': NUMBERS,
    })
REALWORLD_TOP['second_blur_prob'] = NUMBER


def declared_families(model_cls):
    """The groups of keys a model class declares it reads: its ``option_families`` and those of its bases."""
    if not inspect.isclass(model_cls):
        return set()
    return set().union(*(vars(cls).get('option_families', ()) for cls in model_cls.__mro__))


def _network_settings(block, arch, keys):
    """``(key, value, note)`` for each of ``keys`` in the constructor of ``arch``: the block's value, else the
    default (``note`` then says so)."""
    params = inspect.signature(arch).parameters
    for key in keys:
        default = params[key].default if key in params else None
        yield key, block.get(key, default), '' if key in block else ' (its default)'


def scale_mismatches(opt, ctx):
    """A network whose upscale factor differs from ``scale``: data and network would disagree on every size."""
    scale = opt.get('scale')
    for net in ('network_g', 'network_t'):
        block = opt.get(net)
        arch = _network_class(block)
        if arch is None or not POSITIVE.accepts(scale):
            continue
        for key, factor, note in _network_settings(block, arch, UPSCALE_KEYS):
            if POSITIVE.accepts(factor) and factor != scale:
                ctx.error('scale', f'{scale}, but {net}.{key} is {factor}{note}: '
                          f'the data is made for x{scale}; set both to the same factor')


IN_CHANNEL_KEYS = ('num_in_ch', 'in_chans', 'in_channels')


def channel_mismatches(opt, ctx):
    """A ``color: y`` dataset (1-channel images) feeding a network built for more channels: BasicSR runs it and
    fails deep in the metrics (an AssertionError on the image shapes). The teacher sees the training set only."""
    datasets = opt.get('datasets') if isinstance(opt.get('datasets'), dict) else {}
    grey = [name for name, d in datasets.items() if isinstance(d, dict) and d.get('color') == 'y']
    for net in ('network_g', 'network_t'):
        block = opt.get(net)
        arch = _network_class(block)
        if arch is None:
            continue
        for key, channels, note in _network_settings(block, arch, IN_CHANNEL_KEYS):
            if not POSITIVE.accepts(channels) or channels == 1:
                continue
            for name in grey if net == 'network_g' else [n for n in grey if n == 'train']:
                ctx.error(f'datasets.{name}.color', f"'y' feeds 1-channel (Y) images, but {net}.{key} is "
                          f'{channels}{note}: set {net}.{key}: 1 (and its output channels to 1) for Y-channel SR, or '
                          'remove `color: y` (an RGB network is scored on Y with the metric\'s test_y_channel: true)')


def ignored_self_ensemble(opt, families, ctx):
    """``val.self_ensemble: true`` under a model type whose ``test`` never reads it: BasicSR's models score one pass.
    KDModel.test (the KD family, which needs no teacher to test) averages the 8 flips / rotations."""
    val = opt.get('val')
    if isinstance(val, dict) and val.get('self_ensemble') is True and not families.get('kd'):
        ctx.error('val.self_ensemble', f"true, but model_type {opt.get('model_type')} ignores it and scores one "
                  'pass. Use one of this project\'s model types, which average the 8 flips / rotations (e.g. '
                  'model_type: DUKDModel or KDModel; test.py needs no teacher for them), or remove the key.')


def prefetch_thread_seeding(opt, ctx):
    """Exact-resume runs seed each sample; without loader workers that happens in the training process, which is
    safe on the main thread but not in BasicSR's CPU prefetch thread, where it reseeds the random streams the
    training step is drawing from at the same moment (two runs of one seed then differ)."""
    from ..compat import exact_resume_enabled  # the same decision train.py takes (compat loads with the package)
    train_set = (opt.get('datasets') or {}).get('train')
    try:
        exact = exact_resume_enabled(opt)
    except ValueError:  # a non-bool exact_resume: reported with the train section
        return
    if not isinstance(train_set, dict) or not exact:
        return
    if train_set.get('prefetch_mode') == 'cpu' and not train_set.get('num_worker_per_gpu'):
        ctx.error('datasets.train.prefetch_mode', "'cpu' with num_worker_per_gpu 0 prefetches in a thread that "
                  'reseeds the random streams the training step draws from, so runs are not reproducible: give '
                  'the loader workers (num_worker_per_gpu: 1 or more) or drop prefetch_mode')


def realworld_training_data(opt, ctx):
    """The real-world model types synthesise the LR from RealESRGANDataset's GT (``high_order_degradation``,
    default true) and crop each pair to the top-level ``gt_size``; with it false they train on given LR/HR pairs."""
    train = (opt.get('datasets') or {}).get('train')
    if not isinstance(train, dict):
        return
    synthesise, gt_only = opt.get('high_order_degradation', True), train.get('type') == 'RealESRGANDataset'
    if not synthesise and gt_only:
        ctx.error('high_order_degradation', 'false trains on given LR/HR pairs, but datasets.train is '
                  'RealESRGANDataset, which yields HR images only: set it true to synthesise the LR, or train on a '
                  'paired dataset (PairedImageDataset)')
    elif synthesise and gt_only:
        top = opt.get('gt_size')
        if top is None:
            ctx.error('gt_size', 'missing: real-world training crops each synthesised pair to this HR size (top '
                      'level, e.g. gt_size: 256 as in Real-ESRGAN)')
        elif train.get('gt_size') not in (None, top):
            ctx.error('datasets.train.gt_size', f"{train['gt_size']}, but synthesised pairs are cropped to the "
                      f'top-level gt_size {top} (RealESRGANDataset does not read its own): make them equal, or '
                      'remove this one')


def untrained_teacher(opt, ctx):
    """Training a KD model needs the teacher's weights (``archs/teacher.build_teacher`` refuses too, later)."""
    block = opt.get('network_t')
    arch = _network_class(block)
    path = opt.get('path') if isinstance(opt.get('path'), dict) else {}
    if arch is not None and not getattr(arch, 'loads_own_weights', False) and path.get('pretrain_network_t') is None:
        ctx.error('path.pretrain_network_t', 'not set: an untrained teacher teaches noise. Point it at the teacher '
                  'checkpoint (.pth or .safetensors).')


def model_families(model_cls):
    """Which groups of keys a model class (as registered in MODEL_REGISTRY) reads."""
    from basicsr.models.esrgan_model import ESRGANModel
    from basicsr.models.swinir_model import SwinIRModel

    def sub(*bases):
        return inspect.isclass(model_cls) and issubclass(model_cls, bases)

    # BasicSR's SR models whose train keys are all known here (HiFaceGAN, video models, ...: not checked);
    # dukd's model classes declare theirs (``option_families``), so this module never imports the models
    known_sr = (SRModel, SwinIRModel, SRGANModel, ESRGANModel, RealESRNetModel, RealESRGANModel)
    families = dict.fromkeys(ALL_FAMILIES, False)
    families.update(dict.fromkeys(declared_families(model_cls), True))
    families['sr'] = families['sr'] or model_cls in known_sr
    families['gan'] = families['gan'] or sub(SRGANModel)
    families['realworld'] = families['realworld'] or sub(RealESRNetModel, RealESRGANModel)
    # SRModel's step adds perceptual_opt; the KD models' own step does not (GAN ones add it back)
    families['perceptual'] = model_cls in known_sr or families['gan']
    return families


ALL_FAMILIES = {'sr': True, 'kd': True, 'dukd': True, 'feature': True, 'authors_fakd': True, 'gan': True,
                'realworld': True, 'realworld_dukd': True, 'perceptual': True}
FAMILY_KEYS = [
    # (family, section, keys, who reads them)
    ('perceptual', 'train', {'perceptual_opt': OPTIONAL_LOSS},
     "BasicSR's SR model types and the GAN ones (DUKDRealESRGANModel); the KD and DUKD model types train on "
     "pixel + KD + the method's terms (for a perceptual term use DUKDRealESRGANModel)"),
    ('kd', 'train', KD_TRAIN, 'the KD model types (KDModel / BaseKD and its subclasses)'),
    ('dukd', 'train', DUKD_TRAIN, 'the DUKD model types (DUKDModel / DUKD, FeatureDUKDModel, DUKDRealESR*Model)'),
    ('feature', 'train', FEATURE_TRAIN, 'FeatureKDModel / FeatureDUKDModel'),
    ('authors_fakd', 'train', AUTHORS_FAKD_TRAIN, "the authors' model_type FAKD"),
    ('gan', 'train', GAN_TRAIN, 'GAN model types (e.g. DUKDRealESRGANModel, RealESRGANModel)'),
    ('realworld', '', REALWORLD_TOP, 'the real-world model types (Real-ESRNet / Real-ESRGAN and ours)'),
    ('realworld_dukd', '', {'upcycling': Section({'zoom_in_source': one_of('degraded', 'clean')})},
     'DUKDRealESRNetModel / DUKDRealESRGANModel'),
    ('kd', '', {'network_t': NETWORK}, 'the KD model types (the teacher)'),
    ('gan', '', {'network_d': NETWORK}, 'GAN model types (the discriminator)'),
]


def family_keys(families, section):
    """Keys this model reads in ``section`` ('' = top level), and keys of other model types (for messages)."""
    own, foreign = {}, {}
    for family, where, keys, readers in FAMILY_KEYS:
        if where != section:
            continue
        for key, spec in keys.items():
            if families.get(family):
                own[key] = spec
            else:
                foreign.setdefault(key, readers)
    return own, foreign


# ----------------------------------------------------------------------------------------- path, val, logger
def _path(value, path, ctx):
    if not isinstance(value, dict):
        ctx.error(path, f'expected a mapping, got {describe(value)}')
        return
    nets = [k[len('network_'):] for k in ctx.opt if str(k).startswith('network_')]
    nets += [f'feature_kd_{i}' for i in range(16)]  # FitNet adapters (models/feature_kd_model.py)
    keys = {
        'resume_state': optional(STR), 'ignore_resume_networks': STRINGS,
        # set by BasicSR's parse_options
        'experiments_root': STR, 'models': STR, 'training_states': STR, 'log': STR, 'visualization': STR,
        'results_root': STR,
    }
    for net in nets:
        keys.update({f'pretrain_network_{net}': optional(STR), f'param_key_{net}': optional(STR),
                     f'strict_load_{net}': BOOL})
    Section(keys).validate(value, path, ctx)


VAL = Section({
    'val_freq': POSITIVE, 'save_img': BOOL, 'self_ensemble': BOOL, 'suffix': optional(STR), 'pbar': BOOL,
    'metrics': Either(NULL, Section({}, patterns={'*': _metric})),
})
LOGGER = Section({
    'print_freq': POSITIVE, 'save_checkpoint_freq': POSITIVE, 'use_tb_logger': BOOL,
    'wandb': Either(NULL, Section({'project': optional(STR), 'resume_id': optional(STR)})),
}, required=('print_freq', 'save_checkpoint_freq'))
DIST_PARAMS = Section({'backend': one_of('nccl', 'gloo', 'mpi'), 'port': COUNT})

TOP = {
    'name': STR, 'model_type': STR, 'scale': POSITIVE, 'num_gpu': Either(COUNT, one_of('auto')),
    'manual_seed': optional(COUNT), 'datasets': _datasets, 'network_g': NETWORK, 'path': _path,
    'val': Either(NULL, VAL), 'logger': LOGGER, 'dist_params': DIST_PARAMS, 'find_unused_parameters': BOOL,
    'allow_unknown_keys': STRINGS,
    # set by BasicSR's parse_options / train_pipeline (present in an experiment's saved copy)
    'dist': BOOL, 'rank': COUNT, 'world_size': COUNT, 'auto_resume': BOOL, 'is_train': BOOL, 'root_path': STR,
}
# Keys of older BasicSR templates that 1.4.2 no longer reads: accepted, with a note saying so.
IGNORED_TOP = {
    'suffix': 'use val.suffix', 'crop_border': 'set crop_border in each val.metrics entry',
    'save_img': 'use val.save_img',
}

__all__ = ['ALL_FAMILIES', 'TOP', 'IGNORED_TOP', 'model_families', 'family_keys', 'registered', 'Type', 'check', 'ANY', 'NULL',
           'SRMODEL_TRAIN']
