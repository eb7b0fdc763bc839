"""The options that decide a run's trajectory, saved with each training state and compared on resume.

BasicSR's resume restores weights, optimizers and schedulers and then trains with whatever the options say
now: a changed loss weight, patch size, network argument or DUKD setting would silently turn the resumed run
into another one. What may change between stop and resume: how long it trains, where the data lies and how
it is read, logging and validation (not compared). The teacher is compared by its weights (KDModel saves
their SHA-256 with the state), so its file may move too.
"""
import json
from typing import Dict, List

STATE_KEY = 'run_settings'
# compared: these sections of the options, and the top-level keys of the real-world degradation
SECTIONS = ('model_type', 'scale', 'network_g', 'network_t', 'train')
RESUMABLE = {  # may differ on resume
    'network_t.path',  # where AutoTeacher's file lies
    'train.total_iter', 'train.model_card', 'train.compile', 'train.max_consecutive_skips',
    'datasets.train.name', 'datasets.train.num_worker_per_gpu', 'datasets.train.prefetch_mode',
    'datasets.train.num_prefetch_queue', 'datasets.train.pin_memory', 'datasets.train.persistent_workers',
    'datasets.train.decoded_cache_mib', 'datasets.train.io_backend', 'datasets.train.dataroot_gt',
    'datasets.train.dataroot_lq', 'datasets.train.dataroot_teacher', 'datasets.train.meta_info_file',
    'datasets.train.meta_info', 'datasets.train.bad_images',
}


def run_settings(opt: dict, top_level_keys=()) -> Dict[str, object]:
    """``{dotted key: value}`` of what decides the trajectory (plain JSON values); ``top_level_keys`` adds keys
    the model reads at the top level (the real-world degradation)."""
    tree = {k: opt.get(k) for k in SECTIONS}
    tree['datasets'] = {'train': (opt.get('datasets') or {}).get('train')}
    tree.update({k: opt[k] for k in top_level_keys if k in opt})
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f'{prefix}.{k}' if prefix else str(k), v)
        else:
            flat[prefix] = value

    walk('', json.loads(json.dumps(tree, default=str)))
    return {k: v for k, v in flat.items() if not any(k == r or k.startswith(r + '.') for r in RESUMABLE)}


def changed_settings(saved: Dict[str, object], now: Dict[str, object]) -> List[str]:
    """``'train.kd_opt.loss_weight: 1.0 in the run, 5.0 now'`` for each setting that differs."""
    missing = object()

    def show(value):
        return 'unset' if value is missing else repr(value)

    return [f'{k}: {show(saved.get(k, missing))} in the run, {show(now.get(k, missing))} now'
            for k in sorted(set(saved) | set(now)) if saved.get(k, missing) != now.get(k, missing)]
