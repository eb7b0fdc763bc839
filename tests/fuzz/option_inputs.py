"""Family 1, option files: every shipped file and the authors' files, mutated, through the in-process validation
(``dukd_arch.options.validate_options``, what ``train.py`` / ``test.py`` / ``python -m dukd_arch.options`` run).

Each mutation says what it expects: refused naming the mutated key (the default), or accepted for a stated
reason. A mutant that the validation accepts without such a reason is a defect: BasicSR would crash on it
later (a ``KeyError`` deep in its code) or silently run something else.
"""
import copy
import fnmatch
import glob
import inspect
import os
import string
from functools import lru_cache

from dukd_arch.options import OptionError, load_option_file, validate_options
from dukd_arch.options.schema import UPSCALE_KEYS
from verdict import ACCEPTED, DEFECT, REPO, Verdict, judge_error

FAMILY = 'options'
AUTHORS = os.path.join(REPO, 'tests', 'data', 'authors_options')

# Keys BasicSR 1.4.2 or this project index without a default: deleting one must be refused by name.
REQUIRED = [
    'name', 'model_type', 'scale', 'network_g', 'path', 'datasets', 'train', 'logger', 'network_t',
    'datasets.train', 'datasets.*.type', 'datasets.*.name', 'datasets.*.io_backend', 'datasets.*.io_backend.type',
    'datasets.*.dataroot_gt', 'datasets.*.dataroot_lq', 'datasets.train.gt_size', 'datasets.train.use_hflip',
    'datasets.train.use_rot', 'datasets.train.batch_size_per_gpu', 'datasets.train.num_worker_per_gpu',
    'train.optim_g', 'train.optim_g.type', 'train.scheduler', 'train.scheduler.type', 'train.total_iter',
    'logger.print_freq', 'logger.save_checkpoint_freq', 'val.val_freq', '*.type',
]
# Keys whose absence means a documented default: deleting one is harmless (the reason is reported).
OPTIONAL = {
    'manual_seed': 'BasicSR draws a seed and logs it', 'num_gpu': "BasicSR's default 'auto'",
    'val.save_img': 'default false', 'val.pbar': 'default false', 'val.suffix': 'default none',
    'val.self_ensemble': 'default false', 'logger.use_tb_logger': 'default false', 'logger.wandb': 'default off',
    'dist_params': 'read only with a launcher', 'find_unused_parameters': 'default false',
    'datasets.*.filename_tmpl': "default '{}'", 'datasets.*.meta_info_file': 'default: list the folder',
    'datasets.*.use_shuffle': 'default true', 'datasets.*.prefetch_mode': 'default none',
    'datasets.*.dataset_enlarge_ratio': 'default 1', 'datasets.*.pin_memory': 'default false',
    'datasets.*.persistent_workers': 'default false', 'datasets.*.num_prefetch_queue': 'default 1',
    'datasets.*.color': 'default: all channels', 'datasets.*.bad_images': "default 'error'",
    'datasets.*.io_backend.*': 'lmdb/memcached options with defaults',
    'train.ema_decay': 'default 0 (no EMA)', 'train.warmup_iter': 'default -1 (no warm-up)',
    'train.exact_resume': 'default true', 'train.nonfinite': "default 'error'",
    'train.max_consecutive_skips': 'default 100', 'train.channels_last': 'default false',
    'train.amp': 'default off', 'train.teacher_amp': 'default off', 'train.compile': 'default off',
    'train.model_card': 'default true', 'train.optim_g.betas': "torch's default", 'train.optim_g.weight_decay':
    "torch's default", 'train.scheduler.gamma': 'default 0.1', 'train.scheduler.restart_weights': 'default [1]',
    'path.resume_state': 'default none', 'path.strict_load_*': 'default true', 'path.param_key_*': "default 'params'",
    'path.pretrain_network_g': 'training starts from scratch (logged)', 'allow_unknown_keys': 'default none',
    'val.metrics.*.crop_border': 'default 0', 'val.metrics.*.test_y_channel': 'default false',
    'val.metrics.*.better': "default 'higher'",
}
ONE_EDIT = string.ascii_lowercase + '_'
KINDS = {'bool': True, 'string': 'text', 'number': 7, 'list': [1, 2], 'null': None, 'mapping': {'k': 1}}
# out-of-range numbers: (key pattern, bad values)
OUT_OF_RANGE = [
    ('datasets.*.batch_size_per_gpu', (0, -4)), ('datasets.*.num_worker_per_gpu', (-1, )),
    ('datasets.*.gt_size', (0, -96)), ('datasets.*.dataset_enlarge_ratio', (0, -1)), ('train.total_iter', (0, -10)),
    ('logger.print_freq', (0, -1)), ('logger.save_checkpoint_freq', (0, -5)), ('val.val_freq', (0, -5)),
    ('scale', (0, -4)), ('network_*.num_feat', (0, -64)), ('network_*.num_block', (-1, )),
    ('network_*.upscale', (0, -2)), ('train.dukd_opt.label_consistency.prob', (1.5, -0.1)),
    ('train.dukd_opt.label_consistency', (1.5, -0.1)), ('train.noisy.prob', (1.5, -0.5)),
    ('train.ema_decay', (1.5, -0.5)), ('train.optim_g.lr', (-1e-4, )), ('train.dukd_opt.zoom_in.num_tiles', (-1, )),
    ('datasets.train.upcycling.zoom_in_tiles', (-1, )),
]


def _is_test_file(path):
    return f'{os.sep}test{os.sep}' in path or os.path.basename(path).startswith('test_')


@lru_cache(maxsize=None)
def base_files():
    files = sorted(glob.glob(f'{REPO}/options/**/*.yml', recursive=True))
    return files + sorted(glob.glob(f'{AUTHORS}/**/*.yml', recursive=True))


@lru_cache(maxsize=None)
def _load(path):
    return load_option_file(path)


def _keys(tree, prefix=''):
    """Every (dotted path, parent mapping, key) of the nested mappings."""
    for key, value in tree.items():
        path = f'{prefix}.{key}' if prefix else str(key)
        yield path, tree, key
        if isinstance(value, dict):
            yield from _keys(value, path)


def _matches(path, patterns):
    return next((p for p in patterns if fnmatch.fnmatchcase(path, p)), None)


def _one_edit(rng, key):
    """``key`` with one character inserted, deleted or replaced (never ``key`` itself)."""
    key = str(key)
    while True:
        edited = _edit(rng, key)
        if edited != key:
            return edited


def _edit(rng, key):
    i = rng.randrange(len(key) + 1)
    edit = rng.choice(('insert', 'delete', 'substitute') if len(key) > 1 else ('insert', ))
    if edit == 'insert':
        return key[:i] + rng.choice(ONE_EDIT) + key[i:]
    i = min(i, len(key) - 1)
    return key[:i] + (rng.choice(ONE_EDIT) if edit == 'substitute' else '') + key[i + 1:]


def _kind(value):
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, (int, float)):
        return 'number'
    return {str: 'string', list: 'list', dict: 'mapping', type(None): 'null'}.get(type(value), 'other')


def mutate(rng, opt, is_train):
    """Mutate ``opt`` in place; returns (description, names the refusal must contain, harmless reason or None),
    or None when this kind of mutation does not apply to the file."""
    entries = list(_keys(opt))
    kind = rng.choice(('delete', 'rename', 'type', 'range', 'type_name'))
    if kind == 'delete':
        path, parent, key = rng.choice(entries)
        required = _matches(path, REQUIRED) and (is_train or not path.startswith(('train', 'logger', 'datasets.train')))
        optional = _matches(path, OPTIONAL)
        if path.startswith('network_') and path.count('.') == 1:  # the constructor says: a default or not
            return _delete_network_key(opt, path, parent, key)
        if not required and not optional:
            return None
        del parent[key]
        names = [path] + ([path.rsplit('.', 1)[0]] if path.endswith('.type') else [])  # `x: needs a type`
        return f'delete {path}', names, OPTIONAL[optional] if optional and not required else None
    if kind == 'rename':
        path, parent, key = rng.choice(entries)
        new = _one_edit(rng, key)
        if new in parent or new == str(key):
            return None
        parent[new] = parent.pop(key)
        new_path = path[:len(path) - len(str(key))] + new
        harmless = None
        if path.startswith('val.metrics.') and path.count('.') == 2:
            harmless = "a metric's name is free (it labels the log)"
        elif path.startswith('datasets.') and path.count('.') == 1 and str(key).split('_')[0] in ('val', 'test') \
                and new.split('_')[0] == str(key).split('_')[0] and '_' in new:
            harmless = f'{new} is still a {str(key).split("_")[0]} phase (BasicSR reads the part before "_")'
        return f'rename {path} -> {new_path}', [new_path, path], harmless
    if kind == 'type':
        # num_gpu's valid range is the machine's, not the file's (left out: see docs/RESULTS.md)
        leaves = [(p, par, k) for p, par, k in entries if not isinstance(par[k], dict) and p != 'num_gpu']
        if not leaves:
            return None
        path, parent, key = rng.choice(leaves)
        # ~ -> a string is a value, not a type change (a path, a param key): the reader names a wrong one
        new_kind = rng.choice([k for k in KINDS if k != _kind(parent[key]) and (k, _kind(parent[key])) != (
            'string', 'null')])
        parent[key] = copy.deepcopy(KINDS[new_kind])
        optional = _matches(path, OPTIONAL)
        harmless = f'~ leaves it unset: {OPTIONAL[optional]}' if new_kind == 'null' and optional else None
        names = [path] + ([path.rsplit('.', 1)[0]] if path.endswith('.type') else [])
        return f'{path}: {new_kind} instead of the original value', names, harmless
    if kind == 'range':
        candidates = [(p, par, k, values) for p, par, k in entries for pattern, values in OUT_OF_RANGE
                      if fnmatch.fnmatchcase(p, pattern) and isinstance(par[k], (int, float))
                      and not isinstance(par[k], bool)]
        if not candidates:
            return None
        path, parent, key, values = rng.choice(candidates)
        parent[key] = rng.choice(values)
        return f'{path}: {parent[key]} (out of range)', [path], None
    if kind == 'range' and rng.random() < 0.3 and isinstance(opt.get('scale'), int):  # the issue's `scale: 5`
        opt['scale'] = 5
        return 'scale: 5 (the networks are built for another factor)', ['scale'], None
    types = [(p, par, k) for p, par, k in entries if (p == 'model_type' or p.endswith('.type'))
             and isinstance(par[k], str)]
    path, parent, key = rng.choice(types)
    parent[key] = _one_edit(rng, parent[key])
    return f'{path}: {parent[key]!r} (a wrong type name)', [path], None


def _delete_network_key(opt, path, parent, key):
    from basicsr.utils.registry import ARCH_REGISTRY
    from dukd_arch.registry import lookup
    from dukd_arch.options.spec import signature_keys
    arch = lookup(ARCH_REGISTRY, parent.get('type'))
    if arch is None or key == 'type':
        return None
    _, required = signature_keys(arch)
    del parent[key]
    param = inspect.signature(arch).parameters.get(key)
    default = param.default if param is not None and key not in required else None
    if key in UPSCALE_KEYS and default != opt.get('scale'):
        return f'delete {path} (its default x{default} is not the scale)', [path, 'scale'], None
    harmless = None if key in required else f"{parent['type']}'s constructor has a default: the file now means it"
    return f'delete {path}', [path], harmless


def one_input(rng):
    """One mutated option file through the validation; its verdict."""
    for _ in range(50):
        source = rng.choice(base_files())
        opt = copy.deepcopy(_load(source))
        is_train = not _is_test_file(source)
        change = mutate(rng, opt, is_train)
        if change is not None:
            break
    what, names, harmless = change
    label = f'{os.path.relpath(source, REPO)}: {what}'
    try:
        notes = validate_options(opt, is_train=is_train, source=source)
    except OptionError as err:
        verdict = judge_error(FAMILY, label, err, names)
        if verdict.outcome != DEFECT and harmless:
            verdict.reason += f' (expected harmless: {harmless}; refused all the same)'
        return verdict
    except Exception as err:  # noqa: BLE001 (the validation itself crashed: a defect)
        return judge_error(FAMILY, label, err, ())
    if harmless:
        return Verdict(FAMILY, label, ACCEPTED, harmless)
    unchecked = [n for n in notes if 'not checked' in n and any(str(x).startswith(n.split(':')[0]) for x in names)]
    if unchecked:
        return Verdict(FAMILY, label, ACCEPTED, f'in a section the validation says it does not check: {unchecked[0]}')
    return Verdict(FAMILY, label, DEFECT, 'accepted by the validation, but BasicSR would fail on it or ignore it')
