"""Every workaround for BasicSR 1.4.2 on current torch/torchvision, each with its reason.

Imported first by ``dukd_arch/__init__.py``: the import shim must run before anything imports basicsr.

Two kinds of fix, so that importing us into a BasicSR fork changes none of its own runs:

* global, because they only turn a crash or a hang into working behaviour: the torchvision import shim,
  resume without CUDA, ``--local-rank``, ``init_dist`` without GPUs, DDP on CPU, the prefetch thread that hung
  on a loader error, ``filter2D`` on channels-last tensors, duplicate registry names (``registry.py``),
  PairedImageDataset's missing folders, LMDBs, meta_info lines and unpaired images named by key and path
  (``data/pair_folders.py``), its bad images and pairs named by path (an ``AttributeError`` on ``None`` before; an LR
  image that does not fit its HR image in validation, silently scored on a cut-off HR image before, refused);
* run-scoped, because they change what a run computes: the exact-resume data path (seeded samples, a
  sampler that continues mid-epoch), root-relative auto-resume that skips broken states, and the teacher
  kept out of resume. They apply when ``model_type`` is one of ours (``is_dukd_model``) or, for the data
  path and resume, when the options say ``train.exact_resume: true``; everything else runs as in BasicSR.
"""
import logging
import math
import os
import subprocess
import sys
from os import path as osp

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision.transforms.functional as _tv_functional

# basicsr.data.degradations imports torchvision.transforms.functional_tensor, removed in torchvision 0.17.
sys.modules.setdefault('torchvision.transforms.functional_tensor', _tv_functional)

import basicsr.data.prefetch_dataloader  # noqa: E402
import basicsr.test  # noqa: E402
import basicsr.train  # noqa: E402
import basicsr.utils.img_process_util  # noqa: E402
import basicsr.utils.options  # noqa: E402
from basicsr.models.base_model import BaseModel  # noqa: E402
from basicsr.models.sr_model import SRModel  # noqa: E402
from basicsr.utils.registry import METRIC_REGISTRY  # noqa: E402
from basicsr.utils import check_resume as _basicsr_check_resume  # noqa: E402
from basicsr.utils import scandir  # noqa: E402
from basicsr.utils.options import parse_options as _basicsr_parse_options  # noqa: E402
from basicsr.utils.registry import MODEL_REGISTRY  # noqa: E402
from torch.nn.parallel import DataParallel, DistributedDataParallel  # noqa: E402

from basicsr.data import build_dataloader, build_dataset  # noqa: E402
from basicsr.data.paired_image_dataset import PairedImageDataset  # noqa: E402

from . import registry  # noqa: E402

# basicsr's Registry asserts on a taken name: ours go under dukd.<Name> too and never break a fork's import.
# Installed before the first of our modules registers anything (the .data import below does).
registry.install()

from .data.bad_images import checked_pair  # noqa: E402
from .data.pair_folders import check_pair_sources, listing_named  # noqa: E402
from .data.resumable_sampler import ResumableSampler, SeededDataset  # noqa: E402
from .io.checkpoint import check_finite, read_checkpoint  # noqa: E402
from .io.network import load_network_safely  # noqa: E402

logger = logging.getLogger('basicsr')
TEACHER_NETWORK = 'network_t'
EXACT_RESUME_OPTION = 'exact_resume'  # train.exact_resume: the exact-resume data path for any model
_basicsr_create_train_val_dataloader = basicsr.train.create_train_val_dataloader


# ------------------------------------------------------------------------------------------ which runs
def is_dukd_model(opt):
    """``model_type`` (short name, ``dukd.`` alias or any alias) builds one of our models: a class defined in
    dukd_arch or a subclass of our KDModel (it has our frozen teacher and our training state)."""
    from .models.kd_model import KDModel  # not at import time: the models register after this module
    cls = registry.lookup(MODEL_REGISTRY, opt.get('model_type'))
    return isinstance(cls, type) and (registry.is_dukd_object(cls) or issubclass(cls, KDModel))


def exact_resume_enabled(opt):
    """The exact-resume data path and resume: ``train.exact_resume`` when set, else on for our models only."""
    value = (opt.get('train') or {}).get(EXACT_RESUME_OPTION)
    if value is None:
        return is_dukd_model(opt)
    if not isinstance(value, bool):
        raise ValueError(f'train.{EXACT_RESUME_OPTION} must be true or false, got {value!r}')
    return value


# ------------------------------------------------------------------------------------------ resume
def networks_kept_on_resume(opt):
    """The ``network_<x>`` whose ``pretrain_network_<x>`` a resume keeps (the rest load the run's own models/):
    ``path.ignore_resume_networks``, and for our models the frozen teacher."""
    kept = list((opt.get('path') or {}).get('ignore_resume_networks') or [])
    if is_dukd_model(opt) and TEACHER_NETWORK not in kept:
        kept.append(TEACHER_NETWORK)
    return kept


def check_resume(opt, resume_iter):
    """basicsr's check_resume, but for our models the frozen teacher keeps its own path and param key.

    basicsr points ``pretrain_network_<x>`` of every ``network_<x>`` at ``models/net_<x>_<iter>.pth``
    and flips ``param_key_<x>`` to ``params``: for our teacher that file never exists. A fork's model keeps
    basicsr's behaviour (its ``network_t`` may be trainable and saved).
    """
    if not is_dukd_model(opt):
        _basicsr_check_resume(opt, resume_iter)
        return
    path_opt = opt['path']
    path_opt['ignore_resume_networks'] = networks_kept_on_resume(opt)
    param_key_t = path_opt.get('param_key_t')
    _basicsr_check_resume(opt, resume_iter)
    if param_key_t is not None:
        path_opt['param_key_t'] = param_key_t


def _state_files(state_dir):
    if not osp.isdir(state_dir):
        return []
    iters = []
    for name in os.listdir(state_dir):
        stem, ext = osp.splitext(name)
        if ext == '.state' and stem.isdigit():
            iters.append(int(stem))
    return [osp.join(state_dir, f'{it}.state') for it in sorted(iters, reverse=True)]


_RUN_LOG_WARNINGS = []  # said while resuming, before BasicSR has opened the run's log file


def _warn_in_run_log(message):
    """A resume warning, kept until the run's log exists (basicsr configures it after load_resume_state) so it
    reaches the log file and not only a bare stderr line."""
    _RUN_LOG_WARNINGS.append(message)


def flush_resume_warnings(run_logger):
    while _RUN_LOG_WARNINGS:
        run_logger.warning(_RUN_LOG_WARNINGS.pop(0))


def load_resume_state(opt):
    """basicsr's load_resume_state, made correct for us (runs with the exact-resume data path; others get
    ``plain_load_resume_state``).

    * auto-resume looks under ``<root>/experiments/<name>`` (basicsr used the working directory, so from
      any other folder it found nothing and archived the run);
    * states load on the CPU (basicsr called ``torch.cuda.current_device()``) with ``weights_only=True``;
    * the newest state that loads and whose network files (``net_*_<iter>.pth``) load too wins: a state or
      network file cut short by a crash or corrupted later is skipped with a warning naming the file,
      instead of killing the resume.
    """
    if not exact_resume_enabled(opt):
        return plain_load_resume_state(opt)
    if opt.get('auto_resume'):
        state_dir = osp.join(opt['path']['experiments_root'], 'training_states')
        candidates = _state_files(state_dir)
    elif opt['path'].get('resume_state'):
        candidates = [opt['path']['resume_state']]
    else:
        return None
    for state_path in candidates:
        try:
            state = read_checkpoint(state_path, what='training state')
        except (OSError, ValueError) as err:
            if not opt.get('auto_resume'):
                raise
            _warn_in_run_log(f'Skipping unusable training state {state_path}: {err}')
            continue
        if not isinstance(state, dict) or not isinstance(state.get('iter'), int):
            problem = f'training state {state_path} has no iteration number: it was not written by BasicSR or dukd'
            if not opt.get('auto_resume'):
                raise ValueError(problem + '; point path.resume_state at a <iter>.state file of a run.')
            _warn_in_run_log(f'Skipping {problem}.')
            continue
        if opt.get('auto_resume'):
            problem = _unusable_network_file(opt['path']['experiments_root'], state['iter'])
            if problem:
                _warn_in_run_log(f'Skipping training state {state_path}: {problem}')
                continue
        opt['path']['resume_state'] = state_path
        check_resume(opt, state['iter'])
        opt['resume_position'] = resume_position(state)
        return state
    return None


def plain_load_resume_state(opt):
    """basicsr's load_resume_state (auto-resume under ``./experiments/<name>``, the newest state as is) with the
    state read by the safe reader, on the CPU: basicsr called ``torch.cuda.current_device()`` (a crash without
    CUDA); the optimizers move their states to their parameters' device when loading them."""
    resume_state_path = None
    if opt.get('auto_resume'):
        state_path = osp.join('experiments', opt['name'], 'training_states')
        if osp.isdir(state_path):
            states = list(scandir(state_path, suffix='state', recursive=False, full_path=False))
            if len(states) != 0:
                states = [float(v.split('.state')[0]) for v in states]
                resume_state_path = osp.join(state_path, f'{max(states):.0f}.state')
                opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    if resume_state_path is None:
        return None
    resume_state = read_checkpoint(resume_state_path, what='training state')
    check_resume(opt, resume_state['iter'])
    return resume_state


def _unusable_network_file(experiments_root, it):
    """Why the network files saved with the state of iteration ``it`` cannot be resumed from, or None."""
    models = osp.join(experiments_root, 'models')
    net_g = osp.join(models, f'net_g_{it}.pth')
    if not osp.isfile(net_g):
        return f'{net_g} is missing'
    suffix = f'_{it}.pth'
    paths = [osp.join(models, n) for n in sorted(os.listdir(models)) if n.startswith('net_') and n.endswith(suffix)]
    for path in paths:
        try:
            ckpt = read_checkpoint(path, what='network file')
            for value in (ckpt.values() if isinstance(ckpt, dict) else []):
                if isinstance(value, dict):
                    check_finite(value, path, 'network file')
        except (OSError, ValueError) as err:
            return str(err).splitlines()[0]
    return None


def resume_position(state):
    """Where in its epoch the saved run stopped: ``{epoch, samples_done (per rank), world_size}``, or None for a
    state without it (written by basicsr's own models): that epoch then restarts from its first batch."""
    if 'epoch_samples' not in state:
        _warn_in_run_log(f"Training state of iter {state['iter']} has no position within its epoch: epoch "
                         f"{state['epoch']} restarts from its first batch (the resumed run is not exact).")
        return None
    return {'epoch': int(state['epoch']), 'samples_done': int(state['epoch_samples']),
            'world_size': int(state.get('world_size', 1))}


def check_train_set_size(num_pairs, dataset_opt, opt):
    """basicsr's loader drops the last incomplete batch: with fewer samples per process than one batch it ran
    0 iterations and exited 0 with untrained weights, and an empty set died with a ZeroDivisionError."""
    name = dataset_opt.get('name', 'train')
    if num_pairs == 0:
        sources = ', '.join(f'{k}: {dataset_opt[k]}' for k in ('dataroot_gt', 'dataroot_lq', 'meta_info_file',
                                                               'meta_info') if dataset_opt.get(k))
        raise ValueError(f'datasets.train ({name}) found no training pairs ({sources or "no data folders set"}). '
                         'Check the folders, their file names (filename_tmpl) and the meta info file.')
    ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
    world_size = opt.get('world_size', 1)
    multiplier = 1 if opt.get('dist') else max(opt.get('num_gpu') or 1, 1)  # DataParallel: one batch per GPU
    batch = dataset_opt['batch_size_per_gpu'] * multiplier
    per_process = math.ceil(num_pairs * ratio / world_size)  # EnlargedSampler's split over the processes
    if per_process < batch:
        need = math.ceil(batch * world_size / num_pairs)
        raise ValueError(f'datasets.train ({name}) has {num_pairs} training pairs x dataset_enlarge_ratio {ratio} = '
                         f'{num_pairs * ratio} samples, {per_process} per process ({world_size} process(es)): fewer '
                         f'than one batch of {batch}, so not one iteration would run (incomplete batches are '
                         f'dropped). Add pairs, lower batch_size_per_gpu to {max(per_process // multiplier, 1)} or '
                         f'less, or set dataset_enlarge_ratio to {need} or more.')


def create_train_val_dataloader(opt, logger):
    """basicsr's create_train_val_dataloader with an exactly resumable training loader, for our models and runs
    with ``train.exact_resume: true`` (other runs get basicsr's loaders unchanged).

    * ``ResumableSampler`` + ``SeededDataset``: per-sample seeds, so augmentations do not depend on workers
      (basicsr's worker_init_fn reseeds each worker identically every epoch) and a resumed epoch continues
      after the samples already trained on (basicsr restarted it);
    * the loader draws its workers' base seed from its own generator, not the global torch RNG, so creating
      an iterator at an epoch start does not shift the training process's random stream.
    """
    flush_resume_warnings(logger)
    if not exact_resume_enabled(opt):
        return _basicsr_create_train_val_dataloader(opt, logger)
    train_loader, train_sampler, val_loaders = None, None, []
    total_epochs = total_iters = None
    for phase, dataset_opt in opt['datasets'].items():
        if phase == 'train':
            ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
            train_set = SeededDataset(build_dataset(dataset_opt))
            check_train_set_size(len(train_set), dataset_opt, opt)
            train_sampler = ResumableSampler(train_set, opt['world_size'], opt['rank'], ratio,
                                             seed=opt['manual_seed'])
            position = opt.get('resume_position')
            if position is not None:
                # per-rank sample counts convert through the global count when the world size changed
                done = position['samples_done'] * position['world_size'] // opt['world_size']
                if position['world_size'] != opt['world_size']:
                    logger.warning(f"Resuming a {position['world_size']}-process run with {opt['world_size']} "
                                   'processes: the data order continues, but the run is not bit-exact.')
                train_sampler.resume_at(position['epoch'], done)
            train_loader = build_dataloader(train_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                            sampler=train_sampler, seed=opt['manual_seed'])
            train_loader.generator = torch.Generator().manual_seed(opt['manual_seed'])
            num_iter_per_epoch = math.ceil(
                len(train_set) * ratio / (dataset_opt['batch_size_per_gpu'] * opt['world_size']))
            total_iters = int(opt['train']['total_iter'])
            total_epochs = math.ceil(total_iters / num_iter_per_epoch)
            logger.info('Training statistics:'
                        f'\n\tNumber of train images: {len(train_set)}'
                        f'\n\tDataset enlarge ratio: {ratio}'
                        f'\n\tBatch size per gpu: {dataset_opt["batch_size_per_gpu"]}'
                        f'\n\tWorld size (gpu number): {opt["world_size"]}'
                        f'\n\tEffective batch: {dataset_opt["batch_size_per_gpu"] * opt["world_size"]}'
                        f'\n\tRequire iter number per epoch: {num_iter_per_epoch}'
                        f'\n\tTotal epochs: {total_epochs}; iters: {total_iters}.')
        elif phase.split('_')[0] == 'val':
            val_set = build_dataset(dataset_opt)
            val_loader = build_dataloader(val_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                          sampler=None, seed=opt['manual_seed'])
            # each pass over it draws a worker seed: from its own generator, not the global one, or a validation
            # on a checkpoint iteration would move the RNG past the saved state and a resume would diverge
            val_loader.generator = torch.Generator().manual_seed(opt['manual_seed'])
            logger.info(f'Number of val images/folders in {dataset_opt["name"]}: {len(val_set)}')
            val_loaders.append(val_loader)
        else:
            raise ValueError(f'Dataset phase {phase} is not recognized.')
    if train_loader is None:
        raise ValueError('Training needs a `datasets: train:` section in the options file.')
    return train_loader, train_sampler, val_loaders, total_epochs, total_iters


# ------------------------------------------------------------------------------------------ distributed
def normalize_argv(argv):
    """``torch.distributed.launch`` passes ``--local-rank=N`` on current torch; basicsr's argparse wants
    ``--local_rank``. Rewrite the former into the latter (torchrun passes neither: it sets LOCAL_RANK)."""
    out = []
    for arg in argv:
        if arg == '--local-rank' or arg.startswith('--local-rank='):
            arg = '--local_rank' + arg[len('--local-rank'):]
        out.append(arg)
    return out


def parse_options(root_path, is_train=True):
    """basicsr's parse_options after normalising the launcher's ``--local-rank`` spelling."""
    sys.argv[:] = normalize_argv(sys.argv)
    return _basicsr_parse_options(root_path, is_train=is_train)


def default_backend():
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def init_dist(launcher, backend=None, **kwargs):
    """basicsr's init_dist hard-codes NCCL and ``rank % cuda.device_count()`` (a ZeroDivisionError without
    GPUs). Here: NCCL on GPUs, gloo on CPU; each process takes the GPU of its LOCAL_RANK.

    ``backend='nccl'`` (``dist_params.backend`` with the slurm launcher) falls back to gloo, with a warning, only
    on a machine without CUDA; where CUDA is present and NCCL cannot start, that is an error."""
    if launcher == 'slurm':
        # same environment basicsr derives from SLURM, without touching CUDA
        proc_id, ntasks = int(os.environ['SLURM_PROCID']), int(os.environ['SLURM_NTASKS'])
        addr = subprocess.getoutput(f"scontrol show hostname {os.environ['SLURM_NODELIST']} | head -n1")
        port = kwargs.pop('port', None)
        os.environ['MASTER_PORT'] = str(port) if port is not None else os.environ.get('MASTER_PORT', '29500')
        os.environ.update(MASTER_ADDR=addr, WORLD_SIZE=str(ntasks), RANK=str(proc_id),
                          LOCAL_RANK=os.environ.get('SLURM_LOCALID', str(proc_id % max(torch.cuda.device_count(), 1))))
    elif launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher!r} is not supported; use pytorch (torchrun) or slurm')
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise RuntimeError(f'--launcher {launcher} needs ${var}; start training with '
                               '`torchrun --nproc_per_node=N train.py -opt ... --launcher pytorch`')
    if backend == 'nccl' and not torch.cuda.is_available():  # e.g. `dist_params: {backend: nccl}` on a CPU node
        logger.warning('dist_params.backend is nccl but this machine has no CUDA device: using the gloo backend.')
        backend = 'gloo'
    backend = backend or default_backend()
    if backend == 'nccl':
        if not dist.is_nccl_available():
            raise RuntimeError('The NCCL backend was asked for on a CUDA machine but this torch build has no NCCL. '
                               'Install a CUDA build of torch with NCCL, or choose gloo deliberately '
                               '(dist_params: {backend: gloo}).')
        local_rank = os.environ.get('LOCAL_RANK')
        torch.cuda.set_device(int(local_rank) if local_rank is not None else
                              int(os.environ['RANK']) % torch.cuda.device_count())
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')  # as basicsr's init_dist: a distributed run's loader workers are spawned
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend=backend, **kwargs)
        except Exception as err:  # noqa: B902 (re-raised with the fix; never a silent switch to gloo)
            if backend != 'nccl':
                raise
            raise RuntimeError(f'The NCCL backend could not start on this CUDA machine ({err}). Fix the NCCL setup '
                               '(NCCL_DEBUG=INFO shows why) or choose gloo deliberately (dist_params: '
                               '{backend: gloo}); dukd does not fall back to gloo where CUDA is present.') from err


def model_to_device(self, net):
    """basicsr's model_to_device, device-agnostic: DDP gets ``device_ids`` only on a GPU (on CPU/gloo it
    must be None). Used for net_g (and net_d of the GAN models); the teacher is built by ``build_teacher`` and
    stays a plain module."""
    net = net.to(self.device)
    if self.opt['dist']:
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(net, device_ids=device_ids,
                                      find_unused_parameters=self.opt.get('find_unused_parameters', False))
    elif self.opt['num_gpu'] > 1:
        net = DataParallel(net)
    return net


class _PrefetchFailure:
    def __init__(self, error):
        self.error = error


def _prefetch_run(self):
    """basicsr's prefetch thread died silently on a loader error and the training loop then waited on its
    queue forever; the error is handed over instead and raised in the training loop."""
    try:
        for item in self.generator:
            self.queue.put(item)
    except BaseException as err:  # noqa: B902 (re-raised in the consumer)
        self.queue.put(_PrefetchFailure(err))
        return
    self.queue.put(None)


def _prefetch_next(self):
    item = self.queue.get()
    if item is None:
        raise StopIteration
    if isinstance(item, _PrefetchFailure):
        raise item.error
    return item


def _filter2d_contiguous(original):
    """basicsr's filter2D calls ``.view`` on its input; DiffJPEG returns channels-last tensors on CPU."""

    def filter2D(img, kernel):  # noqa: N802 (basicsr's name)
        return original(img.contiguous(), kernel)

    return filter2D


class MetricInputError(ValueError):
    """A validation metric cannot score an output; the validation adds the image's path."""


NIQE_BLOCK = 96  # basicsr's niqe scores 96 x 96 blocks and needs two for a covariance


def _checked_niqe(original):
    """basicsr's calculate_niqe dies with a torch error below one block and 'SVD did not converge' below two
    blocks or on a flat output; say which, and the minimum size."""

    def calculate_niqe(img, crop_border, input_order='HWC', convert_to='y', **kwargs):
        h, w = img.shape[:2] if input_order == 'HWC' else img.shape[1:3]
        h, w = h - 2 * crop_border, w - 2 * crop_border
        if min(h, w) < NIQE_BLOCK or (h // NIQE_BLOCK) * (w // NIQE_BLOCK) < 2:
            raise MetricInputError(f'NIQE needs at least two {NIQE_BLOCK}x{NIQE_BLOCK} blocks (e.g. 96x192 px) '
                                   f'after cropping crop_border {crop_border}; this output is {h}x{w} px. Score '
                                   'larger images or leave niqe out of val.metrics for this set.')
        try:
            return original(img, crop_border, input_order, convert_to, **kwargs)
        except np.linalg.LinAlgError as err:
            raise MetricInputError(f'NIQE failed ({err}): the output is flat or nearly so, with no texture to '
                                   'score; look at the image.') from err

    calculate_niqe._dukd_patched = True
    return calculate_niqe


class _CurrentImage:
    """A validation dataloader that remembers the path of the image being scored."""

    def __init__(self, loader):
        self.loader, self.path = loader, None

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __iter__(self):
        for batch in self.loader:
            self.path = (batch.get('lq_path') or [None])[0]
            yield batch


def _naming_validation(original):
    """basicsr's validation loop does not say which image a metric failed on."""

    def nondist_validation(self, dataloader, *args, **kwargs):
        current = _CurrentImage(dataloader)
        try:
            return original(self, current, *args, **kwargs)
        except MetricInputError as err:
            raise MetricInputError(f'{current.path}: {err}') from err

    nondist_validation._dukd_patched = True
    return nondist_validation


def _safe_load_network(self, net, load_path, strict=True, param_key='params'):
    """basicsr's load_network calls torch.load without weights_only (a pickle runs code on torch < 2.6) and
    names no file in its errors; same meaning, through the safe reader."""
    load_network_safely(self.get_bare_model(net), load_path, strict, param_key)


def use_safe_loading():
    """For our train.py / test.py: BasicSR's own models (e.g. ``model_type: SRModel`` test files) load
    ``pretrain_network_g`` through the safe reader too. Our models do so without this (they override it)."""
    BaseModel.load_network = _safe_load_network


def _naming_bad_pairs(original):
    """PairedImageDataset.__getitem__ whose bad images and pairs are refused with their paths (data/bad_images.py)."""

    def __getitem__(self, index):  # noqa: N807
        return checked_pair(self, index, lambda i: original(self, i))

    __getitem__._dukd_patched = True
    return __getitem__


def _checked_pair_listing(original):
    """PairedImageDataset.__init__ that names a missing folder, LMDB or meta_info problem and unpaired images."""

    def __init__(self, opt):  # noqa: N807
        check_pair_sources(opt)
        listing_named(opt, lambda: original(self, opt))

    __init__._dukd_patched = True
    return __init__


def apply():
    basicsr.train.load_resume_state = load_resume_state
    basicsr.train.check_resume = check_resume
    basicsr.train.parse_options = parse_options
    basicsr.train.create_train_val_dataloader = create_train_val_dataloader
    basicsr.test.parse_options = parse_options
    basicsr.utils.options.init_dist = init_dist
    BaseModel.model_to_device = model_to_device
    basicsr.data.prefetch_dataloader.PrefetchGenerator.run = _prefetch_run
    basicsr.data.prefetch_dataloader.PrefetchGenerator.__next__ = _prefetch_next
    if not getattr(basicsr.utils.img_process_util.filter2D, '_dukd_patched', False):
        patched = _filter2d_contiguous(basicsr.utils.img_process_util.filter2D)
        patched._dukd_patched = True
        basicsr.utils.img_process_util.filter2D = patched
    if not getattr(METRIC_REGISTRY.get('calculate_niqe'), '_dukd_patched', False):
        METRIC_REGISTRY._obj_map['calculate_niqe'] = _checked_niqe(METRIC_REGISTRY.get('calculate_niqe'))
    if not getattr(PairedImageDataset.__init__, '_dukd_patched', False):
        PairedImageDataset.__init__ = _checked_pair_listing(PairedImageDataset.__init__)
    if not getattr(PairedImageDataset.__getitem__, '_dukd_patched', False):
        PairedImageDataset.__getitem__ = _naming_bad_pairs(PairedImageDataset.__getitem__)
    if not getattr(SRModel.nondist_validation, '_dukd_patched', False):
        SRModel.nondist_validation = _naming_validation(SRModel.nondist_validation)


apply()
