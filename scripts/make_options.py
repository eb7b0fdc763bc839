"""Write options/{dukd,kd}_<arch>_x<scale>.yml and options/test/*.yml from the published settings.

The table below is the single source of the paper's pairs and hyper-parameters (reference: the authors'
configs). Run ``python scripts/make_options.py`` after changing it; the YAML files are what users edit.
"""
import argparse
import os

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
DIV2K_MEAN = [0.4488, 0.4371, 0.4040]
EDSR_ZOO = {2: 'be38e77d', 3: '3660f70d', 4: '76ee1c8f'}


def edsr(num_feat, scale):
    return {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': num_feat, 'num_block': 32,
            'upscale': scale, 'res_scale': 0.1, 'img_range': 255., 'rgb_mean': DIV2K_MEAN}


def rcan(num_block, scale):
    return {'type': 'RCAN', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_group': 10,
            'num_block': num_block, 'squeeze_factor': 16, 'upscale': scale, 'res_scale': 1,
            'img_range': 255., 'rgb_mean': DIV2K_MEAN}


def swinir(embed_dim, num_layers, scale):
    return {'type': 'SwinIR', 'upscale': scale, 'in_chans': 3, 'img_size': 48, 'window_size': 8,
            'img_range': 1., 'depths': [6] * num_layers, 'embed_dim': embed_dim, 'num_heads': [6] * num_layers,
            'mlp_ratio': 2, 'upsampler': 'pixelshuffle', 'resi_connection': '1conv'}


def span(scale):  # SPAN (NTIRE 2024 efficient-SR winner), 48 channels: 0.43 M parameters once re-parameterised
    return {'type': 'spandrel.SPAN', 'num_in_ch': 3, 'num_out_ch': 3, 'feature_channels': 48, 'upscale': scale}


def safmn(scale):  # SAFMN (ICCV 2023), the published 36 x 8 model: 0.24 M parameters at x4
    return {'type': 'spandrel.SAFMN', 'dim': 36, 'n_blocks': 8, 'ffn_scale': 2.0, 'upscaling_factor': scale}


# arch -> (teacher, student, teacher checkpoint, pixel weight per scale, LCR prob per scale,
#          zoom-out per scale, zoom-in tiles per scale)
PAIRS = {
    'edsr': (lambda s: edsr(256, s), lambda s: edsr(64, s),
             lambda s: f'experiments/pretrained_models/EDSR_Lx{s}_f256b32_DIV2K_official-{EDSR_ZOO[s]}.pth',
             {2: 5.0, 3: 5.0, 4: 5.0}, {2: 0.3, 3: 0.3, 4: 0.3}, {2: True, 3: True, 4: True}, {2: 2, 3: 1, 4: 1}),
    'rcan': (lambda s: rcan(20, s), lambda s: rcan(6, s), lambda s: f'experiments/pretrained_models/RCAN_BIX{s}.pt',
             {2: 1.0, 3: 2.0, 4: 1.0}, {2: 0.0, 3: 0.3, 4: 0.0}, {2: False, 3: True, 4: False}, {2: 1, 3: 1, 4: 1}),
    'swinir': (lambda s: swinir(180, 6, s), lambda s: swinir(60, 4, s),
               lambda s: f'experiments/pretrained_models/001_classicalSR_DIV2K_s48w8_SwinIR-M_x{s}.pth',
               {2: 5.0, 3: 5.0, 4: 5.0}, {2: 0.3, 3: 0.3, 4: 0.3}, {2: False, 3: False, 4: False},
               {2: 1, 3: 1, 4: 1}),
}
# Efficient students people deploy (spandrel's classes, so exports open in spandrel-based tools), distilled from
# the SwinIR-M teacher with the SwinIR pair's x4 settings (no DUKD setting was published for them).
for _arch, _student in (('span', span), ('safmn', safmn)):
    PAIRS[_arch] = (PAIRS['swinir'][0], _student, PAIRS['swinir'][2], *PAIRS['swinir'][3:])
SCALES = {'span': (4, ), 'safmn': (4, )}  # default (2, 3, 4)
# Output-KD baselines: the authors released one KD file, kd_edsr_x4 (github.com/yun224/DUKD), with pixel
# weight 1.0 (their DUKD EDSR files use 5.0); the EDSR KD baselines follow it at every scale (the x4 KD student
# starts from the x2 one). No KD file was released for RCAN / SwinIR: those use the pair's DUKD pixel weight.
KD_PIXEL_WEIGHT = {'edsr': {2: 1.0, 3: 1.0, 4: 1.0}}
TEST_SETS = [('Set5', 'Set5'), ('Set14', 'Set14'), ('BSD100', 'BSD100'), ('Urban100', 'Urban100')]


def train_set(scale, tiles, zoom_out):
    return {
        'name': 'DIV2K', 'type': 'UpcyclingPairedImageDataset',
        'dataroot_gt': 'datasets/DIV2K/DIV2K_train_HR_sub',
        'dataroot_lq': f'datasets/DIV2K/DIV2K_train_LR_bicubic/X{scale}_sub',
        'filename_tmpl': '{}', 'io_backend': {'type': 'disk'},
        'gt_size': 48 * scale, 'use_hflip': True, 'use_rot': True,
        'upcycling': {'zoom_in_tiles': tiles, 'positions': 'grid', 'zoom_out': zoom_out},
        'num_worker_per_gpu': 6, 'batch_size_per_gpu': 16, 'dataset_enlarge_ratio': 100, 'prefetch_mode': None,
    }


def val_set(name, folder, scale):
    return {'name': name, 'type': 'UpcyclingPairedImageDataset', 'dataroot_gt': f'datasets/{folder}/HR',
            'dataroot_lq': f'datasets/{folder}/LR_bicubic/X{scale}', 'io_backend': {'type': 'disk'}}


def metrics(scale):
    return {'psnr': {'type': 'calculate_psnr', 'crop_border': scale, 'test_y_channel': True},
            'ssim': {'type': 'calculate_ssim', 'crop_border': scale, 'test_y_channel': True}}


def pixel_weight(arch, scale, method):
    if method == 'kd' and arch in KD_PIXEL_WEIGHT:
        return KD_PIXEL_WEIGHT[arch][scale]
    return PAIRS[arch][3][scale]


def train_options(arch, scale, method):
    teacher, student, ckpt, _, lcr, zoom_out, tiles = PAIRS[arch]
    name = f'{method.upper()}_{arch.upper()}_x{scale}'
    path = {'pretrain_network_t': ckpt(scale), 'param_key_t': None,
            'strict_load_t': True, 'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None}
    if arch == 'edsr' and scale == 4:  # published: the x4 EDSR student starts from the x2 student
        path.update(pretrain_network_g=f'experiments/{method.upper()}_EDSR_x2/models/net_g_latest.pth',
                    param_key_g='params_ema', strict_load_g=False)
    train = {
        'ema_decay': 0.999,
        'optim_g': {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
        'scheduler': {'type': 'MultiStepLR', 'milestones': [100000, 200000], 'gamma': 0.1},
        'total_iter': 250000, 'warmup_iter': -1,
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': pixel_weight(arch, scale, method), 'reduction': 'mean'},
        'kd_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
    }
    if method == 'dukd':
        dukd = {'zoom_in': {'num_tiles': tiles[scale], 'positions': 'grid', 'loss_weight': 1.0},
                'zoom_out': {'loss_weight': 1.0} if zoom_out[scale] else False}
        if lcr[scale] > 0:
            dukd['label_consistency'] = {'prob': lcr[scale], 'ops': ['invert', 'vflip', 'hflip', 'transpose'],
                                         'apply_to': ['zoom_in']}
        train['dukd_opt'] = dukd
    return {
        'name': name, 'model_type': 'DUKDModel' if method == 'dukd' else 'KDModel', 'scale': scale,
        'num_gpu': 'auto', 'manual_seed': 0,
        'datasets': {'train': train_set(scale, tiles[scale] if method == 'dukd' else 0,
                                        method == 'dukd' and zoom_out[scale]),
                     'val': val_set('Set5', 'Set5', scale)},
        'network_g': student(scale), 'network_t': teacher(scale), 'path': path, 'train': train,
        'val': {'val_freq': 5000, 'save_img': False, 'self_ensemble': False, 'metrics': metrics(scale)},
        'logger': {'print_freq': 100, 'save_checkpoint_freq': 5000, 'use_tb_logger': True,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': 'nccl', 'port': 29500},
    }


def test_options(arch, scale, method):
    _, student, *_ = PAIRS[arch]
    name = f'{method.upper()}_{arch.upper()}_x{scale}'
    return {
        'name': f'test_{name}', 'model_type': 'DUKDModel' if method == 'dukd' else 'KDModel', 'scale': scale,
        'num_gpu': 'auto', 'manual_seed': 0,
        'datasets': {f'test_{i + 1}': val_set(n, f, scale) for i, (n, f) in enumerate(TEST_SETS)},
        'network_g': student(scale),
        'path': {'pretrain_network_g': f'experiments/{name}/models/net_g_latest.pth', 'param_key_g': 'params_ema',
                 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None, 'self_ensemble': False, 'metrics': metrics(scale)},
    }


class _Dumper(yaml.SafeDumper):
    """Block mappings, inline lists, no YAML anchors: files read like hand-written BasicSR options."""

    def ignore_aliases(self, data):
        return True


_Dumper.add_representer(list, lambda d, v: d.represent_sequence('tag:yaml.org,2002:seq', v, flow_style=True))


def dump(obj, path, header):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(header)
        yaml.dump(obj, f, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)


def main():
    header = '# Generated by scripts/make_options.py from the published DUKD settings; edit freely.\n'
    for arch in PAIRS:
        for scale in SCALES.get(arch, (2, 3, 4)):
            for method in ('dukd', 'kd'):
                dump(train_options(arch, scale, method), f'{ROOT}/options/{method}_{arch}_x{scale}.yml', header)
                dump(test_options(arch, scale, method), f'{ROOT}/options/test/test_{method}_{arch}_x{scale}.yml',
                     header)


if __name__ == '__main__':
    argparse.ArgumentParser(description=__doc__.split('\n\n')[0]).parse_args()  # --help answers, never writes
    main()
