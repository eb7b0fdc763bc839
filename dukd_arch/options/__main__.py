"""Check option files without training: ``python -m dukd_arch.options options/*.yml [--test]``."""
import argparse
import sys

import dukd_arch  # noqa: F401  (registers archs, datasets, losses and models: names are checked against them)
from dukd_arch.options import OptionError, check_option_file


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('files', nargs='+')
    parser.add_argument('--test', action='store_true', help='the files are test.py options (no train section)')
    args = parser.parse_args(argv)
    failed = 0
    for path in args.files:
        try:
            _, notes = check_option_file(path, is_train=not args.test)
        except OptionError as err:
            failed += 1
            print(err, file=sys.stderr)
            continue
        print(f'{path}: ok' + ''.join(f'\n  note: {n}' for n in notes))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
