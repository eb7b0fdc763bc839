"""Exit 0 when every named distribution is installed (``name`` or ``name==version``), else 1 and say which is not.

    python scripts/check_install.py dukd scikit-image torch==2.14.1 torchvision==0.29.1

``make demo`` runs ``make install`` only when this fails, so a second ``make demo`` installs nothing.
"""
import sys
from importlib import metadata


def missing(specs):
    out = []
    for spec in specs:
        name, _, version = spec.partition('==')
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(f'{name} is not installed')
            continue
        if version and have.split('+')[0] != version:
            out.append(f'{name} {have} is installed, {version} is pinned')
    return out


if __name__ == '__main__':
    problems = missing(sys.argv[1:])
    for line in problems:
        print(f'[make] {line}: installing')
    sys.exit(1 if problems else 0)
