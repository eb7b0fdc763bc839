"""Build the demo SR set from scikit-image's bundled photos: ``python scripts/make_demo_data.py``.

Writes datasets/demo/{train,val}/{HR,LR_bicubic/X4} and LMDBs of the train split; see dukd_arch/demo/data.py.
"""
import argparse
import os
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # this checkout's dukd_arch first
import dukd_arch  # noqa: E402,F401  (basicsr import shim)
from dukd_arch.demo.data import DEFAULTS, build_demo_set  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default='datasets/demo', help='output folder (default: %(default)s)')
    p.add_argument('--scale', type=int, default=DEFAULTS['scale'])
    p.add_argument('--crop-size', type=int, default=DEFAULTS['crop_size'], help='HR sub-image size of the train split')
    p.add_argument('--step', type=int, default=DEFAULTS['step'], help='stride between train sub-images')
    p.add_argument('--no-lmdb', action='store_true', help='skip the LMDB of the train split')
    p.add_argument('--force', action='store_true', help='rebuild even if an up-to-date set exists')
    args = p.parse_args(argv)
    m = build_demo_set(args.root, scale=args.scale, crop_size=args.crop_size, step=args.step,
                       lmdb=not args.no_lmdb, force=args.force)
    print(f"[demo data] {osp.abspath(args.root)}: {len(m['files']['train'])} train sub-images, "
          f"held-out {', '.join(m['files']['val'])}")


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    main()
