"""Super-resolve your own images with a trained student.

    python -m dukd_arch.infer -i photos/ -o results/ --checkpoint experiments/<name>/models/net_g_latest.pth
        [-opt OPTIONS.yml] [--tile 256] [--tile-pad P] [--device cpu|cuda] [--half] [--self-ensemble]
        [--suffix _sr] [--ext auto|png|jpg|webp|tif] [--alpha network|bicubic] [--param-key K]

``--checkpoint``: a training ``.pth`` (``params_ema`` preferred, then ``params``), the ``.safetensors``
written by ``python -m dukd_arch.export`` (carries ``network_g``), or its ``.onnx`` (onnxruntime).
``-opt`` supplies ``network_g`` when the checkpoint does not carry it (a training checkpoint under
``experiments/<name>/models/`` finds the options file BasicSR copied beside it). PNG, JPEG, WebP, TIFF (and
BMP), 8 or 16 bit, grey, RGB or RGBA in; the output keeps the input's bit depth and channels (grey with alpha,
which OpenCV reads as BGRA, comes back RGBA). An input is
never overwritten; an unreadable image is reported, skipped, and makes the exit status 1.
"""
import argparse
import os
import sys
from typing import Dict, List, Tuple

import cv2
import numpy as np

from .upsampler import ALPHA_MODES, StudentUpsampler

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.bmp')
OUT_EXTS = ('png', 'jpg', 'webp', 'tif')


def list_inputs(path: str) -> List[str]:
    """Image files of a folder (sorted, not recursive), or the one file given."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f'input not found: {path!r} (give an image file or a folder of images)')
    files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTS))
    if not files:
        raise FileNotFoundError(f'{path} holds no image files ({", ".join(IMAGE_EXTS)})')
    return files


def output_paths(inputs: List[str], out_dir: str, suffix: str, ext: str) -> Dict[str, str]:
    """input -> output path; refuses, before any work, a plan that would overwrite an input or write one output
    twice."""
    plan, seen = {}, {}
    input_real = {os.path.realpath(p) for p in inputs}
    for path in inputs:
        stem, in_ext = os.path.splitext(os.path.basename(path))
        out = os.path.join(out_dir, f'{stem}{suffix}{in_ext if ext == "auto" else "." + ext}')
        real = os.path.realpath(out)
        if real in input_real or (os.path.exists(out) and os.path.samefile(out, path)):
            raise ValueError(f'{out} would overwrite an input image; give another -o folder or a --suffix')
        if real in seen:
            raise ValueError(f'{seen[real]} and {path} would both be written to {out}; use --ext auto or '
                             'separate runs')
        seen[real] = path
        plan[path] = out
    return plan


def _writable(out: str, img) -> Tuple[str, str]:
    """(path, note): JPEG holds neither alpha nor 16 bit, WebP no 16 bit; such outputs become PNG."""
    ext = os.path.splitext(out)[1].lower()
    deep = img.dtype != 'uint8'
    has_alpha = img.ndim == 3 and img.shape[2] == 4
    if (ext in ('.jpg', '.jpeg') and (deep or has_alpha)) or (ext == '.webp' and deep):
        return os.path.splitext(out)[0] + '.png', f'{ext[1:].upper()} cannot hold this image\'s ' + (
            '16-bit samples' if deep else 'alpha') + ', written as PNG'
    return out, ''


# EXIF orientation -> the array operation that shows the image upright (PIL's exif_transpose, in numpy)
_ORIENT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
           6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}


def read_upright(path: str):
    """The image as OpenCV reads it unchanged (depth, alpha), turned upright by its EXIF orientation, which
    ``IMREAD_UNCHANGED`` ignores: a phone photo would otherwise come back on its side (the output has no EXIF)."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    try:
        from PIL import Image
        with Image.open(path) as im:
            orientation = im.getexif().get(0x0112, 1)
    except Exception:  # no EXIF reader for this format: the pixels as stored
        return img
    turn = _ORIENT.get(orientation)
    return np.ascontiguousarray(turn(img)) if turn else img


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dukd_arch.infer', description=__doc__.split('\n\n')[0])
    parser.add_argument('-i', '--input', required=True, help='image file or folder of images')
    parser.add_argument('-o', '--output', required=True, help='output folder (created)')
    parser.add_argument('--checkpoint', required=True, help='.pth (params_ema, then params), .safetensors or .onnx')
    parser.add_argument('-opt', '--opt', default=None, help='options file with network_g (when the checkpoint '
                        'does not carry it)')
    parser.add_argument('--param-key', default=None, help='weights key in a .pth (default: params_ema, then params)')
    parser.add_argument('--tile', type=int, default=0, help='LR tile size; 0 = whole image at once (default)')
    parser.add_argument('--tile-pad', type=int, default=None,
                        help='LR context pixels around each tile (default: the measured receptive field)')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: the accelerator if any)')
    parser.add_argument('--half', action='store_true', help='fp16 on CUDA')
    parser.add_argument('--self-ensemble', action='store_true', help='x8 geometric self-ensemble (8x slower)')
    parser.add_argument('--suffix', default='_sr', help='added to each output file name (default: _sr)')
    parser.add_argument('--ext', default='auto', choices=('auto', ) + OUT_EXTS,
                        help='output format (default: that of the input)')
    parser.add_argument('--alpha', default='network', choices=ALPHA_MODES,
                        help='how the alpha channel of RGBA images is upscaled (default: by the network)')
    args = parser.parse_args(argv)
    try:
        if os.path.exists(args.output) and not os.path.isdir(args.output):
            raise ValueError(f'-o {args.output} is a file; give the output folder')
        inputs = list_inputs(args.input)
        plan = output_paths(inputs, args.output, args.suffix, args.ext)
        upsampler = StudentUpsampler(args.checkpoint, args.opt, args.param_key, args.tile, args.tile_pad,
                                     args.device, args.half, args.self_ensemble, args.alpha)
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    from tqdm import tqdm
    print(f'student: {upsampler.description}; x{upsampler.scale} on {upsampler.device}'
          f"{', fp16' if args.half else ''}{', x8 self-ensemble' if args.self_ensemble else ''}")
    if upsampler.tile:
        rf = upsampler.receptive_field
        print(f'tiles of {upsampler.tile} LR px with {upsampler.tile_pad} px of context; receptive field: '
              + (f'{rf} px' if rf is not None else 'the whole image (global operations): tiles change the output')
              + ('' if rf is None or upsampler.tile_pad >= rf else
                 f'; --tile-pad {upsampler.tile_pad} < {rf}: tile seams may show'))
    os.makedirs(args.output, exist_ok=True)
    input_real = {os.path.realpath(p) for p in inputs}
    failures = []
    for path in tqdm(inputs, unit='image', disable=len(inputs) == 1 or not sys.stderr.isatty()):
        try:
            img = read_upright(path)
            if img is None or img.size == 0:
                raise ValueError('not a readable image (corrupt, empty or an unsupported format)')
            out_img = upsampler.enhance(img)
            out, note = _writable(plan[path], out_img)
            if os.path.realpath(out) in input_real:
                raise ValueError(f'{out} would overwrite an input image; give another -o folder or a --suffix')
            if note:
                tqdm.write(f'{path}: {note}')
            if not cv2.imwrite(out, out_img):
                raise OSError(f'could not write {out}')
        except (OSError, ValueError, RuntimeError, cv2.error) as err:
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            tqdm.write(f'skipped {path}: {message}')
            failures.append((path, message))
    print(f'{len(inputs) - len(failures)} of {len(inputs)} images written to {args.output}')
    if failures:
        print(f'{len(failures)} failed:', file=sys.stderr)
        for path, message in failures:
            print(f'  {path}: {message}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
