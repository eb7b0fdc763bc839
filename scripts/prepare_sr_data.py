"""Prepare DIV2K / Set5 / Set14 / BSD100 / Urban100 for training and testing (see datasets/README.md).

Subcommands (each a thin wrapper; bicubic = MATLAB imresize, the batched operator zoom-out uses too):

  bicubic    HR folder -> modcropped HR + MATLAB-bicubic LR (rounded to uint8, as the benchmarks are made)
  subimages  paired HR / LR folders -> aligned sub-images (basicsr's extract_subimages, LR crop = HR crop / s)
  lmdb       image folder -> LMDB + meta_info.txt (basicsr.utils.lmdb_util.make_lmdb_from_imgs)
"""
import argparse
import sys
from os import path as osp

from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # this checkout's dukd_arch first
import dukd_arch  # noqa: E402,F401  (basicsr import shim)
from dukd_arch.data.sr_data import (bicubic_downsample, crop_positions, list_images, make_lmdb, modcrop,  # noqa: E402
                                     read_image, write_image)


def _same_folder(a, b):
    return a is not None and b is not None and osp.realpath(a) == osp.realpath(b)


def _refuse_writing_into_inputs(args, pairs):
    def value(flag):
        return getattr(args, flag.lstrip('-').replace('-', '_'))

    for out_flag, in_flag in pairs:
        out, src = value(out_flag), value(in_flag)
        if _same_folder(out, src):
            raise ValueError(f'{out_flag} is the {in_flag} folder ({src}): it would overwrite the originals; '
                             'give a folder of its own.')


def cmd_bicubic(args):
    _refuse_writing_into_inputs(args, [('--lr-out', '--hr'), ('--hr-out', '--hr')])
    names = list_images(args.hr)
    if not args.hr_out:  # the LR of an HR that is not a multiple of the scale pairs only with the cropped HR
        from PIL import Image
        for name in names:
            with Image.open(osp.join(args.hr, name)) as im:  # the header only: no second decode
                w, h = im.size
            if h % args.scale or w % args.scale:
                raise ValueError(f'{osp.join(args.hr, name)} is {w}x{h}, not a multiple of {args.scale}: its LR '
                                 'would pair only with the cropped HR. Pass --hr-out FOLDER to write the '
                                 'modcropped HR images too.')
    chunk = max(1, args.batch)
    for start in tqdm(range(0, len(names), chunk), desc=f'bicubic x{args.scale}', unit='batch'):
        batch = names[start:start + chunk]
        hrs = [modcrop(read_image(osp.join(args.hr, n)), args.scale) for n in batch]
        for name, hr, lr in zip(batch, hrs, bicubic_downsample(hrs, args.scale)):
            stem = osp.splitext(name)[0]
            if args.hr_out:
                write_image(osp.join(args.hr_out, f'{stem}.png'), hr)
            write_image(osp.join(args.lr_out, f'{stem}{args.lr_suffix}.png'), lr)
    print(f'{len(names)} images: LR x{args.scale} -> {args.lr_out}' + (f', modcropped HR -> {args.hr_out}'
                                                                          if args.hr_out else ''))


def cmd_subimages(args):
    if args.crop % args.scale or args.step % args.scale or args.thresh % args.scale:
        raise SystemExit('--crop, --step and --thresh must be multiples of --scale so LR crops stay aligned.')
    _refuse_writing_into_inputs(args, [('--hr-out', '--hr'), ('--lr-out', '--lr'), ('--lr-out', '--hr'),
                                       ('--hr-out', '--lr'), ('--lr-out', '--hr-out')])
    s = args.scale
    names = list_images(args.hr)
    total = 0
    for name in tqdm(names, desc='sub-images', unit='img'):
        stem = osp.splitext(name)[0]
        hr = read_image(osp.join(args.hr, name))
        if args.lr:
            lr_path = osp.join(args.lr, f'{stem}{args.lr_suffix}.png')
            lr = read_image(lr_path)
            if (lr.shape[0] * s, lr.shape[1] * s) != hr.shape[:2]:
                raise SystemExit(f'{lr_path} is {lr.shape[1]}x{lr.shape[0]}, not HR {hr.shape[1]}x{hr.shape[0]} / {s}; '
                                 f'modcrop the HR (prepare_sr_data.py bicubic --hr-out) first.')
        index = 0
        for top in crop_positions(hr.shape[0], args.crop, args.step, args.thresh):
            for left in crop_positions(hr.shape[1], args.crop, args.step, args.thresh):
                index += 1
                out = f'{stem}_s{index:03d}.png'
                write_image(osp.join(args.hr_out, out), hr[top:top + args.crop, left:left + args.crop])
                if args.lr:
                    t, l, c = top // s, left // s, args.crop // s
                    write_image(osp.join(args.lr_out, out), lr[t:t + c, l:l + c])
                total += 1
    if not total:
        raise ValueError(f'no sub-image: every image in {args.hr} is smaller than --crop {args.crop}; give a '
                         'smaller --crop.')
    print(f'{total} sub-images from {len(names)} images -> {args.hr_out}' + (f' and {args.lr_out}' if args.lr else ''))


def cmd_lmdb(args):
    make_lmdb(args.folder, args.lmdb, overwrite=args.overwrite)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)

    b = sub.add_parser('bicubic', help='MATLAB-bicubic LR from an HR folder')
    b.add_argument('--hr', required=True, help='folder of HR images')
    b.add_argument('--lr-out', required=True, help='where the LR images go')
    b.add_argument('--hr-out', help='also write the modcropped HR here (needed when HR is not a multiple of scale)')
    b.add_argument('--scale', type=int, required=True)
    b.add_argument('--lr-suffix', default='', help="appended to LR file stems, e.g. 'x4' for DIV2K naming")
    b.add_argument('--batch', type=int, default=8, help='images read per step (equal sizes run as one batch)')
    b.set_defaults(fn=cmd_bicubic)

    s = sub.add_parser('subimages', help='aligned HR / LR sub-images (basicsr extract_subimages)')
    s.add_argument('--hr', required=True)
    s.add_argument('--hr-out', required=True)
    s.add_argument('--lr', help='paired LR folder (optional)')
    s.add_argument('--lr-out')
    s.add_argument('--lr-suffix', default='', help="LR file stem suffix to expect, e.g. 'x4'")
    s.add_argument('--scale', type=int, default=4)
    s.add_argument('--crop', type=int, default=480, help='HR crop size (basicsr DIV2K: 480)')
    s.add_argument('--step', type=int, default=240, help='HR stride (basicsr DIV2K: 240)')
    s.add_argument('--thresh', type=int, default=0, help='add a border-flush crop when more than this is left')
    s.set_defaults(fn=cmd_subimages)

    m = sub.add_parser('lmdb', help='LMDB of an image folder (keys = file stems)')
    m.add_argument('--folder', required=True)
    m.add_argument('--lmdb', required=True, help='output path ending in .lmdb')
    m.add_argument('--overwrite', action='store_true')
    m.set_defaults(fn=cmd_lmdb)

    args = p.parse_args(argv)
    if args.cmd == 'subimages' and bool(args.lr) != bool(args.lr_out):
        p.error('--lr and --lr-out go together')
    if getattr(args, 'scale', 2) < 2:
        p.error(f'--scale {args.scale}: give the SR factor, 2 or more')
    for flag in ('crop', 'step', 'batch'):
        if getattr(args, flag, 1) < 1:
            p.error(f'--{flag} {getattr(args, flag)}: must be 1 or more')
    try:
        args.fn(args)
    except (OSError, ValueError) as err:  # missing folders, unreadable or unsuitable images: one line, no traceback
        sys.exit(f'prepare_sr_data.py {args.cmd}: {err}')


if __name__ == '__main__':
    main()
