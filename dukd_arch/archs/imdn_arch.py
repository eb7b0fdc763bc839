"""IMDN, the information multi-distillation network (Hui et al., "Lightweight Image Super-Resolution with
Information Multi-distillation Network", ACM MM 2019), written from the paper; parameter names follow the
authors' released state dicts, so their DIV2K checkpoints (``IMDN_x2.pth`` ... ``IMDN_x4.pth``; x4: 715 176
parameters) load as ``network_t: {type: IMDN, upscale: 4}`` (their ``module.`` prefix is stripped on load).

The paper's parts:
- ``fea_conv`` (3x3), six information multi-distillation blocks (IMDB), the blocks' outputs concatenated and
  fused by a 1x1 (``c``) with an activation, a 3x3 (``LR_conv``), a residual from ``fea_conv``, and a
  sub-pixel upsampler (a 3x3 to ``3 * upscale**2`` channels, pixel shuffle);
- IMDB (progressive refinement): a 3x3 whose output is split into a distilled quarter, kept, and the rest,
  refined by the next 3x3; three times, then a 3x3 to the last quarter. The four quarters are concatenated,
  weighted by contrast-aware channel attention (CCA) and fused by a 1x1, plus the block's input;
- CCA: per channel, the spatial standard deviation plus the mean, through a 1x1 squeeze (ReLU), a 1x1
  excitation and a sigmoid, multiplies the features.
LeakyReLU with slope 0.05 throughout. Images are RGB in [0, 1], no mean shift.
"""
import torch
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


class ContrastChannelAttention(nn.Module):
    """x * sigmoid(excite(relu(squeeze(std(x) + mean(x))))), statistics over each channel's pixels."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.conv_du = nn.Sequential(nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid())

    def forward(self, x):
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class IMDB(nn.Module):
    """Information multi-distillation block: three distill-and-refine steps, CCA, 1x1 fusion, residual."""

    def __init__(self, channels: int, distill_ratio: float = 0.25):
        super().__init__()
        self.distilled = int(channels * distill_ratio)
        self.remaining = channels - self.distilled
        self.c1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.c2 = nn.Conv2d(self.remaining, channels, 3, padding=1)
        self.c3 = nn.Conv2d(self.remaining, channels, 3, padding=1)
        self.c4 = nn.Conv2d(self.remaining, self.distilled, 3, padding=1)
        self.act = nn.LeakyReLU(0.05)
        self.c5 = nn.Conv2d(self.distilled * 4, channels, 1)
        self.cca = ContrastChannelAttention(self.distilled * 4)

    def forward(self, x):
        kept, rest = [], x
        for conv in (self.c1, self.c2, self.c3):
            d, rest = torch.split(self.act(conv(rest)), (self.distilled, self.remaining), dim=1)
            kept.append(d)
        kept.append(self.c4(rest))
        return self.c5(self.cca(torch.cat(kept, dim=1))) + x


@ARCH_REGISTRY.register()
class IMDN(nn.Module):
    """IMDN for any integer ``upscale``; the paper's model is ``num_feat=64, num_block=6``."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 6,
                 upscale: int = 4):
        super().__init__()
        if not (isinstance(upscale, int) and upscale >= 1):
            raise ValueError(f'IMDN: upscale must be a whole number >= 1 (got {upscale!r})')
        self.fea_conv = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.num_block = num_block
        for i in range(1, num_block + 1):  # IMDB1 ... IMDBn: the released state dicts' names
            setattr(self, f'IMDB{i}', IMDB(num_feat))
        self.c = nn.Sequential(nn.Conv2d(num_feat * num_block, num_feat, 1), nn.LeakyReLU(0.05))
        self.LR_conv = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.upsampler = nn.Sequential(nn.Conv2d(num_feat, num_out_ch * upscale ** 2, 3, padding=1),
                                       nn.PixelShuffle(upscale))

    def forward(self, x):
        fea = self.fea_conv(x)
        outs, out = [], fea
        for i in range(1, self.num_block + 1):
            out = getattr(self, f'IMDB{i}')(out)
            outs.append(out)
        return self.upsampler(self.LR_conv(self.c(torch.cat(outs, dim=1))) + fea)
