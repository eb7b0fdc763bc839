"""spandrel's architectures by name (``type: spandrel.<Class>``) as students and teachers: the option check,
DUKD training with the teacher-label store, EMA, resume, test.py, infer, card, export, and exported students
(of a BasicSR arch too) that open in spandrel, the loader of chaiNNer, ComfyUI and other front-ends."""
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import SCALE, write_pairs

spandrel = pytest.importorskip('spandrel')

from basicsr.archs import build_network  # noqa: E402

from dukd_arch import load_student  # noqa: E402
from dukd_arch.card import main as card_main  # noqa: E402
from dukd_arch.export import main as export_main  # noqa: E402
from dukd_arch.infer import main as infer_main  # noqa: E402
from dukd_arch.options import OptionError, validate_options  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
SAFMN = {'type': 'spandrel.SAFMN', 'dim': 8, 'n_blocks': 1, 'ffn_scale': 2.0, 'upscaling_factor': SCALE}
SPAN = {'type': 'spandrel.SPAN', 'num_in_ch': 3, 'num_out_ch': 3, 'feature_channels': 8, 'upscale': SCALE}
COMPACT = {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 2,
           'upscale': SCALE, 'act_type': 'prelu'}
TEACHER = {**SPAN, 'feature_channels': 12}  # a spandrel network as network_t too


def _run(args, cwd):
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')])}  # this checkout
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _dataset(root, phase):
    opt = {'name': phase, 'type': 'UpcyclingPairedImageDataset', 'dataroot_gt': str(root / phase / 'HR'),
           'dataroot_lq': str(root / phase / 'LR'), 'io_backend': {'type': 'disk'}}
    if phase == 'train':  # LR patches of 16 px: SAFMN's multiple of 8 fits zoom-out's 8 px inputs
        opt.update(gt_size=32, use_hflip=True, use_rot=True, num_worker_per_gpu=0, batch_size_per_gpu=2,
                   dataset_enlarge_ratio=1, prefetch_mode=None,
                   upcycling={'zoom_in_tiles': 1, 'positions': 'random', 'zoom_out': True})
    return opt


def _train_opt(root, name, net_g, total_iter, labels=None):
    opt = {
        'name': name, 'model_type': 'DUKDModel', 'scale': SCALE, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': _dataset(root, 'train'), 'val': _dataset(root, 'val')},
        'network_g': dict(net_g), 'network_t': dict(TEACHER),
        'path': {'pretrain_network_t': str(root / 'teacher.pth'), 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0.9, 'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [1000], 'gamma': 0.5}, 'total_iter': total_iter,
            'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
            'kd_opt': {'type': 'L1Loss', 'loss_weight': 1.0},
            'dukd_opt': {'zoom_in': {'num_tiles': 1, 'positions': 'random'}, 'zoom_out': True,
                         'label_consistency': {'prob': 0.5}},
        },
        'val': {'val_freq': 2, 'save_img': False, 'metrics': {
            'psnr': {'type': 'calculate_psnr', 'crop_border': SCALE, 'test_y_channel': True}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }
    if labels:
        opt['datasets']['train']['dataroot_teacher'] = labels
    return opt


def _write(path, opt):
    path.write_text(yaml.safe_dump(opt))
    return str(path)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('spandrel')
    for script in ('train.py', 'test.py'):
        shutil.copy(os.path.join(REPO, script), root / script)
    write_pairs(str(root / 'train'), n=4, size=32, seed=1)
    write_pairs(str(root / 'val'), n=2, size=28, seed=2)  # LR 14 px: not a multiple of SAFMN's 8
    torch.manual_seed(0)
    torch.save({'params': build_network(dict(TEACHER)).state_dict()}, root / 'teacher.pth')
    return root


@pytest.fixture(scope='module')
def trained(workspace):
    """``{name: (options file, checkpoint)}``: each student trained 2 iterations with DUKD from the SPAN teacher."""
    runs = {}
    for name, net in (('safmn', SAFMN), ('span', SPAN), ('compact', COMPACT)):
        opt_path = _write(workspace / f'{name}.yml', _train_opt(workspace, name, net, 2))
        _run([str(workspace / 'train.py'), '-opt', opt_path], workspace)
        runs[name] = (opt_path, str(workspace / 'experiments' / name / 'models' / 'net_g_latest.pth'))
    return runs


# ---- options ------------------------------------------------------------------------------------------------


def _shipped(name='dukd_span_x4'):
    with open(f'{REPO}/options/{name}.yml') as f:
        return yaml.safe_load(f)


def test_option_check_reads_the_spandrel_constructor():
    validate_options(_shipped('dukd_span_x4'))
    validate_options(_shipped('kd_safmn_x4'))
    opt = _shipped()
    opt['network_g']['feature_channel'] = opt['network_g'].pop('feature_channels')
    with pytest.raises(OptionError, match=r'network_g\.feature_channel: unknown key; did you mean `feature_channels`'):
        validate_options(opt)
    opt = _shipped()
    opt['network_g']['upscale'] = '4'
    with pytest.raises(OptionError, match=r"network_g\.upscale: expected a whole number >= 1, got the string '4'"):
        validate_options(opt)
    opt = _shipped('dukd_safmn_x4')
    del opt['network_g']['dim']
    with pytest.raises(OptionError, match=r'network_g\.dim: missing: spandrel\.SAFMN needs `dim`'):
        validate_options(opt)
    opt = _shipped()
    opt['network_g'].update(w_bits=4, a_bits=4)  # quantization-aware training is for the BasicSR students only
    with pytest.raises(OptionError, match=r'(?s)2 problem.*network_g\.w_bits: spandrel\.SPAN is not quantized: '
                                          r'quantization-aware students are QuantEDSR'):
        validate_options(opt)
    with pytest.raises(ValueError, match='spandrel.SPAN is not quantized'):
        build_network(dict(opt['network_g']))
    opt = _shipped()
    opt['network_t'] = {'type': 'spandrel.SAFMNN', 'dim': 8}
    with pytest.raises(OptionError, match=r"network_t\.type: no architecture is registered as 'spandrel\.SAFMNN'; "
                                          r'did you mean `spandrel\.SAFMN`'):
        validate_options(opt)


def test_without_spandrel_the_error_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['spandrel'] = None\n"
            "import dukd_arch, yaml\n"
            "from basicsr.archs import build_network\n"
            "from dukd_arch.options import OptionError, validate_options\n"
            f"opt = yaml.safe_load(open({REPO + '/options/dukd_span_x4.yml'!r}))\n"
            "try:\n"
            "    validate_options(opt)\n"
            "except OptionError as err:\n"
            "    print('OPTIONS', err)\n"
            "try:\n"
            "    build_network(dict(opt['network_g']))\n"
            "except ImportError as err:\n"
            "    print('BUILD', err)\n"
            "print('EDSR builds:', type(build_network({'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3})).__name__)\n")
    out = _run(['-c', code], REPO)
    assert 'OPTIONS' in out and 'network_g.type: `type: spandrel.SPAN` needs the spandrel library' in out
    assert 'BUILD `type: spandrel.SPAN` needs the spandrel library' in out and '.[teachers]' in out
    assert 'EDSR builds: EDSR' in out


# ---- training, resume, test.py ------------------------------------------------------------------------------


def test_spandrel_student_trains_with_stored_labels_resumes_and_tests(workspace):
    root = workspace
    labels = str(root / 'labels')
    opt_path = _write(root / 'stored.yml', _train_opt(root, 'stored', SAFMN, 2, labels=labels))
    _run(['-m', 'dukd_arch.teacher_labels', '-opt', opt_path], REPO)
    log = _run([str(root / 'train.py'), '-opt', opt_path], root)
    assert 'Real-pair KD term: stored teacher labels, 4 images' in log
    assert 'l_zoom_in' in log and 'l_zoom_out_kd' in log and '# psnr' in log
    models = root / 'experiments' / 'stored' / 'models'
    ckpt = torch.load(models / 'net_g_2.pth', weights_only=True)
    assert set(ckpt) == {'params', 'params_ema'}
    native = set(build_network(dict(SAFMN)).state_dict())
    assert set(ckpt['params']) == set(ckpt['params_ema']) == native  # spandrel's own names, EMA included
    assert any(not torch.equal(ckpt['params'][k], ckpt['params_ema'][k]) for k in native)

    _write(root / 'stored.yml', _train_opt(root, 'stored', SAFMN, 4, labels=labels))
    log = _run([str(root / 'train.py'), '-opt', opt_path, '--auto_resume'], root)
    assert 'Resuming training from epoch' in log and (models / 'net_g_4.pth').exists()

    test_opt = {
        'name': 'stored_test', 'model_type': 'DUKDModel', 'scale': SCALE, 'num_gpu': 0,
        'datasets': {'test_1': _dataset(root, 'val')}, 'network_g': dict(SAFMN),
        'path': {'pretrain_network_g': str(models / 'net_g_latest.pth'), 'param_key_g': 'params_ema',
                 'strict_load_g': True},
        'val': {'save_img': True, 'suffix': None, 'self_ensemble': True, 'metrics': {
            'psnr': {'type': 'calculate_psnr', 'crop_border': SCALE, 'test_y_channel': True}}},
    }
    log = _run([str(root / 'test.py'), '-opt', _write(root / 'test.yml', test_opt)], root)
    assert '# psnr' in log
    images = sorted((root / 'results' / 'stored_test' / 'visualization' / 'val').glob('*.png'))
    assert [cv2.imread(str(p)).shape for p in images] == [(28, 28, 3)] * 2  # 14 px LR, padded to 16 inside


# ---- infer, card, export ------------------------------------------------------------------------------------


def test_infer_card_and_onnx_export_of_a_spandrel_student(trained, workspace, tmp_path, capsys):
    opt_path, checkpoint = trained['safmn']
    out = tmp_path / 'export'
    assert export_main(['-opt', opt_path, '--checkpoint', checkpoint, '--out', str(out), '--lr-size', '16']) == 0
    report = json.loads((out / 'parity.json').read_text())
    # SAFMN pools to H / 8 x W / 8: the graph traces for the exported input size only
    assert report['dynamic'] is False and list(report['max_abs_diff']) == ['1x3x16x16']
    assert report['window_multiple'] == 8 and report['max_abs_diff']['1x3x16x16'] < 1e-4

    assert infer_main(['-i', str(workspace / 'val' / 'LR'), '-o', str(tmp_path / 'sr'),
                       '--checkpoint', str(out / 'student.safetensors'), '--device', 'cpu']) == 0
    lr = cv2.imread(str(workspace / 'val' / 'LR' / '000.png'))
    sr = cv2.imread(str(tmp_path / 'sr' / '000_sr.png'))
    assert sr.shape == (lr.shape[0] * SCALE, lr.shape[1] * SCALE, 3)

    card = tmp_path / 'card.md'
    assert card_main(['-opt', opt_path, '--checkpoint', checkpoint, '--lr-size', '16', '--repeats', '1',
                      '--device', 'cpu', '--out', str(card)]) == 0
    text = card.read_text()
    # the cost table's rows: the spandrel student by its architecture, and the teacher
    assert re.search(r'^\| student \| [^|]*SAFMN[^|]*\| \d+\.\d{3}M \|', text, re.M), text
    assert re.search(r'^\| teacher \| [^|]+\| \d+\.\d{3}M \|', text, re.M), text
    capsys.readouterr()


class _Untraceable(torch.nn.Module):
    """An SR net with an op no ONNX opset has (like ATD's Sort with an out parameter)."""

    def __init__(self):
        super().__init__()
        self.conv, self.shuffle = torch.nn.Conv2d(3, 3 * SCALE**2, 3, padding=1), torch.nn.PixelShuffle(SCALE)

    def forward(self, x):
        y = self.shuffle(self.conv(x))
        return y + 0 * torch.linalg.svdvals(y[:, :, :4, :4]).sum()


def test_a_network_onnx_cannot_express_is_refused_with_the_way_out(tmp_path, capfd):
    from dukd_arch.export import export_onnx
    with pytest.raises(ValueError, match=r'_Untraceable does not export to ONNX with torch .*svdvals.*--safetensors'):
        export_onnx(_Untraceable().eval(), str(tmp_path / 's.onnx'), lr_size=8)
    assert 'graph' not in capfd.readouterr().out  # torch's graph dump of the failed attempts is not shown


@pytest.mark.parametrize('name, architecture', [('compact', 'Compact'), ('span', 'SPAN'), ('safmn', 'SAFMN')])
def test_exported_students_open_in_spandrel_with_equal_outputs(trained, tmp_path, name, architecture):
    opt_path, checkpoint = trained[name]
    out = tmp_path / 'export'
    assert export_main(['-opt', opt_path, '--checkpoint', checkpoint, '--out', str(out), '--safetensors',
                        '--pth']) == 0
    ours = load_student(str(out / 'student.safetensors'))
    x = torch.rand(1, 3, 24, 16, generator=torch.Generator().manual_seed(0))  # multiples of SAFMN's 8
    with torch.no_grad():
        want = ours(x)
    for file in ('student.safetensors', 'student.pth'):
        descriptor = spandrel.ModelLoader().load_from_file(str(out / file))
        assert descriptor.architecture.id == architecture, file
        assert descriptor.scale == SCALE and descriptor.input_channels == descriptor.output_channels == 3, file
        descriptor.model.eval()
        with torch.no_grad():
            raw, image = descriptor.model(x), descriptor(x)  # a front-end's call clamps to [0, 1]
        assert raw.shape == want.shape and (raw - want).abs().max().item() <= 1e-5, file
        assert (image - want.clamp(0, 1)).abs().max().item() <= 1e-5, file
    # the file holds the deployed weights: a SPAN re-parameterised from its branches is what the file says
    state = torch.load(out / 'student.pth', weights_only=True)
    assert set(state) == set(ours.state_dict())
    assert all(torch.equal(state[k], v) for k, v in ours.state_dict().items())


# ---- the shipped option files ------------------------------------------------------------------------------


@pytest.mark.parametrize('name', ['dukd_span_x4', 'kd_safmn_x4'])
def test_shipped_spandrel_option_files_train_a_step_as_smoke_copies(name, tmp_path_factory):
    """The CPU-sized copy (scripts/smoke_options.py) of a shipped file builds its SwinIR-M teacher and spandrel
    student and trains a step with every loss term of the file (random teacher weights: only the mechanics)."""
    import importlib.util

    from basicsr.data import build_dataset
    from basicsr.models import build_model

    data = tmp_path_factory.mktemp('data')
    for split, n, size in (('train', 2, 128), ('val', 1, 64)):
        write_pairs(str(data / split), n=n, size=size, scale=4)
        os.rename(data / split / 'LR', data / split / 'X4')
        os.makedirs(data / split / 'LR_bicubic')
        os.rename(data / split / 'X4', data / split / 'LR_bicubic' / 'X4')
    spec = importlib.util.spec_from_file_location('smoke_options', f'{REPO}/scripts/smoke_options.py')
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    opt, _ = smoke.smoke_options(_shipped(name), str(data), iters=1, batch=1)
    torch.manual_seed(0)
    teacher = data / 'teacher.pth'
    torch.save({'params': build_network(dict(opt['network_t'])).state_dict()}, teacher)
    opt['path'].update(pretrain_network_t=str(teacher), models=str(data / 'm'), training_states=str(data / 's'),
                       experiments_root=str(data))
    opt.update(dist=False, rank=0, world_size=1, is_train=True)
    validate_options({k: v for k, v in opt.items() if k not in ('dist', 'rank', 'world_size', 'is_train')})
    train_set = dict(opt['datasets']['train'], phase='train', scale=4)
    item = build_dataset(train_set)[0]
    model = build_model(opt)
    model.feed_data({k: v.unsqueeze(0) for k, v in item.items() if torch.is_tensor(v)})
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert all(np.isfinite(v) for v in log.values())
    assert ('l_zoom_in' in log) == name.startswith('dukd') and 'l_kd' in log


# ---- DDP ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('net', [SPAN, SAFMN], ids=['span', 'safmn'])
def test_two_ddp_ranks_train_a_spandrel_student_identically(tmp_path, net):
    """SPAN's deployed convolutions (eval_conv) are parameters that training never uses: DDP must not stall."""
    from pipeline_opts import pipeline_options, run_two_cpu_ranks, write_options
    opt = pipeline_options(str(tmp_path), name='ddp', total_iter=3, save_freq=3, n_images=8, batch=2,
                           dataset_extra={'gt_size': 32})
    opt['network_g'] = dict(net)
    saved = "{'g': {k: v.detach().clone() for k, v in m.get_bare_model(m.net_g).state_dict().items()}}"
    r0, r1 = run_two_cpu_ranks(tmp_path, write_options(opt, tmp_path / 'ddp.yml'), saved)
    assert all(torch.equal(r0['g'][k], r1['g'][k]) for k in r0['g'])
