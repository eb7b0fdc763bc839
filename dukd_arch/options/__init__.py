"""One validation pass over a whole option file, before anything is built.

Unknown keys (with the nearest known key), values of the wrong type, network blocks that do not fit
their constructor, unregistered type names and keys that the chosen ``model_type`` does not read are
all reported together, each with its full path. ``train.py`` / ``test.py`` run it before BasicSR parses
the file; ``python -m dukd_arch.options FILE...`` checks files without training.

Keys of your own (a fork that reads extra keys) go in a top-level list of glob patterns::

    allow_unknown_keys: [train.my_loss_opt, network_g.my_*]

A listed key and everything under it are left unchecked.
"""
import argparse
import os
import sys
from collections import OrderedDict

from basicsr.utils.options import _postprocess_yml_value
from basicsr.utils.registry import MODEL_REGISTRY

from ..registry import lookup, registered_names
from . import schema
from .file import load_options
from .sources import check_sources
from .spec import OWN_KEYS_HINT, Context, OptionError, Section, describe, signature_keys, suggestion


def validate_options(opt, is_train=True, source='the options'):
    """Check ``opt`` (a parsed option file) and raise ``OptionError`` listing every problem.

    Returns the notes (keys accepted but not used, sections not checked) for the caller to log.
    """
    if not isinstance(opt, dict):
        raise OptionError(f'{source}: the file does not hold a mapping of options (got {describe(opt)})')
    allow = opt.get('allow_unknown_keys') or []
    ctx = Context(opt=opt, is_train=is_train, allow=[str(a) for a in allow] if isinstance(allow, list) else [])

    model_cls = None
    if isinstance(opt.get('model_type'), str):
        model_cls = lookup(MODEL_REGISTRY, opt['model_type'])
        if model_cls is None:
            names = registered_names(MODEL_REGISTRY)
            ctx.error('model_type', f'no model is registered as {opt["model_type"]!r}; '
                      f'{suggestion(opt["model_type"], names, "registered")}')
    # an unknown model_type is reported above; then every model's keys are accepted rather than each flagged
    families = schema.model_families(model_cls) if model_cls is not None else schema.ALL_FAMILIES

    for key in ('name', 'model_type', 'scale', 'network_g', 'path') + (('datasets', 'train') if is_train else
                                                                        ('datasets', )):
        if key not in opt:
            ctx.error(key, 'missing: BasicSR needs this section')
    if is_train and 'logger' not in opt:
        ctx.error('logger', 'missing: e.g. `logger: {print_freq: 100, save_checkpoint_freq: 5000}`')

    own_top, foreign_top = schema.family_keys(families, '')
    top_keys = {**schema.TOP, **own_top, 'train': _train_section(families, model_cls)}
    for key, fix in schema.IGNORED_TOP.items():
        if key in opt and key not in top_keys:
            ctx.notes.append(f'`{key}` at the top level is not read by BasicSR 1.4.2 ({fix})')
            top_keys[key] = schema.ANY
    _foreign_keys_error(opt, '', foreign_top, own_top, opt.get('model_type'), ctx)
    Section(top_keys).validate({k: v for k, v in opt.items() if k not in foreign_top or k in own_top}, '', ctx)
    schema.scale_mismatches(opt, ctx)
    schema.channel_mismatches(opt, ctx)
    schema.ignored_self_ensemble(opt, families, ctx)
    if is_train and families.get('kd'):
        schema.untrained_teacher(opt, ctx)
    if is_train:
        schema.prefetch_thread_seeding(opt, ctx)
    if is_train and families.get('realworld'):
        schema.realworld_training_data(opt, ctx)
    datasets = opt.get('datasets') if isinstance(opt.get('datasets'), dict) else {}
    if is_train and isinstance(opt.get('val'), dict) and 'val_freq' not in opt['val'] and any(
            str(name).split('_')[0] == 'val' for name in datasets):
        ctx.error('val.val_freq', 'missing: training validates every val_freq iterations (e.g. 5000)')

    if ctx.errors:
        lines = [f'  {path}: {message}' for path, message in ctx.errors]
        raise OptionError(f'{source}: {len(ctx.errors)} problem(s) in the options; nothing was built.\n'
                          + '\n'.join(lines))
    return ctx.notes


def _foreign_keys_error(section, prefix, foreign, own, model_type, ctx):
    for key in section:
        if key in foreign and key not in own:
            path = f'{prefix}{key}'
            if not ctx.allowed(path):
                ctx.error(path, f'read only by {foreign[key]}; model_type {model_type} ignores it. Change '
                          'model_type or remove the key.')


def _train_section(families, model_cls):
    def validate(value, path, ctx):
        if not isinstance(value, dict):
            ctx.error(path, f'expected a mapping, got {describe(value)}')
            return
        if not families.get('sr'):  # a BasicSR model outside the SRModel family: its keys are its own
            if model_cls is not None:
                ctx.notes.append(f'train: keys of model type {model_cls.__name__} are not checked')
            return
        own, foreign = schema.family_keys(families, 'train')
        _foreign_keys_error(value, 'train.', foreign, own, ctx.opt.get('model_type'), ctx)
        keys = {**schema.SRMODEL_TRAIN, **own}
        Section(keys, required=('optim_g', 'scheduler', 'total_iter')).validate(
            {k: v for k, v in value.items() if k not in foreign or k in own}, path, ctx)
        if ctx.is_train and not value.get('pixel_opt') and not (families.get('perceptual')
                                                             and value.get('perceptual_opt')):
            # BasicSR's SRModel / SRGANModel would refuse it after building the networks and the teacher
            ctx.error(f'{path}.pixel_opt', 'missing or off, and no perceptual loss: the model would have no loss '
                      'to the ground truth (BasicSR refuses it). Set e.g. `pixel_opt: {type: L1Loss, loss_weight: '
                      '1.0}`' + ('; for distillation terms only, give it loss_weight: 0' if families.get('kd')
                                 else ''))

    return validate


def check_network(block, source='the options', where='network_g'):
    """A network block checked as train.py checks one (registered type, the constructor's arguments), for the
    tools that build a network without a whole option file (infer, benchmark). Raises OptionError naming each
    bad or missing argument and the arguments the architecture takes."""
    ctx = Context(opt={}, is_train=False)
    schema.NETWORK(block, where, ctx)
    if not ctx.errors:
        return
    lines = [f'  {path}: {message.replace(OWN_KEYS_HINT, "")}' for path, message in ctx.errors]
    arch = schema._network_class(block)
    if arch is not None:
        lines.append(f'  {block["type"]} takes: {", ".join(signature_keys(arch)[0])}')
    raise OptionError(f'{source}: {where} does not build a network; nothing was run.\n' + '\n'.join(lines))


def load_option_file(path, force_yml=None):
    """The option file as BasicSR reads it (same YAML loader), with ``--force_yml`` entries applied."""
    opt = load_options(path)
    for entry in force_yml or []:
        if '=' not in entry or not entry.split('=', 1)[0].strip():
            raise ValueError(f'--force_yml {entry!r}: expected KEY:SUBKEY=VALUE, e.g. train:total_iter=1000')
        keys, value = (s.strip() for s in entry.split('=', 1))
        node = opt
        *parents, leaf = keys.split(':')
        for key in parents:
            node = node.setdefault(key, OrderedDict())
            if not isinstance(node, dict):
                raise ValueError(f'--force_yml {entry!r}: {key} is a value, not a section, in {path}')
        node[leaf] = _postprocess_yml_value(value)
    return opt


def check_option_file(path, is_train=True, force_yml=None):
    """Load and validate one option file; returns (opt, notes) or raises OptionError naming the file.

    ``is_train=None``: a training file when it has a ``train`` section, else a test file (the tools'
    ``-opt`` takes either)."""
    if not os.path.isfile(path):
        raise OptionError(f'{path}: options file not found; check the -opt path'
                          + (' (it names a folder)' if os.path.isdir(path) else ''))
    try:
        opt = load_option_file(path, force_yml)
    except ValueError as err:  # not YAML, not a mapping, a malformed --force_yml entry
        raise OptionError(str(err)) from None
    if is_train is None:
        is_train = isinstance(opt, dict) and 'train' in opt
    return opt, validate_options(opt, is_train=is_train, source=path)


def load_checked_options(path):
    """The ``-opt`` file of ``python -m dukd_arch.card / export / quant_export``, validated as train.py does
    (same messages); notes go to stderr. Raises OptionError (a ValueError) naming the file and each key."""
    opt, notes = check_option_file(path, is_train=None)
    for note in notes:
        print(f'Note ({path}): {note}', file=sys.stderr)
    return opt


def check_command_line(argv=None, is_train=True):
    """Validate the file named by ``-opt`` on a train.py / test.py command line (BasicSR's arguments)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt', required=True)
    parser.add_argument('--force_yml', nargs='+', default=None)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    _, notes = check_option_file(args.opt, is_train=is_train, force_yml=args.force_yml)
    for note in notes:
        print(f'Note ({args.opt}): {note}', file=sys.stderr)


def validated_parse_options(root_path, is_train=True):
    """What our train.py / test.py give BasicSR as ``parse_options``: validate the file, parse it, check what it
    reads."""
    from ..compat import parse_options
    try:
        check_command_line(is_train=is_train)
        opt, args = parse_options(root_path, is_train=is_train)
        check_sources(opt, resuming=bool(getattr(args, 'auto_resume', False) or opt['path'].get('resume_state')))
    except OptionError as err:
        sys.exit(f'Error: {err}')
    return opt, args
