"""Every workaround for BasicSR 1.4.2 on current torch/torchvision, each with its reason.

Imported first by ``dukd_arch/__init__.py``: the import shim must run before anything imports basicsr.
"""
import logging
import os
import sys
from os import path as osp

import torchvision.transforms.functional as _tv_functional

# basicsr.data.degradations imports torchvision.transforms.functional_tensor, removed in torchvision 0.17.
sys.modules.setdefault('torchvision.transforms.functional_tensor', _tv_functional)

import basicsr.train  # noqa: E402
import basicsr.utils.img_process_util  # noqa: E402
from basicsr.utils import check_resume as _basicsr_check_resume  # noqa: E402

from .utils.checkpoint import read_checkpoint  # noqa: E402

logger = logging.getLogger('basicsr')
TEACHER_NETWORK = 'network_t'


def check_resume(opt, resume_iter):
    """basicsr's check_resume, but the frozen teacher keeps its own path and param key.

    basicsr points ``pretrain_network_<x>`` of every ``network_<x>`` at ``models/net_<x>_<iter>.pth``
    and flips ``param_key_<x>`` to ``params``: for the teacher that file never exists.
    """
    path_opt = opt['path']
    ignore = list(path_opt.get('ignore_resume_networks') or [])
    if TEACHER_NETWORK not in ignore:
        ignore.append(TEACHER_NETWORK)
    path_opt['ignore_resume_networks'] = ignore
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


def load_resume_state(opt):
    """basicsr's load_resume_state, made correct for us.

    * auto-resume looks under ``<root>/experiments/<name>`` (basicsr used the working directory, so from
      any other folder it found nothing and archived the run);
    * states load on the CPU (basicsr called ``torch.cuda.current_device()``) with ``weights_only=True``;
    * the newest state that loads and whose network file exists wins: a state cut short by a crash is
      skipped with a warning instead of killing the resume.
    """
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
            logger.warning(f'Skipping unusable training state {state_path}: {err}')
            continue
        net_path = osp.join(opt['path']['experiments_root'], 'models', f"net_g_{state['iter']}.pth")
        if opt.get('auto_resume') and not osp.isfile(net_path):
            logger.warning(f'Skipping training state {state_path}: {net_path} is missing')
            continue
        opt['path']['resume_state'] = state_path
        check_resume(opt, state['iter'])
        return state
    return None


def _filter2d_contiguous(original):
    """basicsr's filter2D calls ``.view`` on its input; DiffJPEG returns channels-last tensors on CPU."""

    def filter2D(img, kernel):  # noqa: N802 (basicsr's name)
        return original(img.contiguous(), kernel)

    return filter2D


def apply():
    basicsr.train.load_resume_state = load_resume_state
    basicsr.train.check_resume = check_resume
    if not getattr(basicsr.utils.img_process_util.filter2D, '_dukd_patched', False):
        patched = _filter2d_contiguous(basicsr.utils.img_process_util.filter2D)
        patched._dukd_patched = True
        basicsr.utils.img_process_util.filter2D = patched


apply()
