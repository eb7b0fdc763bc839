"""Check option files without training: ``python -m dukd_arch.options options/*.yml [--train | --test]``.

Each file is checked as train.py checks it when it has a ``train`` section, else as test.py does;
``--train`` / ``--test`` force one for every file. Data roots, meta-info files and checkpoints that do not
exist from here (``options/sources.py``) are noted, as the file may be meant for another machine;
``--require-paths`` fails on them."""
import argparse
import os
import sys

import dukd_arch  # noqa: F401  (registers archs, datasets, losses and models: names are checked against them)
from dukd_arch.options import OptionError, check_option_file
from dukd_arch.options.sources import other_missing_paths, source_problems


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
        missing = source_problems(opt) + other_missing_paths(opt)
        if missing and args.require_paths:
            failed += 1
            print(f'{path}: {len(missing)} path(s) not found from {os.getcwd()}:'
                  + ''.join(f'\n  {m}' for m in missing), file=sys.stderr)
            continue
        notes += [f'from {os.getcwd()}: {m}' for m in missing]
        as_train = args.is_train if args.is_train is not None else 'train' in opt
        print(f'{path}: ok (checked as {"train.py" if as_train else "test.py"} options)'
              + ''.join(f'\n  note: {n}' for n in notes))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
