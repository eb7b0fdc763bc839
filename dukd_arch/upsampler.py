"""Super-resolve images with a trained student: the network, window padding, tiling and self-ensemble in one
object, like Real-ESRGAN's ``RealESRGANer``; ``python -m dukd_arch.infer`` is the command over it.

    import cv2
    from dukd_arch import StudentUpsampler
    up = StudentUpsampler('student.safetensors', tile=256)          # or net_g_latest.pth + options=...
    sr = up.enhance(cv2.imread('photo.png', cv2.IMREAD_UNCHANGED))   # same dtype and channel layout back

Checkpoints: a training ``.pth`` (``params_ema`` preferred, then ``params``) with the options that hold
``network_g``; a ``.safetensors`` written by ``python -m dukd_arch.export`` (``network_g`` in its metadata);
an ``.onnx`` file (run with onnxruntime). Tensors are read through ``io/checkpoint.py`` (no pickle).

Tiling: the image is cut into ``tile`` x ``tile`` LR tiles, each run with ``tile_pad`` extra LR pixels of
context on every side, and only the tile's own output is kept. When ``tile_pad`` is at least the network's
receptive-field radius (``receptive_field``, measured), every kept output pixel saw exactly the input it
sees untiled, so tiled and untiled outputs agree up to float rounding.
"""
import copy
import json
import os
from glob import glob
from typing import Callable, Optional, Tuple, Union

import cv2
import numpy as np
import torch

from basicsr.archs import build_network

from .archs.auto_teacher_arch import AutoTeacher
from .devices import command_device
from .ops import DIHEDRAL_TRANSFORMS, inverse_transform, pad_to_multiple, tiled_forward, transform
from .options import check_network
from .options.file import load_options
from .archs.quant_export import FORMAT as QUANTIZED_FORMAT
from .io.checkpoint import safetensors_metadata
from .io.network import load_student as _load_weights
from .archs.teacher import window_multiple

ALPHA_MODES = ('network', 'bicubic')


def options_beside(checkpoint: str) -> Optional[str]:
    """The options file BasicSR copied into ``experiments/<name>/`` when ``checkpoint`` is ``.../models/*.pth``."""
    folder = os.path.dirname(os.path.abspath(checkpoint))
    if os.path.basename(folder) != 'models':
        return None
    found = sorted(glob(os.path.join(os.path.dirname(folder), '*.yml')))
    return found[0] if len(found) == 1 else None


class UnknownNetworkError(ValueError):
    """The checkpoint does not name its network and no options name it either."""


def student_network_options(checkpoint: str, options: Union[None, str, dict] = None) -> Tuple[dict, str]:
    """``(network_g, where it came from)``: the checkpoint's own metadata first, then ``options`` (a dict or an
    options file), then the options file beside a training checkpoint."""
    if checkpoint.endswith('.safetensors'):
        meta = safetensors_metadata(checkpoint)
        if meta.get('format') == QUANTIZED_FORMAT:  # integer weights and scales, not a network's state dict
            raise ValueError(f'{checkpoint} is the integer export of a quantized student (`python -m '
                             'dukd_arch.quant_export`), for deployment runtimes; run the training checkpoint '
                             '(with -opt), or the file of `python -m dukd_arch.export --safetensors`.')
        if meta.get('network_g'):
            net_opt = json.loads(meta['network_g'])
            check_network(net_opt, f'{checkpoint} metadata')
            if options is not None:
                _same_network(net_opt, options, checkpoint)
            return net_opt, f'{checkpoint} metadata'
    source = options
    if source is None:
        source = options_beside(checkpoint)
    if source is None:
        raise UnknownNetworkError(f'{checkpoint} does not say which network it holds: pass -opt OPTIONS.yml (the options file '
                         'the student was trained with), or ship the file written by '
                         '`python -m dukd_arch.export -opt OPTIONS.yml --checkpoint CKPT --out DIR --safetensors`.')
    opt = load_options(source) if isinstance(source, str) else source
    if not isinstance(opt, dict) or not opt.get('network_g'):
        raise ValueError(f'{source if isinstance(source, str) else "the options"} has no `network_g` section; '
                         'pass the options file the student was trained with.')
    source = source if isinstance(source, str) else 'the options'
    check_network(opt['network_g'], source)  # a bad argument named with the accepted ones, not a TypeError
    return dict(opt['network_g']), source


def _same_network(net_opt: dict, options: Union[str, dict], checkpoint: str) -> None:
    """Options given beside a file that names its own network must agree with it (the file's weights win): a
    silently ignored -opt / --network would leave the user believing another network ran."""
    opt = load_options(options) if isinstance(options, str) else options
    given = (opt or {}).get('network_g') if isinstance(opt, dict) else None
    if not given:
        return
    given = json.loads(json.dumps(dict(given)))
    differ = sorted(k for k in set(given) & set(net_opt) if given[k] != net_opt[k])
    if differ:
        where = options if isinstance(options, str) else 'the given network options'
        raise ValueError(f'{checkpoint} names its own network, which differs from {where} in '
                         + ', '.join(f'{k} ({net_opt[k]!r} in the file, {given[k]!r} given)' for k in differ)
                         + ': its weights are for the network it names. Drop -opt / --network, or use the checkpoint '
                         'those options belong to.')


def load_student(checkpoint: str, options: Union[None, str, dict] = None, param_key: Optional[str] = None,
                 device: Union[str, torch.device] = 'cpu') -> torch.nn.Module:
    """A trained student, built and loaded, in eval mode: ``dukd_arch.load_student('student.safetensors')``.

    ``network_g`` comes from the file's metadata (``python -m dukd_arch.export``) or from ``options``; the
    weights are ``params_ema`` when the checkpoint has them, else ``params`` (or ``param_key``)."""
    net_opt, _ = student_network_options(checkpoint, options)
    net = build_network(copy.deepcopy(net_opt))
    _load_weights(net, checkpoint, param_key)
    return net.eval().to(device)


class _OnnxStudent:
    """An exported ``.onnx`` student behind the same call as a network: (1, C, h, w) -> (1, C, sh, sw)."""

    def __init__(self, path: str, device: torch.device):
        import onnxruntime as ort
        if not os.path.isfile(path):
            raise FileNotFoundError(f'ONNX file not found: {path!r}')
        providers = ['CPUExecutionProvider']
        if device.type == 'cuda':
            if 'CUDAExecutionProvider' not in ort.get_available_providers():
                raise ValueError('--device cuda with an .onnx file needs onnxruntime-gpu (CUDAExecutionProvider); '
                                 'use --device cpu or the .safetensors export.')
            providers.insert(0, 'CUDAExecutionProvider')
        try:
            self.session = ort.InferenceSession(path, providers=providers)
        except Exception as err:  # onnxruntime raises its own error types
            raise ValueError(f'{path} is not a readable ONNX model ({str(err).splitlines()[0]}).') from err
        inp = self.session.get_inputs()[0]
        self.input_name, shape = inp.name, inp.shape
        self.in_ch = shape[1] if isinstance(shape[1], int) else 3
        # an export that did not trace to size-independent ops only runs at its traced size
        self.fixed_size = (shape[2], shape[3]) if all(isinstance(d, int) for d in shape[2:]) else None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map or {})

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out)


class StudentUpsampler:
    """Holds a trained student and super-resolves whole images: padding, tiling, self-ensemble, any bit depth.

    ``tile=0`` runs the whole image at once; ``tile_pad=None`` uses the measured receptive field.
    ``half`` (fp16) needs a CUDA device. ``alpha``: the alpha channel of RGBA images is upscaled on its own,
    by the network (as a grey image) or by bicubic resizing.
    """

    def __init__(self, checkpoint: str, options: Union[None, str, dict] = None, param_key: Optional[str] = None,
                 tile: int = 0, tile_pad: Optional[int] = None, device: Union[None, str, torch.device] = None,
                 half: bool = False, self_ensemble: bool = False, alpha: str = 'network'):
        self.device = command_device(device)
        if half and self.device.type != 'cuda':
            raise ValueError('--half runs fp16 on CUDA only (CPU fp16 convolutions are slower, not faster); '
                             'drop --half or use --device cuda.')
        if tile < 0 or (tile_pad is not None and tile_pad < 0):
            raise ValueError(f'--tile and --tile-pad must be >= 0 (got {tile}, {tile_pad})')
        if alpha not in ALPHA_MODES:
            raise ValueError(f'alpha must be one of {ALPHA_MODES}, got {alpha!r}')
        self.checkpoint, self.half, self.self_ensemble, self.alpha = checkpoint, half, self_ensemble, alpha
        self.fixed_size = None
        if checkpoint.endswith('.onnx'):
            if half:
                raise ValueError('--half applies to PyTorch checkpoints; an .onnx file runs in the precision it '
                                 'was exported in.')
            self.net = _OnnxStudent(checkpoint, self.device)
            self.in_ch, self.fixed_size = self.net.in_ch, self.net.fixed_size
            self.window = int(self.net.metadata.get('window_multiple', 1))
            self.description = f'ONNX {os.path.basename(checkpoint)}' + (
                f' (fixed input {self.fixed_size[0]}x{self.fixed_size[1]})' if self.fixed_size else '')
        else:
            net_opt, source = student_network_options(checkpoint, options)
            self.net = build_network(copy.deepcopy(net_opt))
            if isinstance(self.net, AutoTeacher):  # it read and checked its own file (spandrel)
                used = 'spandrel-detected'
            else:
                used = _load_weights(self.net, checkpoint, param_key)
            self.net.eval().to(self.device)
            if half:
                self.net.half()
            self.in_ch = int(net_opt.get('num_in_ch', 3))
            self.window = window_multiple(self.net)
            self.description = (f"{net_opt.get('type')} from {os.path.basename(checkpoint)} "
                                f"({used or 'bare state dict'}; network_g from {source})")
        self.scale = self._measure_scale()
        self._receptive_field = 'unmeasured'
        self.tile = tile
        if self.fixed_size is not None:
            if tile_pad is None:  # as much context as the field needs, if the fixed input leaves room for it
                rf = self.receptive_field
                tile_pad = rf if rf is not None and min(self.fixed_size) > 2 * rf else 0
            self.tile_pad = tile_pad
            self.tile = min(self.fixed_size) - 2 * self.tile_pad
            if self.tile <= 0:
                raise ValueError(f'{checkpoint} only takes {self.fixed_size[0]}x{self.fixed_size[1]} inputs, no room '
                                 f'for --tile-pad {self.tile_pad}; use a smaller --tile-pad or the .safetensors '
                                 'export.')
        else:
            self.tile_pad = tile_pad
            if tile and tile_pad is None:
                rf = self.receptive_field
                self.tile_pad = rf if rf is not None else 32

    # ------------------------------------------------------------------------------------ the network
    @torch.no_grad()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """One network call on a (1, C, h, w) float tensor in [0, 1] on any device; returns float32."""
        h, w = x.shape[-2:]
        x = x.to(self.device, torch.float16 if self.half else torch.float32)
        if self.fixed_size is not None:
            fh, fw = self.fixed_size
            if h > fh or w > fw:
                raise ValueError(f'a {h}x{w} input does not fit the fixed {fh}x{fw} ONNX input')
            x = torch.nn.functional.pad(x, (0, fw - w, 0, fh - h), mode='replicate')
        elif self.window > 1:
            x, _ = pad_to_multiple(x, self.window)
        out = self.net(x)
        return out[..., :h * self.scale, :w * self.scale].float()

    @torch.no_grad()
    def _measure_scale(self) -> int:
        """The real upscaling factor, from one call on a small input (a multiple of the window)."""
        size = self.fixed_size or (-(-16 // self.window) * self.window, ) * 2
        x = torch.rand(1, self.in_ch, *size).to(self.device, torch.float16 if self.half else torch.float32)
        return self.net(x).shape[-1] // size[1]

    @property
    def receptive_field(self) -> Optional[int]:
        """Measured radius (LR pixels) of the input region one output pixel depends on; None when it spans
        the whole probe (global operations such as channel attention, or a field wider than 128 px)."""
        if self._receptive_field == 'unmeasured':
            limit = min(self.fixed_size) if self.fixed_size is not None else 257
            self._receptive_field = measure_receptive_field(self._forward, self.in_ch, self.scale, limit)
        return self._receptive_field

    # --------------------------------------------------------------------------------------- tensors
    def _tiled(self, x: torch.Tensor) -> torch.Tensor:
        # each tile's output comes back to the CPU, so device memory stays bounded by one tile
        return tiled_forward(lambda part: self._forward(part).cpu(), x, self.scale, self.tile, self.tile_pad or 0,
                             window=self.fixed_size)

    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(1, C, h, w) float in [0, 1] (RGB) -> (1, C, sh, sw) float32 on the CPU, tiled / ensembled as set."""
        if not self.self_ensemble:
            return self._tiled(x).clamp_(0, 1)
        acc = None
        for ops in DIHEDRAL_TRANSFORMS:
            out = inverse_transform(self._tiled(transform(x, ops)), ops)
            acc = out if acc is None else acc.add_(out)
        return acc.div_(len(DIHEDRAL_TRANSFORMS)).clamp_(0, 1)

    # ---------------------------------------------------------------------------------------- images
    def _upscale_planes(self, planes: np.ndarray) -> np.ndarray:
        """(h, w, C) float32 RGB in [0, 1] -> (sh, sw, C'); grey planes are fed as RGB and averaged back."""
        grey = planes.shape[2] == 1
        if grey and self.in_ch == 3:
            planes = np.repeat(planes, 3, axis=2)
        elif planes.shape[2] != self.in_ch:
            raise ValueError(f'the student takes {self.in_ch}-channel input, the image has {planes.shape[2]} '
                             'channels')
        x = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None]
        out = self.upscale_tensor(x)[0].numpy().transpose(1, 2, 0)
        return out.mean(axis=2, keepdims=True) if grey and out.shape[2] == 3 else out

    @staticmethod
    def _to_samples(planes: np.ndarray, peak: float, dtype) -> np.ndarray:
        """[0, 1] floats -> integer samples, in place on the float buffer (the output dominates CPU memory)."""
        planes *= peak
        np.clip(planes, 0, peak, out=planes)
        return np.rint(planes, out=planes).astype(dtype)

    def enhance(self, img: np.ndarray) -> np.ndarray:
        """An image as OpenCV reads it (``cv2.IMREAD_UNCHANGED``: BGR / BGRA / grey, uint8 or uint16) upscaled,
        in the same dtype and channel layout."""
        if img.dtype not in (np.uint8, np.uint16):
            raise ValueError(f'{img.dtype} samples are not supported: 8- or 16-bit images only')
        peak = float(np.iinfo(img.dtype).max)
        squeeze = img.ndim == 2
        planes = img[..., None] if squeeze else img
        if planes.shape[2] not in (1, 3, 4):
            raise ValueError(f'{planes.shape[2]}-channel images are not supported (grey, BGR or BGRA only)')
        planes = planes.astype(np.float32) / peak
        alpha = planes[..., 3:] if planes.shape[2] == 4 else None
        colour = planes[..., :3][..., ::-1] if planes.shape[2] >= 3 else planes  # the networks learnt RGB
        out = self._to_samples(self._upscale_planes(colour), peak, img.dtype)
        if out.shape[2] == 3:
            out = out[..., ::-1]
        if alpha is not None:
            if self.alpha == 'network':
                up_alpha = self._upscale_planes(alpha)
            else:
                h, w = alpha.shape[:2]
                up_alpha = cv2.resize(alpha, (w * self.scale, h * self.scale), interpolation=cv2.INTER_CUBIC)[..., None]
            out = np.concatenate([out, self._to_samples(up_alpha, peak, img.dtype)], axis=2)
        out = np.ascontiguousarray(out)
        return out[..., 0] if squeeze else out


@torch.no_grad()
def measure_receptive_field(run: Callable[[torch.Tensor], torch.Tensor], in_ch: int, scale: int,
                            max_size: int = 257, tol: float = 1e-6) -> Optional[int]:
    """Radius r (LR pixels, Chebyshev) such that changing one input pixel changes no output pixel outside the
    (2r + 1)-pixel LR square around it; None when the change reaches the edge of a ``max_size`` probe.

    Changing the centre pixel of a random probe and watching which output pixels move measures the field of
    any network, PyTorch or ONNX, including what convolution arithmetic alone would not show (global pooling).
    """
    g = torch.Generator().manual_seed(0)
    size = 33
    while True:
        size = min(size, max_size)
        c = size // 2
        x = torch.rand(1, in_ch, size, size, generator=g)
        base = run(x)
        changed = torch.zeros(size, size, dtype=torch.bool)
        for value in (0.0, 1.0):
            x2 = x.clone()
            x2[..., c, c] = value
            moved = (run(x2) - base).abs().amax(dim=1)[0] > tol
            cells = moved.reshape(size, scale, size, scale).any(dim=3).any(dim=1)
            changed |= cells.cpu()
        rows = torch.nonzero(changed.any(dim=1)).flatten()
        cols = torch.nonzero(changed.any(dim=0)).flatten()
        if rows.numel() == 0:
            return 0
        radius = int(max(c - rows.min(), rows.max() - c, c - cols.min(), cols.max() - c))
        if radius < c:
            return radius
        if size >= max_size:
            return None
        size = 2 * size - 1
