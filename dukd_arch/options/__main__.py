"""Check option files without training: ``python -m dukd_arch.options options/*.yml [--train | --test]``.

Each file is checked as train.py checks it when it has a ``train`` section, else as test.py does;
``--train`` / ``--test`` force one for every file. Data roots, meta-info files and checkpoints that do not
exist from here are noted (the file may be meant for another machine); ``--require-paths`` fails on them."""
import argparse
import os
import sys

import dukd_arch  # noqa: F401  (registers archs, datasets, losses and models: names are checked against them)
from dukd_arch.options import OptionError, check_option_file

DATASET_PATHS = ('dataroot_gt', 'dataroot_lq', 'dataroot_teacher', 'meta_info_file')


def missing_paths(opt) -> list:
    """``key: 'path'`` for each file or folder the option file names that does not exist (``~`` expanded and
    relative to the current folder, as train.py reads them)."""
    named = []
    for phase, dataset in (opt.get('datasets') or {}).items():
        if isinstance(dataset, dict):
            named += [(f'datasets.{phase}.{key}', dataset.get(key)) for key in DATASET_PATHS]
    path = opt.get('path') if isinstance(opt.get('path'), dict) else {}
    named += [(f'path.{key}', value) for key, value in path.items()
              if key.startswith('pretrain_network_') or key == 'resume_state']
    for net in ('network_g', 'network_t'):  # AutoTeacher and spandrel teachers read their own file
        if isinstance(opt.get(net), dict):
            named.append((f'{net}.path', opt[net].get('path')))
    return [f'{key}: {value!r}' for key, value in named if isinstance(value, str) and not os.path.exists(os.path.expanduser(value))]


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m dukd_arch.options', description=__doc__)
    parser.add_argument('files', nargs='+')
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument('--train', dest='is_train', action='store_const', const=True,
                      help='check every file as train.py options (default: files with a train section)')
    kind.add_argument('--test', dest='is_train', action='store_const', const=False,
                      help='check every file as test.py options (no train section)')
    parser.add_argument('--require-paths', action='store_true',
                        help='fail a file that names a data root or checkpoint not found from here (default: note)')
    args = parser.parse_args(argv)
    failed = 0
    for path in args.files:
        try:
            opt, notes = check_option_file(path, is_train=args.is_train)
        except OptionError as err:
            failed += 1
            print(err, file=sys.stderr)
            continue
        missing = missing_paths(opt)
        if missing and args.require_paths:
            failed += 1
            print(f'{path}: {len(missing)} path(s) not found from {os.getcwd()}:'
                  + ''.join(f'\n  {m}' for m in missing), file=sys.stderr)
            continue
        notes += [f'not found from here: {m}' for m in missing]
        as_train = args.is_train if args.is_train is not None else 'train' in opt
        print(f'{path}: ok (checked as {"train.py" if as_train else "test.py"} options)'
              + ''.join(f'\n  note: {n}' for n in notes))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
