"""PAN, the pixel-attention network (Zhao et al., "Efficient Image Super-Resolution Using Pixel Attention",
ECCV 2020 workshops), written from the paper; parameter names follow the authors' released state dicts, so
their DF2K checkpoints (e.g. ``PANx4_DF2K.pth``, 272 k parameters) load as ``network_t: {type: PAN, ...}``.

The paper's three parts:
- trunk: ``conv_first``, ``nb`` SC-PA blocks, ``trunk_conv``, and a residual over the trunk;
- SC-PA block: a 1x1 split into two half-width branches, a plain 3x3 (``k1``) and a pixel-attention
  convolution (``PAConv``: a 3x3 gated by sigmoid(1x1), then a 3x3), concatenated, 1x1 back to ``nf``,
  and a residual; LeakyReLU(0.2) between;
- U-PA reconstruction: per x2 (or one x3) step, nearest-neighbour upsampling, a 3x3 to ``unf`` channels,
  pixel attention, a 3x3; then ``conv_last`` plus the bilinearly upsampled input (global residual).
Images are RGB in [0, 1], no mean shift.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


class PixelAttention(nn.Module):
    """x * sigmoid(conv1x1(x)): one attention weight per pixel and channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """A 3x3 convolution gated by pixel attention computed from the same input, then a 3x3 convolution."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.k2 = nn.Conv2d(channels, channels, 1)
        self.k3 = nn.Conv2d(channels, channels, kernel_size, padding=pad, bias=False)
        self.k4 = nn.Conv2d(channels, channels, kernel_size, padding=pad, bias=False)

    def forward(self, x):
        return self.k4(self.k3(x) * torch.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated block with pixel attention: two half-width branches, fused by a 1x1, plus the input."""

    def __init__(self, nf: int, reduction: int = 2):
        super().__init__()
        width = nf // reduction
        self.conv1_a = nn.Conv2d(nf, width, 1, bias=False)
        self.conv1_b = nn.Conv2d(nf, width, 1, bias=False)
        self.k1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False))
        self.PAConv = PAConv(width)
        self.conv3 = nn.Conv2d(width * reduction, nf, 1, bias=False)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        a = self.lrelu(self.k1(self.lrelu(self.conv1_a(x))))
        b = self.lrelu(self.PAConv(self.lrelu(self.conv1_b(x))))
        return x + self.conv3(torch.cat([a, b], dim=1))


@ARCH_REGISTRY.register()
class PAN(nn.Module):
    """PAN for x2, x3 and x4; the paper's model is ``nf=40, unf=24, nb=16`` (x4: 272 419 parameters)."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, nf: int = 40, unf: int = 24, nb: int = 16,
                 scale: int = 4):
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f'PAN: scale must be 2, 3 or 4 (got {scale!r})')
        self.scale = scale
        self.conv_first = nn.Conv2d(num_in_ch, nf, 3, padding=1)
        self.SCPA_trunk = nn.Sequential(*(SCPA(nf) for _ in range(nb)))
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        # one U-PA step for x2 / x3, two x2 steps for x4
        self.upconv1 = nn.Conv2d(nf, unf, 3, padding=1)
        self.att1 = PixelAttention(unf)
        self.HRconv1 = nn.Conv2d(unf, unf, 3, padding=1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(unf, unf, 3, padding=1)
            self.att2 = PixelAttention(unf)
            self.HRconv2 = nn.Conv2d(unf, unf, 3, padding=1)
        self.conv_last = nn.Conv2d(unf, num_out_ch, 3, padding=1)
        self.lrelu = nn.LeakyReLU(0.2)

    def _upsample_step(self, fea, factor: int, upconv, att, hrconv):
        fea = upconv(F.interpolate(fea, scale_factor=factor, mode='nearest'))
        return self.lrelu(hrconv(self.lrelu(att(fea))))

    def forward(self, x):
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.SCPA_trunk(fea))
        if self.scale == 4:
            fea = self._upsample_step(fea, 2, self.upconv1, self.att1, self.HRconv1)
            fea = self._upsample_step(fea, 2, self.upconv2, self.att2, self.HRconv2)
        else:
            fea = self._upsample_step(fea, self.scale, self.upconv1, self.att1, self.HRconv1)
        base = F.interpolate(x, scale_factor=self.scale, mode='bilinear', align_corners=False)
        return self.conv_last(fea) + base
