"""Fetch real photographs that Debian packages ship (desktop wallpapers) into datasets/photos/<set>/.

Only photographs, chosen by name and thumbnail before any training (docs/gain_protocol_v2.md lists them; the
illustrations and renders the same packages ship are left out). Each package comes from Debian's archive
through ``apt-get download`` (no root install, nothing else touched); its photos are copied out and their
SHA-256 written to ``datasets/photos/<set>/SHA256SUMS``, so a later run can tell a changed download apart.

    python scripts/fetch_photos.py                 # mate_nature: the 12 photos of gain study v1 and the demo teacher
    python scripts/fetch_photos.py --set corpus    # every set below: the 37 photographs of study v2's corpus
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

_PLASMA_PHOTOS = ('BytheWater', 'ColdRipple', 'ColorfulCups', 'DarkestHour', 'EveningGlow', 'FallenLeaf', 'Grey',
                  'Kite', 'OneStandsOut', 'Path', 'summer_1am')
# set: (Debian package, folder inside it, {file in that folder: name to save}; None = every *.jpg)
SOURCES = {
    'mate_nature': ('mate-backgrounds', 'usr/share/backgrounds/mate/nature', None),
    'plasma_photos': ('plasma-workspace-wallpapers', 'usr/share/wallpapers',
                      {f'{n}/contents/images/2560x1600.jpg': f'{n}.jpg' for n in _PLASMA_PHOTOS}),
    'lomiri_photos': ('lomiri-wallpapers-16.04', 'usr/share/backgrounds', {n: n for n in (
        'Bridge_by_Sander_Klootwijk.jpg', 'Dragonfly_by_Bolly.jpg', 'Picture_0B_by_freespace.jpg',
        'Picture_1A_by_freespace.jpg', 'Wine_by_Jakkub_Mede.jpg', 'aitzgorri_by_Aitzol_Berasategi.jpg',
        'free_by_Peter_Nerlich.jpg', 'friends_by_Aitzol_Berasategi.jpg', 'greentock_by_Peter_Nerlich.jpg',
        'life_by_Aitzol_Berasategi.jpg', 'picosdeeuropa_by_Aitzol_Berasategi.jpg',
        'seeding_by_Clements_Engelhardt.jpg', 'sunset_by_Aitzol_Berasategi.jpg')}),
    'lomiri2004_photos': ('lomiri-wallpapers-20.04', 'usr/share/backgrounds',
                          {'Kleiber_by_Lukas_Baubkus.jpg': 'Kleiber_by_Lukas_Baubkus.jpg'}),
}
CORPUS = tuple(SOURCES)  # study v2's training corpus: all of them


def _run(cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def download_deb(package: str, workdir: str) -> str:
    """``apt-get download PACKAGE`` into ``workdir``; refreshes the package lists once if needed."""
    if shutil.which('apt-get') is None or shutil.which('dpkg-deb') is None:
        sys.exit(f'fetch_photos: needs a Debian-based system (apt-get, dpkg-deb); copy the photos of {package} '
                 'listed in scripts/fetch_photos.py into datasets/photos/<set>/ by hand instead.')
    res = _run(['apt-get', 'download', package], cwd=workdir)
    if res.returncode != 0:
        print(f'[photos] apt-get download failed once ({res.stdout.strip().splitlines()[-1:]}); '
              'running apt-get update and retrying')
        _run(['apt-get', 'update'])
        res = _run(['apt-get', 'download', package], cwd=workdir)
    debs = glob.glob(osp.join(workdir, f'{package}_*.deb'))
    if res.returncode != 0 or not debs:
        sys.exit(f'fetch_photos: `apt-get download {package}` failed:\n{res.stdout}')
    return debs[0]


def _complete(out: str) -> list:
    """The names listed in ``out/SHA256SUMS`` when every file is there with its hash, else []."""
    sums_path = osp.join(out, 'SHA256SUMS')
    if not osp.isfile(sums_path):
        return []
    with open(sums_path) as f:
        entries = [line.split() for line in f if line.strip()]
    ok = entries and all(osp.isfile(osp.join(out, n)) and sha256(osp.join(out, n)) == h for h, n in entries)
    return [n for _, n in entries] if ok else []


def fetch(out: str, force: bool = False, photo_set: str = 'mate_nature') -> list:
    package, member_dir, files = SOURCES[photo_set]
    if not force and _complete(out):
        print(f'[photos] {out} is complete ({len(_complete(out))} photos); --force fetches again')
        return _complete(out)
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        deb = download_deb(package, tmp)
        res = _run(['dpkg-deb', '-x', deb, osp.join(tmp, 'x')])
        if res.returncode != 0:
            sys.exit(f'fetch_photos: cannot unpack {deb}:\n{res.stdout}')
        folder = osp.join(tmp, 'x', member_dir)
        if files is None:
            files = {osp.basename(p): osp.basename(p) for p in sorted(glob.glob(osp.join(folder, '*.jpg')))}
        missing = [m for m in files if not osp.isfile(osp.join(folder, m))]
        if not files or missing:
            sys.exit(f'fetch_photos: {osp.basename(deb)} lacks {missing or member_dir + "/*.jpg"}')
        names = []
        for member, name in files.items():
            shutil.copyfile(osp.join(folder, member), osp.join(out, name))
            names.append(name)
        with open(osp.join(out, 'SHA256SUMS'), 'w') as f:
            for n in names:
                f.write(f'{sha256(osp.join(out, n))}  {n}\n')
        print(f'[photos] {osp.basename(deb)}: {len(names)} photos -> {out}')
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--set', default='mate_nature', choices=list(SOURCES) + ['corpus'],
                   help='which photos (default: %(default)s; corpus = all sets)')
    p.add_argument('--root', default='datasets/photos', help='parent folder, one sub-folder per set (%(default)s)')
    p.add_argument('--out', default=None, help='output folder of a single set (default: ROOT/SET)')
    p.add_argument('--force', action='store_true', help='download again even if the folder is complete')
    args = p.parse_args(argv)
    if args.out and args.set == 'corpus':
        p.error('--out names the folder of one set; the corpus is several: give --root (one sub-folder per set)')
    for name in CORPUS if args.set == 'corpus' else (args.set, ):
        fetch(args.out or osp.join(args.root, name), args.force, name)


if __name__ == '__main__':
    main()
