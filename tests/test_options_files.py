"""The shipped option files build the published pairs and parse with the DUKD option reader."""
import glob
import os

import pytest
import torch
import yaml

from basicsr.archs import build_network
from dukd_arch.models.dukd_options import parse_dukd_options

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
# parameters (millions) of the x4 pairs, reference doc section 4
PUBLISHED_X4 = {'edsr': (43.1, 2.70), 'rcan': (15.6, 5.17), 'swinir': (11.9, 1.24)}
# spandrel students (SwinIR-M teacher); SPAN counts its re-parameterised (deployed) convolutions
PUBLISHED_EFFICIENT_X4 = {'span': 0.426, 'safmn': 0.240}


def _load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _millions(net_opt):
    try:
        with torch.device('meta'):  # no memory, no init cost
            net = build_network(dict(net_opt))
    except RuntimeError:  # SwinIR's init calls .item()
        net = build_network(dict(net_opt))
    return sum(p.numel() for p in net.parameters()) / 1e6


@pytest.mark.parametrize('arch', sorted(PUBLISHED_X4))
def test_x4_pairs_have_the_published_sizes(arch):
    opt = _load(f'{REPO}/options/dukd_{arch}_x4.yml')
    teacher, student = PUBLISHED_X4[arch]
    assert _millions(opt['network_t']) == pytest.approx(teacher, rel=0.01)
    assert _millions(opt['network_g']) == pytest.approx(student, rel=0.01)


@pytest.mark.parametrize('arch', sorted(PUBLISHED_EFFICIENT_X4))
def test_efficient_students_have_their_published_sizes(arch):
    pytest.importorskip('spandrel')
    opt = _load(f'{REPO}/options/dukd_{arch}_x4.yml')
    net = build_network(dict(opt['network_g']))
    deployed = sum(p.numel() for k, p in net.named_parameters() if '.conv.' not in k and '.sk.' not in k)
    assert deployed / 1e6 == pytest.approx(PUBLISHED_EFFICIENT_X4[arch], rel=0.01)
    assert opt['network_t'] == _load(f'{REPO}/options/dukd_swinir_x4.yml')['network_t']


def _upscale(net_opt):
    return net_opt.get('upscale', net_opt.get('upscaling_factor'))  # SAFMN's name for it


def test_every_training_option_file_is_consistent():
    files = sorted(glob.glob(f'{REPO}/options/*.yml'))
    assert len(files) >= 18
    for path in files:
        opt = _load(path)
        scale = opt['scale']
        assert _upscale(opt['network_g']) == scale and _upscale(opt['network_t']) == scale, path
        assert opt['datasets']['train']['gt_size'] == 48 * scale, path
        if opt['model_type'].startswith('DUKD'):
            cfg = parse_dukd_options(opt['train'])
            assert opt['datasets']['train']['upcycling']['zoom_in_tiles'] == cfg.zoom_in_tiles, path


def test_test_option_files_point_at_the_training_runs():
    for path in sorted(glob.glob(f'{REPO}/options/test/*.yml')):
        opt = _load(path)
        train = _load(f"{REPO}/options/{os.path.basename(path)[len('test_'):]}")
        assert opt['path']['pretrain_network_g'] == f"experiments/{train['name']}/models/net_g_latest.pth"
        assert opt['network_g'] == train['network_g']


def test_every_shipped_option_file_is_well_formed():
    """Every YAML under options/ (demo, realworld, quantized, feature-KD, test) loads, and the sections BasicSR
    iterates over are mappings: a truncated `path:` once shipped and only failed inside train.py."""
    files = sorted(glob.glob(f'{REPO}/options/**/*.yml', recursive=True))
    assert len(files) > 40
    for path in files:
        opt = _load(path)
        assert isinstance(opt.get('name'), str) and opt.get('model_type') and opt.get('scale'), path
        for section in ('datasets', 'network_g', 'path', 'train', 'val', 'logger'):
            if section in opt:
                assert isinstance(opt[section], dict), f'{path}: `{section}` is not a mapping'
        assert 'type' in opt['network_g'], path
        for name, dataset in opt['datasets'].items():
            assert isinstance(dataset, dict) and 'type' in dataset, f'{path}: datasets.{name}'
