"""Capture intermediate features of an unmodified network by module name (forward hooks).

A tap records a module's output *at the moment the module returns*, cloned: BasicSR's EDSR and
RCAN run ``res = self.conv_after_body(self.body(x)); res += x``, so without the clone the stored
tensor would silently become the body output *plus* the skip. With the clone, tapping
``conv_after_body`` gives the body output before the long skip; tapping ``body`` gives the output
of the last residual block (before ``conv_after_body``). Tap the module whose return value is the
feature you want.

SwinIR stages (``layers.{i}``, RSTB) return tokens (B, L, C). They are reshaped to (B, C, H, W)
with the ``x_size`` the stage was called with, i.e. the real (window-padded) input size; for
other token outputs the size of the input the whole network received is used.

Hooks exist only inside ``FeatureTaps.capture()`` and record only the network's first forward
there: validation, EMA copies and forwards outside a capture run untouched, and later forwards inside
one (DUKD's zoom-out) store nothing.
"""
import contextlib
import difflib
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn


class UnknownLayerError(KeyError):
    """A layer name that is not a module of the network (a KeyError whose message prints unquoted)."""

    def __str__(self):
        return str(self.args[0])


def _bare(net: nn.Module) -> nn.Module:
    """The network inside a (Distributed)DataParallel wrapper; hooks must go on the real modules."""
    while isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        net = net.module
    return net


def _nearby_names(net: nn.Module, name: str, limit: int = 12) -> List[str]:
    """Valid module names close to ``name``: close spellings, then the children of its deepest valid prefix."""
    names = [n for n, _ in net.named_modules() if n]
    close = difflib.get_close_matches(name, names, n=limit // 2, cutoff=0.5)
    parts = name.split('.')
    modules = dict(net.named_modules())
    prefix = ''
    for i in range(len(parts) - 1, 0, -1):
        candidate = '.'.join(parts[:i])
        if candidate in modules:
            prefix = candidate
            break
    parent = modules[prefix]
    children = [f'{prefix}.{c}' if prefix else c for c, _ in parent.named_children()]
    if len(children) > limit:  # long Sequentials: show both ends
        children = children[:limit // 2 - 1] + ['...'] + children[-(limit // 2 - 1):]
    seen, out = set(), []
    for n in close + children:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out[:limit + 1]


def resolve_module(net: nn.Module, name: str, role: str = 'network') -> nn.Module:
    """``net``'s submodule called ``name`` (as in ``named_modules()``); a clear error with nearby names if absent."""
    net = _bare(net)
    modules = dict(net.named_modules())
    if name in modules and name != '':
        return modules[name]
    nearby = _nearby_names(net, name)
    raise UnknownLayerError(f"{role} {net.__class__.__name__} has no module named '{name}'. Nearby valid names: "
                   f"{', '.join(nearby) or '(none)'}. Fix the `layers:` map in `train.feature_kd_opt` "
                   f"(names as printed by `[n for n, _ in net.named_modules()]`).")


def tokens_to_map(tokens: torch.Tensor, size: Tuple[int, int], name: str = '') -> torch.Tensor:
    """(B, L, C) tokens -> (B, C, H, W) for L == H * W."""
    b, length, c = tokens.shape
    h, w = size
    if length != h * w:
        raise ValueError(f"tapped module '{name}' returned {length} tokens, which is not {h}x{w} = {h * w} "
                         f'(the input size it ran at); tap a module whose tokens cover the full input grid')
    return tokens.transpose(1, 2).reshape(b, c, h, w)


def _as_size(value) -> Optional[Tuple[int, int]]:
    if isinstance(value, (tuple, list, torch.Size)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return None


class FeatureTaps:
    """Records the outputs of named modules of one network during ``capture()``.

    Only the network's *first* forward inside a capture block is recorded (in DUKD the first student
    and teacher calls are the batched ones that start with the real LR patch); later forwards in the
    block, e.g. on zoom-out inputs, run untouched. ``batch_limit`` keeps only the first samples of
    each feature (the real pair of a batch concatenated with upcycled inputs).

    Example::

        taps = FeatureTaps(net_g, ['body.7', 'body.15'], role='student')
        with taps.capture():
            out = net_g(x)
        feats = taps.features(crop=(h, w))   # list of (B, C, H, W), in the order of the names
    """

    def __init__(self, net: nn.Module, names: Sequence[str], role: str = 'network'):
        self.net = _bare(net)
        self.names = list(names)
        self.role = role
        if len(set(self.names)) != len(self.names):
            raise ValueError(f'{role} layer names repeat: {self.names}; list each module once')
        self.modules = [resolve_module(self.net, n, role) for n in self.names]
        self._store: Dict[str, torch.Tensor] = OrderedDict()
        self._calls = 0
        self.batch_limit: Optional[int] = None
        self.input: Optional[torch.Tensor] = None  # what the network received in the recorded forward
        self.output: Optional[torch.Tensor] = None  # and what it returned

    @property
    def captured(self) -> bool:
        return self._calls > 0

    def _hook(self, name: str):

        def hook(module, args, output):
            if self._calls != 1:
                return
            if isinstance(output, (tuple, list)):
                output = output[0]
            if not torch.is_tensor(output):
                raise TypeError(f"{self.role} module '{name}' returned {type(output).__name__}, not a tensor")
            if name in self._store:
                raise RuntimeError(f"{self.role} module '{name}' ran twice in one forward; its feature is ambiguous. "
                                   'Tap a module that runs once (e.g. a block of the body, not a shared activation).')
            feat = output if self.batch_limit is None else output[:self.batch_limit]
            feat = feat.clone()  # later in-place ops (EDSR/RCAN `res += x`) must not change what we saw
            if feat.dim() == 3:
                size = _as_size(args[1]) if len(args) > 1 else None
                feat = tokens_to_map(feat, size or tuple(self.input.shape[-2:]), name)
            if feat.dim() != 4:
                raise ValueError(f"{self.role} module '{name}' returned a {tuple(output.shape)} tensor; feature "
                                 'distillation needs (B, C, H, W) maps or (B, H*W, C) tokens')
            self._store[name] = feat

        return hook

    def _record_input(self, module, args):
        self._calls += 1
        if self._calls == 1:
            self.input = args[0]

    def _record_output(self, module, args, output):
        if self._calls == 1 and self.output is None:
            self.output = output

    @contextlib.contextmanager
    def capture(self, batch_limit: Optional[int] = None):
        """Hooks live only inside this block; the previous capture's features are dropped on entry."""
        self.clear()
        self.batch_limit = batch_limit
        handles = [self.net.register_forward_pre_hook(self._record_input),
                   self.net.register_forward_hook(self._record_output)]
        handles += [m.register_forward_hook(self._hook(n)) for n, m in zip(self.names, self.modules)]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def features(self, crop: Optional[Tuple[int, int]] = None) -> List[torch.Tensor]:
        """Captured maps in the order of ``names``.

        ``crop=(h, w)``: the unpadded input size; maps computed on a window-padded input are cut back
        to the real content (padding is bottom/right), scaled for maps at other resolutions.
        """
        if not self.captured:
            raise RuntimeError(f'the {self.role} did not run inside the capture block')
        missing = [n for n in self.names if n not in self._store]
        if missing:
            raise RuntimeError(f'{self.role} modules {missing} did not run in the captured forward; '
                               'tap modules that are on the forward path')
        feats = [self._store[n] for n in self.names]
        ih, iw = self.input.shape[-2:]
        if crop is None or (tuple(crop) == (ih, iw)):
            return feats
        out = []
        for f in feats:
            fh, fw = f.shape[-2:]
            out.append(f[..., :math.ceil(crop[0] * fh / ih), :math.ceil(crop[1] * fw / iw)])
        return out

    def feature_dict(self, crop: Optional[Tuple[int, int]] = None) -> Dict[str, torch.Tensor]:
        return OrderedDict(zip(self.names, self.features(crop)))

    def clear(self):
        self._store.clear()
        self._calls = 0
        self.input = self.output = None


@contextlib.contextmanager
def replace_output(module: nn.Module, value: torch.Tensor):
    """Within the block, ``module`` returns ``value`` instead of its own output (CrossKD: student features
    through the teacher's later layers). A copy is returned so that in-place ops after it cannot touch
    ``value``; token outputs (B, L, C) get ``value`` (B, C, H, W) flattened back to tokens."""

    def hook(mod, args, output):
        replacement = value
        if output.dim() == 3 and replacement.dim() == 4:
            replacement = replacement.flatten(2).transpose(1, 2)
        if replacement.shape != output.shape:
            raise ValueError(f'cannot replace a {tuple(output.shape)} output by a {tuple(value.shape)} feature: '
                             'CrossKD needs student and teacher features of the same shape (equal widths)')
        return replacement.clone()

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def probe_feature_shapes(net: nn.Module, names: Sequence[str], size: int = 16, role: str = 'network',
                         device=None) -> List[Tuple[int, ...]]:
    """(C, H, W) of each tapped feature on a 1x3x``size``x``size`` input (padded up to the window size)."""
    bare = _bare(net)
    multiple = getattr(bare, 'window_size', 1)
    multiple = int(multiple[0] if isinstance(multiple, (tuple, list)) else multiple)
    size = max(size, multiple)
    size += (multiple - size % multiple) % multiple
    if device is None:
        param = next(bare.parameters(), None)
        device = param.device if param is not None else torch.device('cpu')
    taps = FeatureTaps(bare, names, role)
    was_training = bare.training
    bare.eval()
    try:
        with taps.capture():
            bare(torch.rand(1, 3, size, size, device=device))
        return [tuple(f.shape[1:]) for f in taps.features()]
    finally:
        bare.train(was_training)


# ---------------------------------------------------------------------------------------------------------
# Default layer maps

def stage_names(net: nn.Module) -> List[str]:
    """The network's sequence of main stages, whose outputs feature KD pairs up by default.

    BasicSR EDSR (residual blocks) and RCAN (residual groups): ``body.{i}``; SwinIR (RSTB stages):
    ``layers.{i}``. Other architectures need an explicit ``layers:`` map.
    """
    bare = _bare(net)
    layers = getattr(bare, 'layers', None)
    if isinstance(layers, nn.ModuleList) and len(layers) > 0:
        return [f'layers.{i}' for i in range(len(layers))]
    body = getattr(bare, 'body', None)
    if isinstance(body, nn.Sequential) and len(body) > 0:
        return [f'body.{i}' for i in range(len(body))]
    raise ValueError(f'no default feature layer map for {bare.__class__.__name__} (it has neither a `layers` '
                     'ModuleList like SwinIR nor a `body` Sequential like EDSR/RCAN). Set '
                     '`train.feature_kd_opt.layers: {student_module: teacher_module, ...}`.')


def default_layer_map(student: nn.Module, teacher: nn.Module, num_pairs: int = 4) -> 'OrderedDict[str, str]':
    """Pair the ends of ``num_pairs`` equal slices of the student's stages with the teacher stage at the same
    relative depth: ceil(n * k / num_pairs) - 1 for k = 1..num_pairs.

    Published pairs (reference section 4): EDSR 32 -> 32 blocks: body.{7,15,23,31} -> same;
    RCAN 10 -> 10 groups: body.{2,4,7,9} -> same; SwinIR 6 -> 4 RSTB:
    layers.{0,1,2,3} (student) -> layers.{1,2,4,5} (teacher).
    """
    s_names, t_names = stage_names(student), stage_names(teacher)
    k = min(num_pairs, len(s_names))
    pairs = OrderedDict()
    for i in range(1, k + 1):
        s = s_names[math.ceil(len(s_names) * i / k) - 1]
        t = t_names[math.ceil(len(t_names) * i / k) - 1]
        pairs[s] = t
    return pairs


def parse_layer_map(layers, student: nn.Module, teacher: nn.Module, num_pairs: int = 4) -> List[Tuple[str, str]]:
    """Options' ``layers:`` -> list of (student_module, teacher_module); ``None``/``default`` -> the default map.

    Accepts a mapping ``{student: teacher}`` or a list of ``[student, teacher]`` pairs (a list may pair one
    module with several). Every name is resolved now, so a typo fails at start-up with nearby valid names.
    """
    if layers is None or layers == 'default':
        pairs = list(default_layer_map(student, teacher, num_pairs).items())
    elif isinstance(layers, dict):
        pairs = [(str(k), str(v)) for k, v in layers.items()]
    elif isinstance(layers, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in layers):
        pairs = [(str(s), str(t)) for s, t in layers]
    else:
        raise ValueError(f'`layers` must be a mapping {{student_module: teacher_module}}, a list of '
                         f'[student_module, teacher_module] pairs, or `default`; got {layers!r}')
    if not pairs:
        raise ValueError('`layers` is empty: name at least one {student_module: teacher_module} pair')
    if len(set(pairs)) != len(pairs):
        raise ValueError(f'`layers` lists a pair twice: {pairs}')
    for s, t in pairs:
        resolve_module(student, s, 'student')
        resolve_module(teacher, t, 'teacher')
    return pairs
