"""The files and folders an option file names, checked before anything is built.

``train.py`` / ``test.py`` refuse (``check_sources``) what building the run would refuse anyway, but before BasicSR
creates, and on the next start archives, the run's experiments/, tb_logger/ or results/ folder. ``python -m
dukd_arch.options`` lists those and every other named path it cannot find (the file may be meant for another
machine)."""
import os
from typing import List

from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY

from ..registry import lookup, registered_as
from .spec import OptionError

DATASET_PATHS = ('dataroot_gt', 'dataroot_lq', 'dataroot_teacher', 'meta_info_file')


def _is_paired(dataset) -> bool:
    from basicsr.data.paired_image_dataset import PairedImageDataset
    return isinstance(dataset, dict) and registered_as(DATASET_REGISTRY, dataset.get('type'), PairedImageDataset)


def source_problems(opt, resuming: bool = False) -> List[str]:
    """What building the run would stop on: each paired dataset's folders, LMDBs and meta_info file;
    ``path.resume_state``; each ``path.pretrain_network_<x>``, except, when resuming, those BasicSR points at the
    run's own models/ instead (compat.check_resume keeps our teacher's); the file of a network that reads its own
    weights (``AutoTeacher``'s ``path``)."""
    from ..compat import networks_kept_on_resume
    from ..data.pair_folders import check_pair_sources
    from ..io.checkpoint import locate
    problems = []
    for section, dataset in (opt.get('datasets') or {}).items():
        if _is_paired(dataset):
            expanded = {key: os.path.expanduser(value) for key, value in dataset.items()
                        if key in DATASET_PATHS and isinstance(value, str)}
            try:  # as BasicSR's parse_options expands them; messages name the section (`test_2`), not the phase
                check_pair_sources({**dataset, **expanded, 'phase': section})
            except (OSError, ValueError) as err:
                problems.append(str(err))
    path = opt.get('path') if isinstance(opt.get('path'), dict) else {}
    kept = networks_kept_on_resume(opt)
    checkpoints = [(f'path.{key}', value) for key, value in path.items() if key == 'resume_state' or (
        key.startswith('pretrain_network_') and (not resuming or key.removeprefix('pretrain_') in kept))]
    checkpoints += [(f'{net}.path', block.get('path')) for net, block in opt.items()  # AutoTeacher reads its own
                    if net.startswith('network_') and isinstance(block, dict)
                    and getattr(lookup(ARCH_REGISTRY, block.get('type')), 'loads_own_weights', False)]
    for key, value in checkpoints:
        if isinstance(value, str):
            try:
                locate(os.path.expanduser(value), f'{key}: checkpoint', 'Fix the path (a relative one starts in the '
                       'folder the command runs from).')
            except FileNotFoundError as err:
                problems.append(str(err))
    return problems


def check_sources(opt, resuming: bool) -> None:
    problems = source_problems(opt, resuming)
    if problems:
        raise OptionError('\n'.join(problems))


def other_missing_paths(opt) -> List[str]:
    """Paths the file names that ``source_problems`` does not check (datasets of other types, the teacher-label
    store) and that do not exist from here."""
    named = []
    for section, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, dict):
            keys = ('dataroot_teacher', ) if _is_paired(dataset) else DATASET_PATHS
            named += [(f'datasets.{section}.{key}', dataset.get(key)) for key in keys]
    return [f'{key}: {value!r} does not exist' for key, value in named
            if isinstance(value, str) and not os.path.exists(os.path.expanduser(value))]
