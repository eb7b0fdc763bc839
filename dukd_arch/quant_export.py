"""Write the integer weights, per-channel scales and activation clips of a trained quantized student.

    python -m dukd_arch.quant_export -opt options/dukd_edsr_x4_w4a4.yml
        --checkpoint experiments/<name>/models/net_g_latest.pth --out out.safetensors

``--out`` is the output file (``CHECKPOINT OUT`` as two positional arguments also work); ``--param-key`` picks
the weights.
The network is built from the options' ``network_g`` (a Quant* arch); the EMA weights (``params_ema``) are
exported when the checkpoint has them, else ``params``. The format is described in
``dukd_arch/archs/quant_export.py``.
"""
import argparse
import json
import os
import sys

from dukd_arch.archs.quant_export import export_quantized_student
from dukd_arch.options import load_checked_options


def main(argv=None):
    try:
        export(argv)
    except (OSError, KeyError, ValueError) as err:
        sys.exit(f'quant_export: {err}')


def export(argv=None):
    parser = argparse.ArgumentParser(prog='python -m dukd_arch.quant_export', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', '--opt', required=True, help='options YAML whose network_g is the quantized student')
    parser.add_argument('--checkpoint', dest='checkpoint_flag', default=None, metavar='CHECKPOINT',
                        help='trained student checkpoint (.pth or .safetensors)')
    parser.add_argument('--out', default=None, help='output .safetensors file')
    parser.add_argument('checkpoint', nargs='?', default=None, help=argparse.SUPPRESS)
    parser.add_argument('output', nargs='?', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--param-key', default=None,
                        help='weights to export (default: params_ema if present, else auto-detect)')
    args = parser.parse_args(argv)
    checkpoint, output = args.checkpoint_flag or args.checkpoint, args.out or args.output
    if not checkpoint or not output:
        parser.error('give --checkpoint CHECKPOINT and --out OUT.safetensors')
    args.checkpoint, args.output = checkpoint, output

    opt = load_checked_options(args.opt)  # the whole file, as train.py checks it
    if os.path.isdir(output):  # `export` takes a folder: the habit would end in IsADirectoryError after the build
        parser.error(f'--out {output} is a folder; give the file to write, e.g. '
                     f'{os.path.join(output, "student_quantized.safetensors")}')
    if not output.endswith('.safetensors'):  # safetensors bytes under a .pth name would be read as a pickle
        parser.error(f'--out {output}: the export is a safetensors file; give a name ending in .safetensors')
    if os.path.exists(output) and os.path.realpath(output) == os.path.realpath(checkpoint):
        parser.error(f'--out is the checkpoint ({checkpoint}): it would be replaced; give another file name')
    metadata, used = export_quantized_student(opt, args.checkpoint, args.output, args.param_key)
    layers = json.loads(metadata['quantization'])
    print(f'{args.output}: {metadata["arch"]} W{metadata["w_bits"]}A{metadata["a_bits"]}, {len(layers)} quantized '
          f'layers (weights from {used or "bare state dict"}); full precision: '
          f'{", ".join(json.loads(metadata["full_precision"]))}')


if __name__ == '__main__':
    main()
