"""Which spandrel classes train as DUKD students, reload in spandrel as built, and export to ONNX (and how).

    OMP_NUM_THREADS=1 python scripts/spandrel_survey.py [SPAN SAFMN ...]     # one line per class

Small configurations of each class (x4), so the survey runs on a CPU in minutes; the rows of the table in
docs/spandrel_students.md come from it. "reload": spandrel's loader rebuilds the class with the settings it was
built with (else build_spandrel_network logs what differs); "train": a forward + backward on a zoom-out-sized
input padded to the network's window; "onnx": dukd_arch.export.export_onnx at LR 32.
"""
import argparse
import io
import logging
import sys
import tempfile
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import torch  # noqa: E402

import dukd_arch  # noqa: E402,F401
from basicsr.archs import build_network  # noqa: E402
from dukd_arch.export import deploy, export_onnx  # noqa: E402
from dukd_arch.ops import forward_padded  # noqa: E402
from dukd_arch.archs.teacher import window_multiple  # noqa: E402

S = 4
CONFIGS = {
    'SPAN': dict(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=S),
    'SAFMN': dict(dim=16, n_blocks=2, upscaling_factor=S),
    'PLKSR': dict(dim=16, n_blocks=2, kernel_size=9, upscaling_factor=S),
    'RealPLKSR': dict(dim=16, n_blocks=2, kernel_size=9, upscaling_factor=S),
    'OmniSR': dict(num_feat=16, window_size=8, up_scale=S),
    'DITN': dict(dim=24, ITL_blocks=1, SAL_blocks=1, upscale=S),
    'SeemoRe': dict(scale=S, embedding_dim=16, num_layers=2, num_experts=2),
    'MoSR': dict(n_block=2, dim=16, upscale=S),
    'MoESR': dict(dim=16, n_blocks=2, n_block=2, scale=S),
    'Compact': dict(num_feat=16, num_conv=4, upscale=S),
    'ESRGAN': dict(num_filters=16, num_blocks=1, scale=S),
    'FDAT': dict(embed_dim=24, num_groups=1, depth_per_group=1, num_heads=2, window_size=8, scale=S),
    'SwinIR': dict(embed_dim=12, depths=[2], num_heads=[2], window_size=8, upscale=S, upsampler='pixelshuffle'),
    'HAT': dict(embed_dim=12, depths=[2], num_heads=[2], window_size=8, upscale=S, squeeze_factor=6, num_feat=16),
    'DRCT': dict(embed_dim=12, depths=[2], num_heads=[2], window_size=8, upscale=S, upsampler='pixelshuffle'),
    'ATD': dict(embed_dim=12, depths=[2], num_heads=[2], window_size=8, upscale=S, upsampler='pixelshuffle'),
}


def survey(name: str, folder: str) -> dict:
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger('basicsr').addHandler(handler)
    try:
        torch.manual_seed(0)
        net = build_network({'type': f'spandrel.{name}', **CONFIGS[name]})
    finally:
        logging.getLogger('basicsr').removeHandler(handler)
    row = {'class': name, 'params': sum(p.numel() for p in net.parameters()), 'window': window_multiple(net),
           'reload': log.getvalue().strip()[:160] or 'as built'}
    out = forward_padded(net.train(), torch.rand(2, 3, 12, 12), window_multiple(net), S)
    out.mean().backward()
    row['train'] = 'ok'
    deploy(net)
    try:
        report = export_onnx(net, osp.join(folder, f'{name}.onnx'), lr_size=32)
        row['onnx'] = 'dynamic' if report['dynamic'] else 'fixed size'
    except ValueError as err:
        row['onnx'] = f'does not export: {str(err)[:160]}'
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('names', nargs='*', metavar='CLASS',
                        help=f'spandrel classes to survey (default: all: {", ".join(CONFIGS)})')
    names = parser.parse_args(argv).names or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f'no configuration for {", ".join(unknown)}; choose from {", ".join(CONFIGS)}')
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            print(survey(name, folder), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
