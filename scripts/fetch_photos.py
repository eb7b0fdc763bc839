"""Fetch the real photographs of Debian's ``mate-backgrounds`` package (its ``nature`` set) into datasets/photos.

Used only by the gain study and by training the reference teacher (docs/gain_protocol.md); ``make demo`` and
``make test`` never need it. The package comes from Debian's archive through ``apt-get download`` (no root
install, nothing else touched); its twelve ``nature/*.jpg`` photographs are copied out and their SHA-256
written to ``datasets/photos/mate_nature/SHA256SUMS``, so a later run can tell a changed download apart.

    python scripts/fetch_photos.py            # -> datasets/photos/mate_nature/*.jpg
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # this checkout's dukd_arch first
from dukd_arch.io.shipped import sha256_file as sha256  # noqa: E402

PACKAGE = 'mate-backgrounds'
MEMBER_DIR = 'usr/share/backgrounds/mate/nature'


def _run(cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def download_deb(workdir: str) -> str:
    """``apt-get download PACKAGE`` into ``workdir``; refreshes the package lists once if needed."""
    if shutil.which('apt-get') is None or shutil.which('dpkg-deb') is None:
        sys.exit('fetch_photos: needs a Debian-based system (apt-get, dpkg-deb); copy the twelve photos of '
                 f'{PACKAGE} into datasets/photos/mate_nature/ by hand instead.')
    res = _run(['apt-get', 'download', PACKAGE], cwd=workdir)
    if res.returncode != 0:
        print(f'[photos] apt-get download failed once ({res.stdout.strip().splitlines()[-1:]}); '
              'running apt-get update and retrying')
        _run(['apt-get', 'update'])
        res = _run(['apt-get', 'download', PACKAGE], cwd=workdir)
    debs = glob.glob(osp.join(workdir, f'{PACKAGE}_*.deb'))
    if res.returncode != 0 or not debs:
        sys.exit(f'fetch_photos: `apt-get download {PACKAGE}` failed:\n{res.stdout}')
    return debs[0]


def fetch(out: str, force: bool = False) -> list:
    sums_path = osp.join(out, 'SHA256SUMS')
    if not force and osp.isfile(sums_path):
        with open(sums_path) as f:
            entries = [line.split() for line in f if line.strip()]
        if entries and all(osp.isfile(osp.join(out, n)) and sha256(osp.join(out, n)) == h for h, n in entries):
            print(f'[photos] {out} is complete ({len(entries)} photos); --force fetches again')
            return [n for _, n in entries]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        deb = download_deb(tmp)
        res = _run(['dpkg-deb', '-x', deb, osp.join(tmp, 'x')])
        if res.returncode != 0:
            sys.exit(f'fetch_photos: cannot unpack {deb}:\n{res.stdout}')
        photos = sorted(glob.glob(osp.join(tmp, 'x', MEMBER_DIR, '*.jpg')))
        if not photos:
            sys.exit(f'fetch_photos: {osp.basename(deb)} has no {MEMBER_DIR}/*.jpg')
        names = []
        for src in photos:
            shutil.copyfile(src, osp.join(out, osp.basename(src)))
            names.append(osp.basename(src))
        with open(sums_path, 'w') as f:
            for n in names:
                f.write(f'{sha256(osp.join(out, n))}  {n}\n')
        print(f'[photos] {osp.basename(deb)}: {len(names)} photos -> {out}')
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='datasets/photos/mate_nature', help='output folder (default: %(default)s)')
    p.add_argument('--force', action='store_true', help='download again even if the folder is complete')
    args = p.parse_args(argv)
    fetch(args.out, args.force)


if __name__ == '__main__':
    main()
