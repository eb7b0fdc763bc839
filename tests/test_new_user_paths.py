"""The rough edges a new user hit (issue 12, section 3): each behaviour a user relies on, on tiny networks."""
import copy
import glob
import importlib.util
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

import dukd_arch  # noqa: F401
from basicsr.archs import build_network
from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.archs.srvgg_arch import SRVGGNetCompact
from basicsr.data import build_dataloader, build_dataset
from basicsr.metrics import calculate_metric
from basicsr.models import build_model
from dukd_arch.compat import MetricInputError
from dukd_arch.model_card import _describe

from conftest import SCALE, TINY_EDSR, make_opt, tool_options

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def _python(*args):
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env)


# ---------------------------------------------------------------------------------------------- AutoTeacher
def test_rrdbnet_teacher_spandrel_cannot_build_gets_the_reason_and_a_network_t_that_loads(tmp_path):
    net = RRDBNet(3, 3, num_feat=8, num_block=2, num_grow_ch=4, scale=4)
    path = str(tmp_path / 'rrdb.pth')
    torch.save({'params_ema': net.state_dict()}, path)
    with pytest.raises(ValueError) as info:
        build_network({'type': 'AutoTeacher', 'path': path, 'scale': 4})
    message = str(info.value)
    assert 'size mismatch for' in message and 'growth width 4' in message
    net_t = yaml.safe_load(message.split('`network_t: ')[1].split('`')[0])
    rebuilt = build_network(net_t)
    rebuilt.load_state_dict(net.state_dict(), strict=True)  # the suggested network_t is exactly the file's


def test_model_card_names_an_auto_teacher_by_its_detected_architecture(tmp_path):
    path = str(tmp_path / 'compact.pth')
    torch.save({'params': SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=2).state_dict()}, path)
    teacher = build_network({'type': 'AutoTeacher', 'path': path, 'scale': 2})
    described = _describe(teacher, {'type': 'AutoTeacher', 'path': path, 'scale': 2})
    assert described.startswith(f'{teacher.architecture} x2 via AutoTeacher') and teacher.architecture != 'AutoTeacher'


# ---------------------------------------------------------------------------------------------- NIQE
@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # basicsr's niqe warns on the flat image before failing
def test_niqe_says_the_minimum_size_and_names_a_flat_output():
    with pytest.raises(MetricInputError, match='at least two 96x96 blocks .* this output is 95x300'):
        calculate_metric({'img': np.zeros((95, 300, 3), np.uint8)}, {'type': 'calculate_niqe', 'crop_border': 0})
    with pytest.raises(MetricInputError, match='this output is 96x96'):
        calculate_metric({'img': np.zeros((100, 100, 3), np.uint8)}, {'type': 'calculate_niqe', 'crop_border': 2})
    with pytest.raises(MetricInputError, match='flat'):
        calculate_metric({'img': np.full((96, 192, 3), 128, np.uint8)}, {'type': 'calculate_niqe', 'crop_border': 0})


def test_validation_names_the_image_a_metric_cannot_score(tmp_path):
    (tmp_path / 'lr').mkdir()
    cv2.imwrite(str(tmp_path / 'lr' / 'small_photo.png'), np.full((20, 30, 3), 100, np.uint8))
    ds_opt = {'name': 'real', 'type': 'SingleImageDataset', 'dataroot_lq': str(tmp_path / 'lr'),
              'io_backend': {'type': 'disk'}, 'phase': 'val', 'scale': SCALE}
    loader = build_dataloader(build_dataset(ds_opt), ds_opt, num_gpu=0, dist=False)
    opt = {'name': 'niqe', 'model_type': 'SRModel', 'is_train': False, 'dist': False, 'num_gpu': 0, 'rank': 0,
           'scale': SCALE, 'network_g': copy.deepcopy(TINY_EDSR), 'path': {'visualization': str(tmp_path)},
           'val': {'save_img': False, 'suffix': None,
                   'metrics': {'niqe': {'type': 'calculate_niqe', 'crop_border': 0}}}}
    model = build_model(opt)
    with pytest.raises(MetricInputError, match='small_photo.png: NIQE needs at least'):
        model.validation(loader, 0, None, False)


# ---------------------------------------------------------------------------------------------- feature KD
def _feature_opt(tmp_path, entry, batch):
    opt = make_opt(tmp_path, model_type='FeatureKDModel', train_extra={'feature_kd_opt': [entry]})
    opt['train'].pop('dukd_opt')
    opt['datasets']['train']['batch_size_per_gpu'] = batch
    return opt


def test_feature_kd_says_when_the_default_map_has_fewer_pairs_and_checks_rkd_batch_first(tmp_path, records):
    build_model(_feature_opt(tmp_path, {'type': 'FitNetLoss'}, batch=2))  # TINY_EDSR: one body stage
    assert any('num_pairs 4, but the student has only 1 stages' in line for line in records)
    with pytest.raises(ValueError, match=r'needs at least 3 per GPU; datasets.train.batch_size_per_gpu is 2'):
        build_model(_feature_opt(tmp_path, {'type': 'RKDLoss', 'layers': {'body.0': 'body.1'}}, batch=2))
    build_model(_feature_opt(tmp_path, {'type': 'RKDLoss', 'layers': {'body.0': 'body.1'}, 'angle_weight': 0},
                             batch=2))  # distances only: 2 samples are enough


# ---------------------------------------------------------------------------------------------- commands
def test_make_demo_installs_only_what_is_missing():
    spec = importlib.util.spec_from_file_location('check_install', f'{REPO}/scripts/check_install.py')
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    from importlib.metadata import version
    assert check.missing([f'torch=={version("torch").split("+")[0]}', 'numpy']) == []
    assert check.missing(['torch==0.0.1', 'no-such-dist-dukd']) == [
        f'torch {version("torch")} is installed, 0.0.1 is pinned', 'no-such-dist-dukd is not installed']
    with open(f'{REPO}/Makefile') as f:
        demo = f.read().split('\ndemo:')[1].split('\n\n')[0]
    assert demo.splitlines()[0].strip() == '' and 'check_install.py' in demo and '|| $(MAKE) install' in demo


def test_fetch_photos_refuses_one_out_folder_for_the_whole_corpus(tmp_path, capsys):
    """`--set corpus --out X` used to ignore X and write under --root: the user would look for the photos in X."""
    spec = importlib.util.spec_from_file_location('fetch_photos', f'{REPO}/scripts/fetch_photos.py')
    fetch_photos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch_photos)
    with pytest.raises(SystemExit) as exit_info:
        fetch_photos.main(['--set', 'corpus', '--out', str(tmp_path / 'photos')])
    assert exit_info.value.code == 2 and '--out names the folder of one set' in capsys.readouterr().err
    assert not (tmp_path / 'photos').exists()


def test_card_runs_without_runtime_warning_and_quant_export_takes_exports_flags(capsys):
    card = _python('-W', 'error::RuntimeWarning', '-m', 'dukd_arch.card', '--help')  # the package no longer
    assert card.returncode == 0 and 'RuntimeWarning' not in card.stderr                # imports the CLI module
    from dukd_arch.quant_export import main
    with pytest.raises(SystemExit):
        main(['--help'])
    usage = capsys.readouterr().out
    assert usage.startswith('usage: python -m dukd_arch.quant_export')
    for flag in ('-opt', '--checkpoint', '--out'):
        assert flag in usage


def test_quant_export_with_the_export_flags(tmp_path):
    from dukd_arch.archs.quant_export import load_quantized
    from dukd_arch.quant_export import main
    net_opt = {**TINY_EDSR, 'type': 'QuantEDSR', 'w_bits': 4, 'a_bits': 4}
    net = build_network(dict(net_opt)).train()
    net(torch.rand(1, 3, 8, 8))
    torch.save({'params': net.state_dict()}, tmp_path / 'net.pth')
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(tool_options(net_opt)))
    out = tmp_path / 'q.safetensors'
    main(['-opt', str(tmp_path / 'opt.yml'), '--checkpoint', str(tmp_path / 'net.pth'), '--out', str(out)])
    assert load_quantized(str(out))[1]['arch'] == 'QuantEDSR'


def test_quant_export_refuses_a_folder_as_out_with_the_file_to_give(tmp_path, capsys):
    from dukd_arch.quant_export import main
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(tool_options({**TINY_EDSR, 'type': 'QuantEDSR'})))
    with pytest.raises(SystemExit):  # `export --out DIR` writes into DIR; here --out is the file
        main(['-opt', str(tmp_path / 'opt.yml'), '--checkpoint', str(tmp_path / 'net.pth'), '--out', str(tmp_path)])
    assert f'--out {tmp_path} is a folder; give the file to write' in capsys.readouterr().err


def test_published_options_auto_detect_the_teacher_key():
    # the demo's own teacher has both params and params_ema: its options name the EMA weights on purpose
    for path in sorted(set(glob.glob(f'{REPO}/options/**/*.yml', recursive=True))
                       - set(glob.glob(f'{REPO}/options/demo/*.yml'))):
        with open(path) as f:
            opt = yaml.safe_load(f)
        if 'pretrain_network_t' in (opt.get('path') or {}):
            assert opt['path'].get('param_key_t') is None, path


@pytest.mark.parametrize('tool, argv, message', [
    ('export', ['--out', 'x', '--lr-size', '0'], '--lr-size 0: the traced input size'),
    ('export', ['--out', 'x', '--opset', '99'], '--opset 99: this torch exports opsets'),
    ('card', ['--max-images', '-1'], '--max-images -1: must be 1 or more'),
    ('card', ['--repeats', '0'], '--repeats 0: must be 1 or more'),
    ('card', ['--out', REPO], 'is a folder; give the card\'s file name'),
    ('export', ['--out', f'{REPO}/README.md'], 'is a file; give the output folder'),
])
def test_tools_refuse_out_of_range_numbers_before_building(tool, argv, message, capsys):
    import importlib
    with pytest.raises(SystemExit) as stop:
        importlib.import_module(f'dukd_arch.{tool}').main(
            ['-opt', f'{REPO}/options/dukd_edsr_x4.yml', '--checkpoint', 'never_read.pth'] + argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
