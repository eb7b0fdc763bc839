"""Feature-distillation baselines on the demo data (issue 7): output KD, FAKD / FitNet / AT / RKD on top of
output KD, and FAKD combined with DUKD.

Same student, teacher, data, seed 0, 800 iterations and validation as the demo (options/demo/); every row is
the demo's KD (or DUKD) option file with ``model_type`` switched to FeatureKDModel (FeatureDUKDModel) and a
``train.feature_kd_opt`` entry added. The derived option files land in experiments/_derived_options/bfk_*.yml.
Rows are scored with test.py on the held-out photos (EMA weights, PSNR / SSIM on Y, border 4).

Layers: SRVGGNetCompact has no default layer map, so the taps are explicit: the PReLU after the student's
2nd and 4th (last) body conv, paired with the teacher's PReLU after its 4th and 8th body conv (same relative
depth): student body.5 -> teacher body.9, student body.9 -> teacher body.17.

CrossKD is not run: it replaces a teacher feature by the student's, so it needs equal (C, H, W) at the tapped
module; the demo pair is 16 vs 32 channels (checked at start-up, docs/feature_kd.md).

    PYTHONPATH=$PWD python benchmarks/bench_feature_kd.py --threads 1          # all rows; reuses finished runs
    PYTHONPATH=$PWD python benchmarks/bench_feature_kd.py --rows fakd_kd --threads 1
"""
import argparse
import os
import sys
from os import path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import dukd_arch  # noqa: E402,F401
from dukd_arch.demo.pipeline import Run  # noqa: E402
from rows_common import run_rows, table  # noqa: E402

LAYERS = {'body.5': 'body.9', 'body.9': 'body.17'}
KD_OPT = 'options/demo/train_student_kd.yml'
DUKD_OPT = 'options/demo/train_student_dukd.yml'
TEST_OPT = 'options/demo/test_student_scratch.yml'  # builds the demo student; the weights path is overridden

TERMS = {  # loss weights as in the shipped options/fakd_*, fitnet_*, at_*, rkd_* files (our starting points)
    'fakd': {'type': 'FAKDLoss', 'loss_weight': 1.0, 'chunk_size': 512, 'layers': LAYERS},
    'fitnet': {'type': 'FitNetLoss', 'loss_weight': 0.1, 'criterion': 'l2', 'normalize': True, 'layers': LAYERS},
    'at': {'type': 'AttentionTransferLoss', 'loss_weight': 1.0, 'p': 2.0, 'layers': LAYERS},
    'rkd': {'type': 'RKDLoss', 'loss_weight': 1.0, 'distance_weight': 1.0, 'angle_weight': 2.0, 'layers': LAYERS},
}


def feature_run(label, key, base, model_type, term):
    return Run(label, base, f'bfk_{key}', {'model_type': model_type, 'train:feature_kd_opt': [TERMS[term]]})


ROWS = [  # key, Run, test option
    ('kd', Run('output KD', KD_OPT, 'demo_student_kd'), TEST_OPT),  # the demo's own run (reused if trained)
    ('fakd_kd', feature_run('FAKD + KD', 'fakd_kd', KD_OPT, 'FeatureKDModel', 'fakd'), TEST_OPT),
    ('fitnet_kd', feature_run('FitNet + KD', 'fitnet_kd', KD_OPT, 'FeatureKDModel', 'fitnet'), TEST_OPT),
    ('at_kd', feature_run('AT + KD', 'at_kd', KD_OPT, 'FeatureKDModel', 'at'), TEST_OPT),
    ('rkd_kd', feature_run('RKD + KD', 'rkd_kd', KD_OPT, 'FeatureKDModel', 'rkd'), TEST_OPT),
    ('dukd', Run('DUKD', DUKD_OPT, 'demo_student_dukd'), TEST_OPT),  # the demo's own run
    ('fakd_dukd', feature_run('FAKD + DUKD', 'fakd_dukd', DUKD_OPT, 'FeatureDUKDModel', 'fakd'), TEST_OPT),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', nargs='+', choices=[k for k, _, _ in ROWS], help='only these rows (default all)')
    p.add_argument('--threads', type=int, help='OMP_NUM_THREADS per run (1 helps on a busy machine)')
    args = p.parse_args()
    os.chdir(ROOT)
    t_row, results = run_rows(ROWS, 'bench_feature_kd', threads=args.threads, only=args.rows)
    md = table(t_row, results, [(k, r.label) for k, r, _ in ROWS])
    md += '\n\nCrossKD + KD: not run (needs equal widths at the tapped module; demo pair is 16 vs 32 channels).'
    print(md)
    with open(osp.join('experiments', 'bench_feature_kd', 'rows.md'), 'w') as f:
        f.write(md + '\n')


if __name__ == '__main__':
    main()
