"""Write the meta_info file of a real-world training set (BasicSR's ``RealESRGANDataset`` needs one).

    python scripts/make_meta_info.py datasets/DF2K/DF2K_HR_sub datasets/DF2K/meta_info/meta_info_DF2K_sub.txt

Lists every image under the GT folder (recursive, sorted), relative to it: set the folder as
``datasets.train.dataroot_gt`` and the file as ``datasets.train.meta_info``. File names with spaces are left
out (BasicSR splits each line at the first space).
"""
import argparse
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from dukd_arch.data.meta_info import write_meta_info  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('gt_folder', help='the dataroot_gt of the training set')
    p.add_argument('out', help='meta_info text file to write')
    args = p.parse_args(argv)
    try:
        n = write_meta_info(args.gt_folder, args.out)
    except OSError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'wrote {args.out}: {n} images under {args.gt_folder}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
