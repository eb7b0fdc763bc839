"""Real-ESRGAN's second-order degradation, synthesised on whatever device the images live on.

This is the orchestration of BasicSR's ``RealESRNetModel.feed_data`` (blur -> resize -> noise -> JPEG,
twice, then [resize back + sinc] and JPEG in random order, then 8-bit rounding), rebuilt so that

* nothing calls ``.cuda()``: the module follows ``.to(device)`` and the input tensors;
* every random draw comes from torch's RNG (BasicSR mixes ``random``, ``numpy`` and torch), so one
  ``seed`` (or ``torch.Generator``) makes a call reproducible without touching the global RNG state:
  the CPU generator and the input device's generator are seeded and restored, no other device's
  (``seeded``; ``torch.manual_seed`` would reseed every accelerator);
* bad options fail at construction with the key's name.

The kernels come from BasicSR's ``RealESRGANDataset`` (``kernel1``, ``kernel2``, ``sinc_kernel``), and
the blur, noise and JPEG operators are BasicSR's own (``filter2D``, ``random_add_*_noise_pt``, ``DiffJPEG``);
unsharp masking is BasicSR's, computed separably (``USMSharp``).
"""
import random
from contextlib import contextmanager
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import basicsr.utils.img_process_util as _img_process_util  # filter2D looked up at call time: compat patches it
from basicsr.data.degradations import (circular_lowpass_kernel, random_add_gaussian_noise_pt,
                                       random_add_poisson_noise_pt, random_mixed_kernels)
from basicsr.utils.diffjpeg import DiffJPEG

RESIZE_DIRECTIONS = ('up', 'down', 'keep')
RESIZE_MODES = ('area', 'bilinear', 'bicubic')

# Real-ESRGAN's published settings (options/train_realesrnet_x4plus.yml), model-side keys only; the
# kernel settings belong to the dataset section (RealESRGANDataset).
REAL_ESRGAN_DEGRADATION = {
    'resize_prob': [0.2, 0.7, 0.1],  # up, down, keep
    'resize_range': [0.15, 1.5],
    'gaussian_noise_prob': 0.5,
    'noise_range': [1, 30],
    'poisson_scale_range': [0.05, 3],
    'gray_noise_prob': 0.4,
    'jpeg_range': [30, 95],
    'second_blur_prob': 0.8,
    'resize_prob2': [0.3, 0.4, 0.3],
    'resize_range2': [0.3, 1.2],
    'gaussian_noise_prob2': 0.5,
    'noise_range2': [1, 25],
    'poisson_scale_range2': [0.05, 2.5],
    'gray_noise_prob2': 0.4,
    'jpeg_range2': [30, 95],
}
_KERNEL_TYPES = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
# ... and the dataset-side kernel settings (RealESRGANDataset keys), for data made outside a loader.
REAL_ESRGAN_KERNELS = {
    'kernel_list': _KERNEL_TYPES,
    'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob': 0.1,
    'blur_sigma': [0.2, 3],
    'betag_range': [0.5, 4],
    'betap_range': [1, 2],
    'kernel_list2': _KERNEL_TYPES,
    'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob2': 0.1,
    'blur_sigma2': [0.2, 1.5],
    'betag_range2': [0.5, 4],
    'betap_range2': [1, 2],
    'final_sinc_prob': 0.8,
}
_PROBABILITIES = ('gaussian_noise_prob', 'gray_noise_prob', 'second_blur_prob', 'gaussian_noise_prob2',
                  'gray_noise_prob2')
_RANGES = ('resize_range', 'noise_range', 'poisson_scale_range', 'jpeg_range', 'resize_range2', 'noise_range2',
           'poisson_scale_range2', 'jpeg_range2')


def filter2d(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """BasicSR's ``filter2D`` on a contiguous input (it calls ``.view``; DiffJPEG returns channels-last on CPU)."""
    return _img_process_util.filter2D(img.contiguous(), kernel)


def _check_options(opt: Dict) -> Dict:
    missing = [k for k in REAL_ESRGAN_DEGRADATION if k not in opt]
    if missing:
        raise KeyError(f'Real-world degradation options missing: {missing}. Add them at the top level of the '
                       'options file (Real-ESRGAN defaults: dukd_arch.data.degradation.REAL_ESRGAN_DEGRADATION).')
    cfg = {k: opt[k] for k in REAL_ESRGAN_DEGRADATION}
    for key in ('resize_prob', 'resize_prob2'):
        probs = [float(p) for p in cfg[key]]
        if len(probs) != 3 or min(probs) < 0 or sum(probs) <= 0:
            raise ValueError(f'{key} must be three non-negative weights for (up, down, keep), got {cfg[key]}')
        cfg[key] = probs
    for key in _PROBABILITIES:
        if not 0 <= float(cfg[key]) <= 1:
            raise ValueError(f'{key} must be a probability in [0, 1], got {cfg[key]}')
        cfg[key] = float(cfg[key])
    for key in _RANGES:
        lo_hi = [float(v) for v in cfg[key]]
        if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1] or lo_hi[0] < 0:
            raise ValueError(f'{key} must be [low, high] with 0 <= low <= high, got {cfg[key]}')
        cfg[key] = lo_hi
    for key in ('resize_range', 'resize_range2'):
        if not cfg[key][0] > 0 or not cfg[key][0] <= 1 <= cfg[key][1]:
            raise ValueError(f'{key} must satisfy 0 < low <= 1 <= high (down- and up-scaling factors), '
                             f'got {cfg[key]}')
    for key in ('jpeg_range', 'jpeg_range2'):
        if not 1 <= cfg[key][0] <= cfg[key][1] <= 100:
            raise ValueError(f'{key} must be JPEG qualities within [1, 100], got {cfg[key]}')
    return cfg


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * torch.rand(()).item()


def _choice(weights: Sequence[float]) -> int:
    return int(torch.multinomial(torch.tensor(weights, dtype=torch.float64), 1).item())


class _SingleGeneratorBackend:
    """A device module with one RNG and no per-device generators (e.g. ``torch.mps``), as a generator."""

    def __init__(self, module):
        self.module = module

    def get_state(self):
        return self.module.get_rng_state()

    def set_state(self, state):
        self.module.set_rng_state(state)

    def manual_seed(self, seed):
        self.module.manual_seed(seed)


def device_generator(device: torch.device):
    """The default generator that draws for tensors on ``device`` (``torch.default_generator`` on the CPU).

    One device's only: ``torch.manual_seed`` would reseed every accelerator of the process.
    """
    device = torch.device(device)
    if device.type == 'cpu':
        return torch.default_generator
    module = torch.get_device_module(device.type)
    if hasattr(module, 'init'):
        module.init()  # per-device generators exist once the backend is initialised
    generators = getattr(module, 'default_generators', None)
    if not generators:
        return _SingleGeneratorBackend(module)
    # a bare device type means the current device (BasicSR's models: torch.device(type) after set_device)
    index = device.index if device.index is not None else module.current_device()
    return generators[index]


@contextmanager
def seeded(seed: Optional[int], device: torch.device):
    """Torch's CPU generator and ``device``'s generator start from ``seed`` inside; both are restored after.

    No other generator is written (every other device keeps its stream), so a seeded call leaves the
    training process's random state exactly as it found it. ``seed=None`` does nothing (the caller's
    streams are used as they are).
    """
    if seed is None:
        yield
        return
    device = torch.device(device)
    generators = [torch.default_generator]
    if device.type not in ('cpu', 'meta'):
        generators.append(device_generator(device))
    states = [g.get_state() for g in generators]
    try:
        for g in generators:
            g.manual_seed(int(seed))
        yield
    finally:
        for g, state in zip(generators, states):
            g.set_state(state)


def seed_from(generator: Optional[torch.Generator], seed: Optional[int]) -> Optional[int]:
    """One integer seed from either argument (a generator is advanced by one draw)."""
    if generator is not None and seed is not None:
        raise ValueError('Pass either seed or generator, not both.')
    if generator is not None:
        return int(torch.randint(0, 2**62, (1, ), generator=generator).item())
    return seed


KERNEL_RANGE = [2 * v + 1 for v in range(3, 11)]  # RealESRGANDataset: odd sizes 7..21, padded to 21
KERNEL_KEYS = ('kernel_list', 'kernel_prob', 'sinc_prob', 'blur_sigma', 'betag_range', 'betap_range', 'kernel_list2',
               'kernel_prob2', 'sinc_prob2', 'blur_sigma2', 'betag_range2', 'betap_range2', 'final_sinc_prob')


def sample_kernels(opt: Dict) -> Dict[str, torch.Tensor]:
    """``kernel1``, ``kernel2``, ``sinc_kernel`` (21 x 21) drawn exactly as ``RealESRGANDataset`` draws them.

    For data made outside a training loader (the fixed validation set); uses ``random`` and ``numpy``'s
    global RNGs like the dataset does, so seed those first.
    """
    missing = [k for k in KERNEL_KEYS if k not in opt]
    if missing:
        raise KeyError(f'kernel options missing: {missing} (the RealESRGANDataset keys of the train dataset)')

    def blur_kernel(suffix):
        size = random.choice(KERNEL_RANGE)
        if np.random.uniform() < opt['sinc_prob' + suffix]:
            omega_c = np.random.uniform(np.pi / 3, np.pi) if size < 13 else np.random.uniform(np.pi / 5, np.pi)
            kernel = circular_lowpass_kernel(omega_c, size, pad_to=False)
        else:
            sigma = opt['blur_sigma' + suffix]
            kernel = random_mixed_kernels(opt['kernel_list' + suffix], opt['kernel_prob' + suffix], size, sigma, sigma,
                                          [-np.pi, np.pi], opt['betag_range' + suffix], opt['betap_range' + suffix],
                                          noise_range=None)
        pad = (21 - size) // 2
        return torch.FloatTensor(np.pad(kernel, ((pad, pad), (pad, pad))))

    kernel1, kernel2 = blur_kernel(''), blur_kernel('2')
    if np.random.uniform() < opt['final_sinc_prob']:
        size = random.choice(KERNEL_RANGE)
        sinc = torch.FloatTensor(circular_lowpass_kernel(np.random.uniform(np.pi / 3, np.pi), size, pad_to=21))
    else:  # a unit pulse: no filtering
        sinc = torch.zeros(21, 21)
        sinc[10, 10] = 1
    return {'kernel1': kernel1, 'kernel2': kernel2, 'sinc_kernel': sinc}


class SecondOrderDegradation(nn.Module):
    """Real-ESRGAN's second-order degradation model as a device-agnostic module.

    Args:
        opt: options holding the keys of ``REAL_ESRGAN_DEGRADATION`` (BasicSR keeps them at the top level).
        scale: the SR scale; the output is ``(H // scale, W // scale)``.

    Call with ``(gt, kernel1, kernel2, sinc_kernel)`` (kernels ``(B, k, k)`` with odd ``k``, as the dataset
    yields them) and optionally ``seed`` or ``generator``; returns the LR in [0, 1], rounded to 8 bits.
    Under a seed the result depends on nothing else (global RNG untouched).
    """

    def __init__(self, opt: Dict, scale: int):
        super().__init__()
        self.cfg = _check_options(opt)
        if int(scale) < 1:
            raise ValueError(f'scale must be a positive integer, got {scale}')
        self.scale = int(scale)
        self.jpeger = DiffJPEG(differentiable=False)

    def extra_repr(self) -> str:
        return f'scale={self.scale}'

    def _jpeg(self, out: torch.Tensor, quality_range) -> torch.Tensor:
        quality = torch.empty(out.size(0)).uniform_(*quality_range).to(out.device)
        out = torch.clamp(out, 0, 1)  # Real-ESRGAN: unclamped inputs give unpleasant JPEG artefacts
        return self.jpeger(out, quality=quality)

    def _noise(self, out: torch.Tensor, suffix: str) -> torch.Tensor:
        gray_prob = self.cfg['gray_noise_prob' + suffix]
        if torch.rand(()).item() < self.cfg['gaussian_noise_prob' + suffix]:
            return random_add_gaussian_noise_pt(out, sigma_range=self.cfg['noise_range' + suffix], clip=True,
                                                rounds=False, gray_prob=gray_prob)
        return random_add_poisson_noise_pt(out, scale_range=self.cfg['poisson_scale_range' + suffix],
                                           gray_prob=gray_prob, clip=True, rounds=False)

    def _resize_factor(self, suffix: str) -> float:
        low, high = self.cfg['resize_range' + suffix]
        direction = RESIZE_DIRECTIONS[_choice(self.cfg['resize_prob' + suffix])]
        if direction == 'up':
            return _uniform(1, high)
        if direction == 'down':
            return _uniform(low, 1)
        return 1.0

    @staticmethod
    def _mode() -> str:
        return RESIZE_MODES[int(torch.randint(len(RESIZE_MODES), ()).item())]

    @staticmethod
    def _check_inputs(gt, kernels, scale):
        if gt.dim() != 4 or gt.size(1) != 3:
            raise ValueError(f'gt must be (B, 3, H, W), got {tuple(gt.shape)}')
        b, _, h, w = gt.shape
        for name, k in kernels.items():
            if k.dim() != 3 or k.size(0) not in (1, b) or k.size(-1) != k.size(-2) or k.size(-1) % 2 == 0:
                raise ValueError(f'{name} must be (B, k, k) or (1, k, k) with odd k, got {tuple(k.shape)} for '
                                 f'a batch of {b} (RealESRGANDataset yields 21x21 kernels)')

    def min_input_size(self, scale: Optional[int] = None, kernel_size: int = 21) -> int:
        """Smallest GT side this pipeline can degrade: every blur reflect-pads by ``kernel_size // 2``."""
        scale = self.scale if scale is None else int(scale)
        pad = kernel_size // 2
        low = min(self.cfg['resize_range'][0], 1.0)
        side = 1
        while (int(side * low) <= pad or side // scale <= pad or int(side / scale * self.cfg['resize_range2'][0]) < 1
               or side < pad + 1):
            side += 1
        return side

    @torch.no_grad()
    def forward(self, gt: torch.Tensor, kernel1: torch.Tensor, kernel2: torch.Tensor, sinc_kernel: torch.Tensor,
                seed: Optional[int] = None, generator: Optional[torch.Generator] = None,
                scale: Optional[int] = None, first_order: bool = True) -> torch.Tensor:
        scale = self.scale if scale is None else int(scale)
        self._check_inputs(gt, {'kernel1': kernel1, 'kernel2': kernel2, 'sinc_kernel': sinc_kernel}, scale)
        k = max(kernel1.size(-1), kernel2.size(-1), sinc_kernel.size(-1))
        smallest = self.min_input_size(scale, k)
        if min(gt.shape[-2:]) < smallest:
            raise ValueError(f'gt of {gt.shape[-2]}x{gt.shape[-1]} is too small to degrade at scale {scale} with '
                             f'{k}x{k} kernels and resize_range {self.cfg["resize_range"]}: need at least {smallest} '
                             'px a side (RealESRGANDataset feeds 400 px).')
        device = gt.device
        kernel1, kernel2, sinc_kernel = (k.to(device=device, dtype=gt.dtype) for k in (kernel1, kernel2, sinc_kernel))
        ori_h, ori_w = gt.shape[-2:]
        with seeded(seed_from(generator, seed), device):
            out = gt
            if first_order:  # blur, random resize, noise, JPEG
                out = filter2d(out, kernel1)
                out = F.interpolate(out, scale_factor=self._resize_factor(''), mode=self._mode())
                out = self._noise(out, '')
                out = self._jpeg(out, self.cfg['jpeg_range'])
            # ----- second order: optional blur, resize around the target size, noise -----
            if torch.rand(()).item() < self.cfg['second_blur_prob']:
                out = filter2d(out, kernel2)
            factor = self._resize_factor('2')
            size = (max(1, int(ori_h / scale * factor)), max(1, int(ori_w / scale * factor)))
            out = F.interpolate(out, size=size, mode=self._mode())
            out = self._noise(out, '2')
            # ----- [resize back + sinc] and JPEG, in random order (other orders give twisted lines) -----
            final = (ori_h // scale, ori_w // scale)
            if torch.rand(()).item() < 0.5:
                out = filter2d(F.interpolate(out, size=final, mode=self._mode()), sinc_kernel)
                out = self._jpeg(out, self.cfg['jpeg_range2'])
            else:
                out = self._jpeg(out, self.cfg['jpeg_range2'])
                out = filter2d(F.interpolate(out, size=final, mode=self._mode()), sinc_kernel)
        return (torch.clamp((out * 255.0).round(), 0, 255) / 255.).contiguous()

    @torch.no_grad()
    def degrade_like_lr(self, tiles: torch.Tensor, kernel1: torch.Tensor, kernel2: torch.Tensor,
                        sinc_kernel: torch.Tensor, seed: Optional[int] = None,
                        generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """LR-sized tiles degraded with the training LR's strength (DUKD's zoom-in inputs).

        Each tile is read as the LR-grid view of an HR image: upscaled ``scale`` times (bicubic) and put
        through the pipeline at ``scale``. Every operator then acts at the same size relative to the tile
        as it does relative to a training LR (kernel widths, resize ratios, noise averaged by the final
        downscale, JPEG blocks); degrading the GT at its own size instead (``scale=1``) blurs tiles far
        more than the LR relative to their size (docs/realworld.md, "Where the zoom-in inputs come from").
        Tiles below the pipeline's smallest input are reflect-padded first and cut back after. Returns
        tensors of the tiles' size and device.
        """
        self._check_inputs(tiles, {'kernel1': kernel1, 'kernel2': kernel2, 'sinc_kernel': sinc_kernel}, self.scale)
        k = max(kernel1.size(-1), kernel2.size(-1), sinc_kernel.size(-1))
        smallest = -(-self.min_input_size(self.scale, k) // self.scale)
        h, w = tiles.shape[-2:]
        # tiles smaller than the pipeline's reflect padding allows are mirrored out, degraded, cut back
        pad_h, pad_w = (max(0, -(-(smallest - n) // 2)) for n in (h, w))
        if pad_h >= h or pad_w >= w:
            least = next(n for n in range(1, smallest + 1) if -(-(smallest - n) // 2) < n)
            raise ValueError(f'zoom-in tiles of {h}x{w} are too small to degrade like the LR (x{self.scale} '
                             f'pseudo-HR through {k}x{k} kernels, resize_range {self.cfg["resize_range"]}): need LR '
                             f'patches of at least {least} px, i.e. gt_size >= {least * self.scale}; or set '
                             'upcycling.zoom_in_source: clean')
        if pad_h or pad_w:
            tiles = F.pad(tiles, (pad_w, pad_w, pad_h, pad_h), mode='reflect')
        up = F.interpolate(tiles, scale_factor=self.scale, mode='bicubic', align_corners=False).clamp(0, 1)
        out = self(up, kernel1, kernel2, sinc_kernel, seed=seed, generator=generator)
        return out[..., pad_h:pad_h + h, pad_w:pad_w + w].contiguous()


class USMSharp(nn.Module):
    """BasicSR's unsharp masking (``basicsr.utils.USMSharp``) with the Gaussian applied as two 1-D passes.

    Same radius, sigma, weight, threshold and reflect padding; equal to BasicSR's up to float rounding
    (which can flip the hard threshold mask at a pixel: differences up to ~1e-3 there), but about
    ``radius / 2`` times cheaper (BasicSR convolves a dense 51 x 51 kernel: seconds per 400 x 400 batch
    on a CPU).
    """

    def __init__(self, radius: int = 50, sigma: float = 0):
        super().__init__()
        if radius % 2 == 0:
            radius += 1
        self.radius = radius
        kernel = torch.from_numpy(cv2.getGaussianKernel(radius, sigma)).float().view(-1)
        self.register_buffer('kernel', kernel)

    def blur(self, img: torch.Tensor) -> torch.Tensor:
        b, c, h, w = img.shape
        r = self.radius // 2
        k = self.kernel.to(img.dtype)
        x = F.pad(img.reshape(b * c, 1, h, w), (r, r, r, r), mode='reflect')
        x = F.conv2d(x, k.view(1, 1, -1, 1))
        x = F.conv2d(x, k.view(1, 1, 1, -1))
        return x.view(b, c, h, w)

    @torch.no_grad()
    def forward(self, img: torch.Tensor, weight: float = 0.5, threshold: float = 10) -> torch.Tensor:
        img = img.contiguous()
        residual = img - self.blur(img)
        mask = (torch.abs(residual) * 255 > threshold).to(img.dtype)
        soft_mask = self.blur(mask)
        sharp = torch.clip(img + weight * residual, 0, 1)
        return soft_mask * sharp + (1 - soft_mask) * img


def paired_random_crop(gts: Sequence[torch.Tensor], lq: torch.Tensor, gt_size: int,
                       scale: int) -> Tuple[list, torch.Tensor]:
    """The same random ``gt_size`` crop of every tensor in ``gts`` and the matching crop of ``lq`` (torch RNG)."""
    lq_size = gt_size // scale
    if gt_size % scale:
        raise ValueError(f'gt_size {gt_size} must be a multiple of the scale {scale}')
    h_lq, w_lq = lq.shape[-2:]
    for gt in gts:
        if gt.shape[-2:] != (h_lq * scale, w_lq * scale):
            raise ValueError(f'gt {tuple(gt.shape[-2:])} is not scale {scale} x lq {(h_lq, w_lq)}')
    if h_lq < lq_size or w_lq < lq_size:
        raise ValueError(f'LR of {h_lq}x{w_lq} is smaller than the patch {lq_size}x{lq_size}: lower gt_size '
                         f'({gt_size}) or feed larger GT images')
    top = int(torch.randint(h_lq - lq_size + 1, ()).item())
    left = int(torch.randint(w_lq - lq_size + 1, ()).item())
    lq = lq[..., top:top + lq_size, left:left + lq_size]
    gts = [gt[..., top * scale:(top + lq_size) * scale, left * scale:(left + lq_size) * scale] for gt in gts]
    return gts, lq


class TrainingPairQueue:
    """Real-ESRGAN's training-pair pool: mixes degradations drawn for different batches into one batch.

    A whole batch shares one resize factor and mode, so batches lack diversity. The pool keeps ``size``
    samples; until it is full each batch is stored and returned unchanged; afterwards the pool is shuffled,
    its first ``B`` samples are returned and replaced by the incoming batch. Any number of tensors travel
    together (``lq``, ``gt``, kernels, ...); storage lives on the first batch's device.
    """

    def __init__(self, size: int):
        if int(size) < 1:
            raise ValueError(f'queue_size must be a positive integer, got {size}')
        self.size = int(size)
        self.pool = None
        self.ptr = 0

    def __len__(self) -> int:
        return self.ptr

    @torch.no_grad()
    def __call__(self, *batch: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        b = batch[0].size(0)
        if any(t.size(0) != b for t in batch):
            raise ValueError(f'all tensors must share the batch size, got {[t.size(0) for t in batch]}')
        if self.pool is None:
            if self.size % b:
                raise ValueError(f'queue_size {self.size} must be divisible by the batch size {b} '
                                 '(Real-ESRGAN: 180 with batch 12)')
            self.pool = [t.new_zeros((self.size, *t.shape[1:])) for t in batch]
        elif [tuple(p.shape[1:]) for p in self.pool] != [tuple(t.shape[1:]) for t in batch]:
            raise ValueError('queued tensors changed shape: '
                             f'{[tuple(p.shape[1:]) for p in self.pool]} -> {[tuple(t.shape[1:]) for t in batch]}')
        if self.ptr < self.size:  # filling: store, hand the batch back as it is
            for p, t in zip(self.pool, batch):
                p[self.ptr:self.ptr + b] = t
            self.ptr += b
            return tuple(batch)
        idx = torch.randperm(self.size).to(self.pool[0].device)
        self.pool = [p[idx] for p in self.pool]
        out = tuple(p[:b].clone() for p in self.pool)
        for p, t in zip(self.pool, batch):
            p[:b] = t
        return out


__all__ = [
    'REAL_ESRGAN_DEGRADATION', 'REAL_ESRGAN_KERNELS', 'KERNEL_KEYS', 'SecondOrderDegradation', 'TrainingPairQueue',
    'USMSharp', 'paired_random_crop', 'filter2d', 'sample_kernels', 'seeded', 'seed_from', 'device_generator'
]
