"""Quantization-aware distillation on the demo data (issue 6): a small full-precision EDSR student, then
QuantEDSR at W4A4 and W2A2 initialised from it and trained three ways: no teacher, output KD, DUKD.

* FP row: BasicSR EDSR, num_feat 16, num_block 4, res_scale 1, x4 (about 2x the demo student's parameters),
  trained with DUKD from the demo teacher with the demo's DUKD settings (options/demo/train_student_dukd.yml:
  data, seed 0, 800 iterations, lr 1e-3 halved at 600, EMA 0.99, validation).
* QAT rows: network_g = QuantEDSR with the same constructor arguments plus w_bits / a_bits, initialised from
  the FP row's EMA weights (``param_key_g: params_ema``, ``strict_load_g: true``; the quantizer state is the
  only thing the checkpoint lacks), ``--qat-iters`` iterations (default 400), Adam lr 5e-4 (half the FP rate,
  the recipe of docs/quantization.md) halved at 3/4, EMA 0.99, seed 0:
    - no teacher: KDModel with ``kd_opt: ~`` (L1 to GT only; the teacher is built but never run). KDModel
      rather than SRModel because BasicSR's SRModel EMA averages parameters only: its EMA copy would never
      receive the data-initialised activation clips (buffers) and would be evaluated with unquantized
      activations. KDModel's EMA copies buffers (docs/quantization.md);
    - output KD: KDModel, the demo's kd_opt (L1 to the teacher output, weight 1);
    - DUKD: DUKDModel, the demo's DUKD settings.
* control: the FP row continued for the same iterations as a no-teacher QAT row, full precision.
Every row is scored with test.py on the held-out photos (EMA weights, PSNR / SSIM on Y, border 4). Derived
train options: experiments/_derived_options/bqz_*.yml; test options: experiments/_derived_options/test_bqz_*.yml.

    PYTHONPATH=$PWD python benchmarks/bench_quantization.py --threads 1
"""
import argparse
import os
import sys
from os import path as osp

import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import dukd_arch  # noqa: E402,F401
from dukd_arch.demo.pipeline import Run, iteration_changes  # noqa: E402
from rows_common import run_rows, table  # noqa: E402

KD_OPT = 'options/demo/train_student_kd.yml'
DUKD_OPT = 'options/demo/train_student_dukd.yml'
EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 4, 'upscale': 4,
        'res_scale': 1.0, 'img_range': 255.0, 'rgb_mean': [0.4488, 0.4371, 0.4040]}
FP_NAME = 'bqz_edsr_fp'


def test_option(name, network_g):
    """A test option file for ``network_g``: the demo's test file with the network swapped."""
    with open('options/demo/test_student_scratch.yml') as f:
        opt = yaml.safe_load(f)
    opt['name'] = f'test_{name}'
    opt['network_g'] = network_g
    path = osp.join('experiments', '_derived_options', f'test_{name}.yml')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('# derived from options/demo/test_student_scratch.yml by benchmarks/bench_quantization.py\n')
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def rows(qat_iters):
    out = [('fp', Run('FP EDSR, DUKD', DUKD_OPT, FP_NAME, {'network_g': EDSR}), test_option(FP_NAME, EDSR))]
    # control: the FP row continued exactly like a no-teacher QAT row, so "QAT row - this row" is the cost of
    # quantization at equal training (the QAT rows get qat_iters more iterations than the FP row)
    cont = 'bqz_edsr_fp_cont'
    out.append(('fp_cont', Run('FP EDSR continued, no teacher (L1 to GT)', KD_OPT, cont, {
        'network_g': EDSR, 'path:pretrain_network_g': f'experiments/{FP_NAME}/models/net_g_latest.pth',
        'path:param_key_g': 'params_ema', 'path:strict_load_g': True, 'train:optim_g:lr': 5e-4,
        **iteration_changes(qat_iters), 'model_type': 'KDModel', 'train:kd_opt': None}), test_option(cont, EDSR)))
    for bits in (4, 2):
        qnet = {**EDSR, 'type': 'QuantEDSR', 'w_bits': bits, 'a_bits': bits}
        common = {'network_g': qnet, 'path:pretrain_network_g': f'experiments/{FP_NAME}/models/net_g_latest.pth',
                  'path:param_key_g': 'params_ema', 'path:strict_load_g': True,
                  'train:optim_g:lr': 5e-4, **iteration_changes(qat_iters)}
        ways = (('scratch', 'no teacher (L1 to GT)', KD_OPT, {'model_type': 'KDModel', 'train:kd_opt': None}),
                ('kd', 'output KD', KD_OPT, {}),
                ('dukd', 'DUKD', DUKD_OPT, {}))
        for way, label, base, changes in ways:
            name = f'bqz_w{bits}a{bits}_{way}'
            out.append((f'w{bits}a{bits}_{way}', Run(f'W{bits}A{bits}, {label}', base, name, {**common, **changes}),
                        test_option(name, qnet)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--qat-iters', type=int, default=400, help='iterations of each QAT row (default 400)')
    p.add_argument('--rows', nargs='+', help='only these row keys (fp, fp_cont, w4a4_scratch, w4a4_kd, w4a4_dukd, w2a2_...)')
    p.add_argument('--threads', type=int, help='OMP_NUM_THREADS per run (1 helps on a busy machine)')
    args = p.parse_args()
    os.chdir(ROOT)
    all_rows = rows(args.qat_iters)
    t_row, results = run_rows(all_rows, 'bench_quantization', threads=args.threads, only=args.rows)
    md = table(t_row, results, [(k, r.label) for k, r, _ in all_rows])
    print(md)
    with open(osp.join('experiments', 'bench_quantization', 'rows.md'), 'w') as f:
        f.write(md + '\n')


if __name__ == '__main__':
    main()
