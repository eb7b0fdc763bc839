"""Export the trained student for use without this package: ONNX and a plain safetensors state dict.

    python -m dukd_arch.export -opt <options.yml> --checkpoint experiments/<name>/models/net_g_latest.pth
                               --out DIR [--param-key params_ema] [--lr-size 32] [--opset 17]

Writes to DIR:
* ``student.onnx``: input ``lr`` (N, C, H, W) in [0, 1], output ``sr``; batch, height and width are
  dynamic when the architecture traces to shape-independent ops (checked by running a second size),
  otherwise the file is re-exported for the ``lr-size`` x ``lr-size`` input only (the report says which).
  Window-attention students (SwinIR) need H and W to be multiples of their window size.
* ``student.safetensors``: the weights (EMA weights when the checkpoint has them), with the
  ``network_g`` options and the scale in its metadata so the network can be rebuilt anywhere.
* ``parity.json``: max |ONNX Runtime (CPU) - PyTorch| for each checked input size.

``--safetensors`` writes only ``student.safetensors`` (no ONNX): with ``network_g`` in its metadata it is
all ``python -m dukd_arch.infer --checkpoint student.safetensors`` needs. The ONNX file carries the scale
and window size in its metadata too, so it also runs on its own. ``--pth`` also writes ``student.pth``, the same
state dict as a bare ``torch.save`` file. Both state dicts carry the architecture's own key names, so the
upscaling front-ends built on spandrel (chaiNNer, ComfyUI, ...) open them when spandrel knows the architecture
(every ``spandrel.<Class>`` student; of BasicSR's: SRVGGNetCompact, SwinIR).
"""
import argparse
import contextlib
import copy
import json
import os
import sys
import warnings
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from basicsr.archs import build_network

from .io.atomic import atomic_save
from .io.safetensors_file import save_safetensors_file
from .io.network import load_student
from .archs.teacher import window_multiple

INPUT, OUTPUT = 'lr', 'sr'


def _onnx_export(net: torch.nn.Module, x: torch.Tensor, path: str, opset: int, dynamic: bool) -> None:
    axes = {INPUT: {0: 'batch', 2: 'height', 3: 'width'}, OUTPUT: {0: 'batch', 2: 'out_height', 3: 'out_width'}}
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated in favour of the torch.export one, which needs onnxscript;
        # the TorchScript one needs nothing beyond onnx and handles every BasicSR SR architecture
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(net, (x, ), path, dynamo=False, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes=axes if dynamic else None, opset_version=opset, do_constant_folding=True)


@contextlib.contextmanager
def _graph_dump_silenced():
    """torch's TorchScript exporter writes the whole graph to the process's stdout (C++) when an op fails to export
    (its log switch is left on); a failed dynamic-shape attempt is expected here, and its fallback reported."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, 'w') as null:
        os.dup2(null.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def onnx_max_abs_diff(net: torch.nn.Module, onnx_path: str, x: torch.Tensor) -> float:
    """max |ONNX Runtime CPU output - PyTorch output| on ``x``."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3  # a failed dynamic-shape probe is handled by the caller, not logged
    session = ort.InferenceSession(onnx_path, options, providers=['CPUExecutionProvider'])
    got = session.run(None, {INPUT: x.numpy()})[0]
    with torch.no_grad():
        want = net(x).numpy()
    if got.shape != want.shape:
        raise ValueError(f'{onnx_path}: ONNX output {got.shape} vs PyTorch {want.shape} for input {tuple(x.shape)}')
    return float(np.abs(got - want).max())


def export_onnx(net: torch.nn.Module, path: str, lr_size: int = 32, in_ch: int = 3, opset: int = 17,
                tolerance: float = 1e-3) -> Dict:
    """Export ``net`` (CPU, eval) to ONNX, dynamic H/W when that gives correct results at a second size.

    Dynamic only when a second input size (other batch, height, width) is as exact as the traced one.
    Returns ``{'dynamic': bool, 'max_abs_diff': {'NxCxHxW': diff, ...}}``; raises when the export itself
    disagrees with PyTorch by more than ``tolerance``.
    """
    import onnx
    multiple = window_multiple(net)
    if lr_size % multiple:
        raise ValueError(f'--lr-size {lr_size} is not a multiple of the network window size {multiple}')
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, in_ch, lr_size, lr_size, generator=g)
    # a different batch, height and width, still a multiple of the window
    other = torch.rand(2, in_ch, lr_size + multiple * max(1, 8 // multiple), lr_size + multiple, generator=g)
    try:
        with _graph_dump_silenced():
            _onnx_export(net, x, path, opset, dynamic=True)
        dynamic = True
    except (torch.onnx.errors.OnnxExporterError, RuntimeError):  # an op whose size argument depends on the
        dynamic = False  # input size (SAFMN's adaptive pooling to H / 8) exports only for a fixed size
    if dynamic:
        diffs = {'x'.join(map(str, x.shape)): onnx_max_abs_diff(net, path, x)}
        try:
            other_diff = onnx_max_abs_diff(net, path, other)
            # a second size must be as exact as the traced one: tracing can bake a size-dependent constant
            # (e.g. a shifted-window attention mask) into the graph, which runs but gives slightly wrong images
            dynamic = other_diff <= max(10 * max(diffs.values()), 1e-5)
            diffs['x'.join(map(str, other.shape))] = other_diff
        except Exception:  # onnxruntime rejects shapes baked in by tracing: a fixed-size export is what works
            dynamic = False
    if not dynamic:
        try:
            with _graph_dump_silenced():
                _onnx_export(net, x, path, opset, dynamic=False)
        except (torch.onnx.errors.OnnxExporterError, RuntimeError) as err:
            raise ValueError(f'{type(net).__name__} does not export to ONNX with torch {torch.__version__} '
                             f'({str(err).splitlines()[0][:200]}); export with --safetensors (and --pth) instead: '
                             'those files open in dukd_arch.infer and in spandrel-based tools.') from err
        diffs = {'x'.join(map(str, x.shape)): onnx_max_abs_diff(net, path, x)}
    onnx.checker.check_model(onnx.load(path))
    worst = max(diffs.values())
    if worst > tolerance:
        raise ValueError(f'{path}: ONNX output differs from PyTorch by {worst:.3g} (> {tolerance}); do not use it')
    return {'dynamic': dynamic, 'max_abs_diff': diffs}


def save_safetensors(net: torch.nn.Module, path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """``net``'s weights with ``metadata`` and a SHA-256 of the tensors (checked on load), umask mode."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    save_safetensors_file(state, path, metadata)


def deploy(net: torch.nn.Module, in_ch: int = 3) -> None:
    """One eval-mode forward: networks that re-parameterise their branches into one convolution in eval mode
    (SPAN) then hold the deployed weights in their state dict, not those of their last training step."""
    size = max(16, window_multiple(net))
    with torch.no_grad():
        net.eval()(torch.zeros(1, in_ch, size, size))


def student_metadata(opt: dict, net: torch.nn.Module, source: str = '') -> Dict[str, str]:
    """What ``dukd_arch.infer`` needs to rebuild and run the student from one exported file."""
    return {'network_g': json.dumps(dict(opt['network_g'])), 'scale': str(opt['scale']), 'source': source,
            'window_multiple': str(window_multiple(net)), 'input': 'RGB in [0, 1], NCHW'}


def _add_onnx_metadata(path: str, metadata: Dict[str, str]) -> None:
    import onnx
    model = onnx.load(path)
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, path)


def export_student(opt: dict, net_g: torch.nn.Module, out_dir: str, lr_size: int = 32, opset: int = 17,
                   source: str = '', onnx: bool = True, pth: bool = False) -> Tuple[Dict, Optional[str]]:
    """Write student.safetensors, (``pth``) student.pth and (``onnx``) student.onnx and parity.json for a student
    holding its weights."""
    os.makedirs(out_dir, exist_ok=True)
    net = copy.deepcopy(net_g).cpu().eval()
    net_opt = dict(opt['network_g'])
    metadata = student_metadata(opt, net, source)
    deploy(net, net_opt.get('num_in_ch', 3))
    save_safetensors(net, os.path.join(out_dir, 'student.safetensors'), metadata)
    if pth:
        atomic_save(net.state_dict(), os.path.join(out_dir, 'student.pth'))
    if not onnx:
        return {'source': source}, None
    onnx_path = os.path.join(out_dir, 'student.onnx')
    report = export_onnx(net, onnx_path, lr_size, net_opt.get('num_in_ch', 3), opset)
    _add_onnx_metadata(onnx_path, metadata)
    report.update({'onnx': onnx_path, 'window_multiple': window_multiple(net), 'source': source})
    with open(os.path.join(out_dir, 'parity.json'), 'w') as f:
        json.dump(report, f, indent=2)
    return report, onnx_path


def main(argv=None) -> int:
    from .options import load_checked_options
    parser = argparse.ArgumentParser(prog='python -m dukd_arch.export', description=__doc__.split('\n\n')[0])
    parser.add_argument('-opt', required=True, help='the options file the student was trained with')
    parser.add_argument('--checkpoint', required=True, help='net_g_*.pth (params_ema preferred)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--param-key', default=None, help='key of the weights (default: params_ema, then params)')
    parser.add_argument('--lr-size', type=int, default=32, help='input size used for tracing and the parity check')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--safetensors', action='store_true',
                        help='write only student.safetensors (network_g in its metadata), no ONNX')
    parser.add_argument('--pth', action='store_true',
                        help='also write student.pth (the bare state dict, for tools that open .pth files)')
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f'--out {args.out} is a file; give the output folder (student.safetensors, .onnx go there)')
    if args.lr_size < 1:
        parser.error(f'--lr-size {args.lr_size}: the traced input size, 1 or more (default 32)')
    try:  # the opsets this torch writes (a private module: a torch without it gets a loose range)
        from torch.onnx._constants import ONNX_MAX_OPSET as highest, ONNX_MIN_OPSET as lowest
    except ImportError:
        lowest, highest = 7, 99
    if not lowest <= args.opset <= highest:
        parser.error(f'--opset {args.opset}: this torch exports opsets {lowest}-{highest} (default 17)')
    try:
        opt = load_checked_options(args.opt)  # the whole file, as train.py checks it
        net_g = build_network(copy.deepcopy(dict(opt['network_g']))).eval()
        used = load_student(net_g, args.checkpoint, args.param_key)
        report, onnx_path = export_student(opt, net_g, args.out, args.lr_size, args.opset,
                                           source=f'{os.path.basename(args.checkpoint)}:{used or "bare"}',
                                           onnx=not args.safetensors, pth=args.pth)
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'weights: {args.checkpoint} ({used or "bare state dict"})')
    if onnx_path is None:
        print(f"wrote {os.path.join(args.out, 'student.safetensors')} (network_g in its metadata)"
              + (f" and {os.path.join(args.out, 'student.pth')}" if args.pth else ''))
        return 0
    print(f"wrote {onnx_path} ({'dynamic batch/height/width' if report['dynamic'] else 'fixed input size'}), "
          f"{os.path.join(args.out, 'student.safetensors')}, {os.path.join(args.out, 'parity.json')}")
    for shape, diff in report['max_abs_diff'].items():
        print(f'  parity (ONNX Runtime CPU vs PyTorch), input {shape}: max abs diff {diff:.3g}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
