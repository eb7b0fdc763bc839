"""Write the integer weights, per-channel scales and activation clips of a trained quantized student.

    python -m dukd_arch.quant_export -opt options/dukd_edsr_x4_w4a4.yml \
        experiments/<name>/models/net_g_latest.pth out.safetensors

The network is built from the options' ``network_g`` (a Quant* arch); the EMA weights
(``params_ema``) are exported when the checkpoint has them, else ``params``.
"""
import argparse
import json
import sys

import yaml

from basicsr.archs import build_network

from dukd_arch.utils.checkpoint import check_finite, extract_state_dict, read_checkpoint
from dukd_arch.utils.quant_export import save_quantized


def main(argv=None):
    try:
        export(argv)
    except (FileNotFoundError, KeyError, ValueError) as err:
        sys.exit(f'quant_export: {err}')


def export(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', '--opt', required=True, help='options YAML whose network_g is the quantized student')
    parser.add_argument('checkpoint', help='trained student checkpoint (.pth or .safetensors)')
    parser.add_argument('output', help='output .safetensors file')
    parser.add_argument('--param-key', default=None,
                        help='weights to export (default: params_ema if present, else auto-detect)')
    args = parser.parse_args(argv)

    with open(args.opt, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    if not isinstance(opt, dict) or 'network_g' not in opt:
        sys.exit(f'{args.opt} has no `network_g` section; pass the options file the student was trained with.')
    net = build_network(dict(opt['network_g']))
    ckpt = read_checkpoint(args.checkpoint, what='quantized student checkpoint')
    key = args.param_key
    if key is None and isinstance(ckpt, dict) and 'params_ema' in ckpt:
        key = 'params_ema'
    state, used = extract_state_dict(ckpt, key, args.checkpoint)
    check_finite(state, args.checkpoint, 'quantized student checkpoint')
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:  # torch's wall of keys does not say which file
        raise ValueError(f'{args.checkpoint} does not fit `network_g` of {args.opt}: {str(err).splitlines()[0]} ...; '
                         'pass the options file the student was trained with.') from err
    metadata = save_quantized(net, args.output)
    layers = json.loads(metadata['quantization'])
    print(f'{args.output}: {metadata["arch"]} W{metadata["w_bits"]}A{metadata["a_bits"]}, {len(layers)} quantized '
          f'layers (weights from {used or "bare state dict"}); full precision: '
          f'{", ".join(json.loads(metadata["full_precision"]))}')


if __name__ == '__main__':
    main()
