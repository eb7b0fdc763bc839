"""``AutoTeacher``: any super-resolution network the ``spandrel`` library recognises, built from its file alone.

    network_t:
      type: AutoTeacher
      path: experiments/pretrained_models/4x_community_model.safetensors
      scale: 4

DUKD only needs the teacher's output image, so the architecture does not matter. The file is read with
dukd's safe reader (``weights_only=True`` / safetensors), its weights are handed to spandrel, which detects
the architecture and its hyper-parameters from the tensor names and shapes. The detected scale and colour
channels are checked against the options. The network pads its input itself when the architecture needs
a multiple / minimum size, and exposes ``window_size`` so KD models pad before calling it as well.
"""
import logging
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY

from ..io.checkpoint import extract_state_dict, read_checkpoint
from ..io.edsr_pytorch_convert import edsr_network_t, is_original_edsr

logger = logging.getLogger('basicsr')


def import_spandrel(what: str = '`type: AutoTeacher`'):
    try:
        import spandrel
    except ImportError as err:  # an optional dependency: only AutoTeacher and spandrel.<Class> networks need it
        raise ImportError(f'{what} needs the spandrel library, dukd\'s `teachers` extra: pip install -e .[teachers] '
                          '(or pip install spandrel).') from err
    return spandrel


def _pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Bottom/right padding of any size: reflect as far as the image allows, replicate for the rest."""
    h, w = x.shape[-2:]
    reflect_h, reflect_w = min(pad_h, h - 1), min(pad_w, w - 1)
    x = F.pad(x, (0, reflect_w, 0, reflect_h), mode='reflect')
    if pad_h > reflect_h or pad_w > reflect_w:
        x = F.pad(x, (0, pad_w - reflect_w, 0, pad_h - reflect_h), mode='replicate')
    return x


def _basicsr_way_around(state, scale: int) -> str:
    """The BasicSR ``network_t`` that fits a checkpoint spandrel cannot build, when the keys say which."""
    conv1 = state.get('body.0.rdb1.conv1.weight')
    if conv1 is None:  # not a BasicSR RRDBNet: no known way around
        return ' The file may be incomplete or a variant spandrel does not support.'
    blocks = len({k.split('.')[1] for k in state if k.startswith('body.') and k.split('.')[1].isdigit()})
    in_ch = state['conv_first.weight'].shape[1] // {1: 16, 2: 4}.get(scale, 1)  # x1 / x2 pixel-unshuffle first
    return (f' It is a BasicSR RRDBNet with growth width {conv1.shape[0]} (spandrel builds RRDBNets of growth '
            f'width 32 only). Use BasicSR\'s own class instead of AutoTeacher: `network_t: {{type: RRDBNet, '
            f'num_in_ch: {in_ch}, num_out_ch: {state["conv_last.weight"].shape[0]}, scale: {scale}, num_feat: '
            f'{conv1.shape[1]}, num_block: {blocks}, num_grow_ch: {conv1.shape[0]}}}` and '
            '`path.pretrain_network_t:` this file.')


@ARCH_REGISTRY.register()
class AutoTeacher(nn.Module):
    """A frozen teacher whose architecture is detected from its checkpoint.

    Args:
        path: the teacher weights (.pth/.pt/.safetensors; BasicSR ``params``/``params_ema`` or a bare state dict).
        scale: the SR scale of the experiment; the detected scale must equal it.
        num_in_ch / num_out_ch: colour channels the experiment feeds / expects (3 for RGB).
        param_key: key of the weights inside the file; ~ to auto-detect.
    """

    loads_own_weights = True  # build_teacher must not load path.pretrain_network_t into it

    def __init__(self, path: str, scale: Optional[int] = None, num_in_ch: int = 3, num_out_ch: int = 3,
                 param_key: Optional[str] = None):
        super().__init__()
        if scale is None:
            raise ValueError('`type: AutoTeacher` needs `scale:` (the SR scale of this experiment) in `network_t` '
                             'so the detected teacher can be checked against it.')
        spandrel = import_spandrel()
        ckpt = read_checkpoint(path, what='AutoTeacher checkpoint (network_t.path)')
        state, used = extract_state_dict(ckpt, param_key, path)
        try:
            descriptor = spandrel.ModelLoader().load_from_state_dict(state)
        except spandrel.UnsupportedModelError as err:
            if is_original_edsr(state):  # spandrel has no EDSR, BasicSR's EDSR loads the file (converted)
                raise ValueError(f'{path} is an original EDSR-PyTorch EDSR, which spandrel does not know. Instead of '
                                 f'AutoTeacher use {edsr_network_t(state)} and `path.pretrain_network_t:` this '
                                 'file; its keys are converted to BasicSR\'s when it is loaded.') from err
            keys = list(state)[:6]
            raise ValueError(
                f'{path}: spandrel {spandrel.__version__} does not recognise this architecture (first keys: {keys}). '
                'If it is a BasicSR architecture, use its `type:` (e.g. EDSR, RCAN, SwinIR) in `network_t` and '
                '`path.pretrain_network_t`; otherwise check that the file is a super-resolution model '
                '(spandrel_extra_arches adds a few more architectures).') from err
        except (RuntimeError, KeyError, ValueError, AssertionError) as err:
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            # torch's load_state_dict puts the reason on the line after 'Error(s) in loading state_dict for X:'
            reason = lines[1] if len(lines) > 1 and lines[0].endswith(':') else (lines[0] if lines else repr(err))
            reason = reason.rstrip('.')
            raise ValueError(f'{path}: spandrel {spandrel.__version__} recognised the weights but could not build '
                             f'the network from them ({reason}).{_basicsr_way_around(state, scale)}') from err
        if not isinstance(descriptor, spandrel.ImageModelDescriptor):
            raise ValueError(f'{path}: {descriptor.architecture.name} is a {type(descriptor).__name__} '
                             '(it needs more than an image, e.g. a mask): it cannot teach super-resolution.')
        name = descriptor.architecture.name
        if descriptor.scale != scale:
            raise ValueError(f'{path}: the detected {name} teacher upscales x{descriptor.scale}, but scale {scale} is '
                             'asked for (`scale:` of the AutoTeacher block; benchmark: --scale). Use a '
                             f'x{scale} teacher or change the scale.')
        if descriptor.input_channels != num_in_ch or descriptor.output_channels != num_out_ch:
            raise ValueError(f'{path}: the detected {name} teacher maps {descriptor.input_channels} -> '
                             f'{descriptor.output_channels} channels, the options expect {num_in_ch} -> '
                             f'{num_out_ch} (num_in_ch / num_out_ch). Colour SR needs an RGB model.')

        self.model = descriptor.model
        self.path = path
        self.scale = scale
        self.architecture = name
        self.tags = list(descriptor.tags or ())  # spandrel's detected settings, e.g. ['64nf', '23nb']
        self.size_requirements = descriptor.size_requirements
        # spandrel wraps the call for a few architectures (e.g. models returning tuples)
        self._call_fn = getattr(descriptor, '_call_fn', None) or (lambda model, image: model(image))
        multiple = descriptor.size_requirements.multiple_of
        if multiple > 1:
            self.window_size = multiple
        n_params = sum(p.numel() for p in self.model.parameters())
        tags = ', '.join(descriptor.tags) if descriptor.tags else 'no tags'
        logger.info(f'AutoTeacher: {path} is {name} x{scale} ({tags}), {n_params / 1e6:.3f}M parameters, '
                    f'param key: {used or "bare state dict"}, input sizes: {descriptor.size_requirements}.')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_w, pad_h = self.size_requirements.get_padding(w, h)
        if pad_h or pad_w:
            out = self._call_fn(self.model, _pad(x, pad_h, pad_w))
            return out[..., :h * self.scale, :w * self.scale]
        # some ports modify their input in place (spandrel's RCAN does `x *= rgb_range`); labels must not
        # change the caller's batch, which the student sees next
        return self._call_fn(self.model, x.clone())
