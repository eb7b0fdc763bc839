"""Ship the trained reference teacher: safetensors (fp16 when that changes PSNR by < 0.005 dB), SHA-256, model card.

    python scripts/ship_teacher.py        # after options/gain/train_teacher.yml has finished

Reads experiments/gain_reference_teacher/models/net_g_latest.pth (EMA weights), scores fp32 and fp16 on the gain
study's validation and test photos, writes dukd_arch/weights/reference_teacher_x4.{safetensors,md} and pins the
file's SHA-256 in dukd_arch/io/shipped.py (loading checks it).
"""
import argparse
import glob
import json
import os
import re
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import yaml  # noqa: E402

import dukd_arch  # noqa: E402,F401
import dukd_arch.io.shipped as shipped  # noqa: E402
from basicsr.archs import build_network  # noqa: E402
from dukd_arch.model_card import count_parameters, evaluate  # noqa: E402
from dukd_arch.demo.pipeline import bicubic_baseline  # noqa: E402
from dukd_arch.demo.runner import validation_curve  # noqa: E402
from dukd_arch.export import save_safetensors  # noqa: E402
from dukd_arch.io.network import load_weights  # noqa: E402

OPT = 'options/gain/train_teacher.yml'
NAME = 'reference_teacher_x4'


def paired_opt(root):
    return {'name': osp.basename(root), 'type': 'PairedImageDataset', 'phase': 'val', 'scale': 4,
            'dataroot_gt': osp.join(root, 'HR'), 'dataroot_lq': osp.join(root, 'LR_bicubic', 'X4'),
            'io_backend': {'type': 'disk'}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--experiment', default='experiments/gain_reference_teacher')
    p.add_argument('--data-root', default='datasets/gain')
    args = p.parse_args(argv)
    os.chdir(ROOT)
    with open(OPT) as f:
        opt = yaml.safe_load(f)
    net = build_network(dict(opt['network_g'])).eval()
    load_weights(net, osp.join(args.experiment, 'models', 'net_g_latest.pth'), 'params_ema', option='network_g')
    half = build_network(dict(opt['network_g'])).eval()
    half.load_state_dict({k: v.half().float() for k, v in net.state_dict().items()})

    scores = {}
    for split in ('val', 'test'):
        root = osp.join(args.data_root, split)
        res = evaluate({'fp32': net, 'fp16': half}, paired_opt(root), 4)
        bic = bicubic_baseline(root, 4, osp.join('experiments', '_ship_teacher_bicubic', split))
        scores[split] = {'fp32': res['fp32'], 'fp16': res['fp16'], 'bicubic': {'psnr': bic['psnr'], 'ssim': bic['ssim']}}
    change = max(abs(scores[s]['fp16']['psnr'] - scores[s]['fp32']['psnr']) for s in scores)
    precision = 'fp16' if change < 0.005 else 'fp32'
    out = osp.join(shipped.WEIGHTS_DIR, f'{NAME}.safetensors')
    to_save = half.half() if precision == 'fp16' else net
    save_safetensors(to_save, out, metadata={'network_g': json.dumps(opt['network_g']), 'scale': '4',
                                             'trained_with': OPT, 'precision': precision})
    os.chmod(out, 0o644)
    digest = shipped.sha256_file(out)

    init = shipped.__file__  # the pinned hashes live in dukd_arch/io/shipped.py
    with open(init) as f:
        src = f.read()
    src = re.sub(rf"'{NAME}\.safetensors': [^,]+,", f"'{NAME}.safetensors': '{digest}',", src)
    with open(init, 'w') as f:
        f.write(src)

    logs = sorted(glob.glob(osp.join(args.experiment, 'train_*.log')), key=osp.getmtime)
    curve = {}
    for log in logs:
        curve.update(dict(validation_curve(log)))
    curve = sorted(curve.items())
    total = opt['train']['total_iter']
    at80 = [v for it, v in curve if it <= 0.8 * total][-1]
    gain = curve[-1][1] - at80
    card = f"""# Reference teacher, x4 (`dukd:{NAME}.safetensors`)

The teacher of the gain study ([docs/gain_protocol.md](../../docs/gain_protocol.md)) and of `make demo`.

| | |
|---|---|
| network | `{json.dumps(opt['network_g'])}` (Real-ESRGAN's compact network) |
| parameters | {count_parameters(net):,} |
| file | `{NAME}.safetensors`, {precision} ({osp.getsize(out):,} bytes; fp16 vs fp32 PSNR change {change:.4f} dB) |
| SHA-256 | `{digest}` (checked on every load) |
| trained with | `python train.py -opt {OPT} --auto_resume` ({total} iterations, batch 16, LR patch 24; EMA weights) |
| training data | the demo's six scikit-image photos + six Debian `mate-backgrounds` nature photos (245 sub-images; `python scripts/fetch_photos.py && python benchmarks/bench_gain.py data`) |
| convergence | validation PSNR gain over the last 20 % of iterations: {gain:+.4f} dB (rule: < 0.01 dB) |

| photos (x4, Y, border 4) | bicubic PSNR / SSIM | teacher PSNR / SSIM |
|---|---|---|
| validation (RainDrops, TwoWings) | {scores['val']['bicubic']['psnr']:.3f} / {scores['val']['bicubic']['ssim']:.4f} | {scores['val'][precision]['psnr']:.3f} / {scores['val'][precision]['ssim']:.4f} |
| held-out test (Dune, LadyBird, Wood, YellowFlower) | {scores['test']['bicubic']['psnr']:.3f} / {scores['test']['bicubic']['ssim']:.4f} | {scores['test'][precision]['psnr']:.3f} / {scores['test'][precision]['ssim']:.4f} |

Validation curve (iteration: PSNR dB): {', '.join(f'{it}: {v:.3f}' for it, v in curve[::max(1, len(curve) // 8)])}, {curve[-1][0]}: {curve[-1][1]:.3f}.
(BasicSR's EMA starts from the random initial weights, so the early EMA validation lags the training weights.)
Scored by `python scripts/ship_teacher.py` on a 2-core shared CPU.

Use it as any teacher:

```yaml
network_t: {json.dumps(opt['network_g'])}
path:
  pretrain_network_t: dukd:{NAME}.safetensors
```
"""
    with open(osp.join(shipped.WEIGHTS_DIR, f'{NAME}.md'), 'w') as f:
        f.write(card)
    print(card)
    print(json.dumps(scores, indent=1))


if __name__ == '__main__':
    main()
