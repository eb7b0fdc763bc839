"""Any architecture spandrel ships, as a trainable student or a teacher: ``type: spandrel.<Class>``.

    network_g: {type: spandrel.SPAN, num_in_ch: 3, num_out_ch: 3, feature_channels: 48, upscale: 4}
    network_t: {type: spandrel.HAT, upscale: 4, embed_dim: 180, ...}

The efficient-SR designs people deploy (SPAN, SAFMN, PLKSR / RealPLKSR, OmniSR, DITN, SeemoRe, MoSR, ...) and the
strong transformer teachers (HAT, DAT, ATD, DRCT) are trainable PyTorch classes in spandrel, the library most
upscaling front-ends load model files with. ``spandrel.<Class>`` builds spandrel's own class, so its state-dict keys
are spandrel's: an exported student opens in those tools. The names are resolved on first use (spandrel stays an
optional extra, imported only when an option file names one) and live under the ``spandrel.`` prefix, which no
BasicSR or dukd name can take. The option validator checks their keys against the class's constructor.

At build time the weights are handed to spandrel's own loader once: it must detect the architecture and the
hyper-parameters we built (else a file we export would open as another network, which is logged), and its size
requirements become the network's ``window_size`` when the class has none (those with one pad inputs themselves),
so training, tiling and export pad inputs to what the architecture takes.
"""
import inspect
import logging
from typing import Dict

import torch
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY

from .auto_teacher_arch import import_spandrel

logger = logging.getLogger('basicsr')

PREFIX = 'spandrel.'


def spandrel_classes() -> Dict[str, type]:
    """``{'SPAN': SPAN, 'RealPLKSR': RealPLKSR, ...}``: every network class spandrel's architectures export."""
    spandrel = import_spandrel('`type: spandrel.<Class>`')
    classes = {}
    for support in spandrel.MAIN_REGISTRY.architectures():
        module = inspect.getmodule(type(support.architecture))
        for name in getattr(module, '__all__', ()):
            obj = getattr(module, name, None)
            if inspect.isclass(obj) and issubclass(obj, nn.Module):
                classes.setdefault(name, obj)
    return classes


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-9
    return a == b


def detect(net: nn.Module):
    """spandrel's descriptor for ``net``'s own weights (what a front-end builds from a file of them)."""
    spandrel = import_spandrel('`type: spandrel.<Class>`')
    return spandrel.ModelLoader().load_from_state_dict(dict(net.state_dict()))


def build_spandrel_network(cls: type, kwargs: dict) -> nn.Module:
    """``cls(**kwargs)``, checked against spandrel's detection, with the input-size multiple it needs exposed."""
    net = cls(**kwargs)
    name = f'{PREFIX}{cls.__name__}'
    try:
        descriptor = detect(net)
    except Exception as err:  # noqa: BLE001 (any loader failure: the network still trains, files may not open)
        logger.warning(f'{name}: spandrel {import_spandrel("").__version__} does not load this network from its own '
                       f'weights ({str(err).splitlines()[0] if str(err) else type(err).__name__}): it trains, but '
                       'an exported file will not open in spandrel-based tools. Input sizes are not constrained.')
        return net
    theirs = getattr(descriptor.model, 'hyperparameters', {})
    ours = getattr(net, 'hyperparameters', {})
    differ = {k: (v, theirs.get(k)) for k, v in ours.items() if k in theirs and not _same(v, theirs[k])}
    if type(descriptor.model) is not cls:
        logger.warning(f'{name}: spandrel detects files of this network as {descriptor.architecture.name} '
                       f'({type(descriptor.model).__name__}): spandrel-based tools will run another network.')
    elif differ:
        what = ', '.join(f'{k}={b!r} (this network: {a!r})' for k, (a, b) in differ.items())
        logger.warning(f'{name}: spandrel rebuilds a file of this network with {what}, settings it cannot read '
                       'from weights: spandrel-based tools will compute other images from an exported file.')
    req = descriptor.size_requirements
    multiple = max(req.multiple_of, req.minimum)  # minimum is a multiple of multiple_of: padding to it meets both
    if multiple > 1 and not hasattr(net, 'window_size'):  # one of its own (SwinIR, HAT) is kept
        net.window_size = multiple  # read by the KD models, tiling and export (archs/teacher.window_multiple)
    _freeze_unused(net, name, -(-16 // multiple) * multiple)
    return net


def _freeze_unused(net: nn.Module, name: str, size: int) -> None:
    """Freeze the parameters a training step never reaches (SPAN's ``eval_conv``, which it recomputes from its
    branches in eval mode; a few unused gates in FDAT): DDP would wait for their gradients and stop the run.
    Found by one training-mode forward + backward on a small input, leaving RNG, buffers and grads as they were."""
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    try:
        with torch.random.fork_rng(devices=[]):
            out = net.train()(torch.rand(1, conv.in_channels if conv else 3, size, size))
            out.float().mean().backward()
    except Exception as err:  # noqa: BLE001 (an architecture that needs other inputs: nothing is frozen)
        logger.warning(f'{name}: the training-mode probe failed ({str(err).splitlines()[0][:120]}); under DDP set '
                       '`find_unused_parameters: true` if some parameters get no gradient.')
        return
    finally:
        with torch.no_grad():
            for k, v in net.named_buffers():
                v.copy_(buffers[k])
    unused = [(k, p) for k, p in net.named_parameters() if p.requires_grad and p.grad is None]
    net.zero_grad(set_to_none=True)
    for _, p in unused:
        p.requires_grad_(False)
    if unused:
        logger.info(f'{name}: {len(unused)} parameter tensors that training never uses are frozen '
                    f'(e.g. {unused[0][0]}); they stay in the state dict.')


def _builder(cls: type):
    """What ``build_network`` calls for ``spandrel.<Class>``; its signature and hints are the constructor's, so the
    option validator checks ``network_*`` keys like any registered class's."""

    def build(**kwargs):
        for key in set(kwargs) & set(build.refused_keys):
            raise ValueError(f'network `type: {PREFIX}{cls.__name__}`, key {key}: {build.refused_keys[key]}')
        return build_spandrel_network(cls, kwargs)

    init = cls.__init__
    build.__wrapped__ = init  # inspect.signature follows it; typing.get_type_hints resolves in its module
    build.__annotations__ = dict(getattr(inspect.unwrap(init), '__annotations__', {}))
    build.__name__ = build.__qualname__ = cls.__name__
    build.__doc__ = cls.__doc__
    build.spandrel_class = cls
    quantized = (f'{PREFIX}{cls.__name__} is not quantized: quantization-aware students are QuantEDSR, QuantRCAN and '
                 'QuantSwinIR (docs/quantization.md). Train this one in full precision (remove the key), or quantize '
                 'its export with your deployment tool.')
    build.refused_keys = {'w_bits': quantized, 'a_bits': quantized}
    return build


class _LazyArchMap(dict):
    """BasicSR's ARCH_REGISTRY map, which adds every ``spandrel.<Class>`` the first time one is looked up."""

    loaded = False

    def _load(self, name) -> None:
        if isinstance(name, str) and name.startswith(PREFIX) and not self.loaded:
            import_spandrel(f"`type: {name.removesuffix('_basicsr')}`")  # BasicSR also tries <name>_basicsr
            for cls_name, cls in spandrel_classes().items():
                dict.setdefault(self, PREFIX + cls_name, _builder(cls))
            self.loaded = True

    def get(self, name, default=None):
        self._load(name)
        return dict.get(self, name, default)

    def __contains__(self, name):
        self._load(name)
        return dict.__contains__(self, name)

    def __getitem__(self, name):
        self._load(name)
        return dict.__getitem__(self, name)


if not isinstance(ARCH_REGISTRY._obj_map, _LazyArchMap):
    ARCH_REGISTRY._obj_map = _LazyArchMap(ARCH_REGISTRY._obj_map)

__all__ = ['PREFIX', 'build_spandrel_network', 'detect', 'spandrel_classes']
