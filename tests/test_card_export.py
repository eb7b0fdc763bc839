"""Model card (cost, speed, quality) and student export (ONNX + plain weights) on tiny networks."""
import copy
import json
import math

import numpy as np
import pytest
import torch
import yaml

import dukd_arch  # noqa: F401
from basicsr.archs.edsr_arch import EDSR
from dukd_arch.card import count_flops, count_parameters, main as card_main, measure_latency, write_model_card
from dukd_arch.export import main as export_main

from conftest import SCALE, TINY_EDSR, TINY_TEACHER, save_teacher, write_pairs


def _edsr(net_opt, seed):
    torch.manual_seed(seed)
    return EDSR(**{k: v for k, v in net_opt.items() if k != 'type'}).eval()


def _conv_flops(c_in, c_out, pixels, k=3):
    return 2 * k * k * c_in * c_out * pixels


def test_flops_match_the_convolution_count():
    f, lr = TINY_EDSR['num_feat'], 16
    net = _edsr(TINY_EDSR, 0)
    hw, hw_out = lr * lr, (lr * SCALE)**2
    expected = (_conv_flops(3, f, hw) + 2 * TINY_EDSR['num_block'] * _conv_flops(f, f, hw) + _conv_flops(f, f, hw)
                + _conv_flops(f, 4 * f, hw) + _conv_flops(f, 3, hw_out))
    assert count_flops(net, lr, SCALE) == expected
    assert count_parameters(net) == sum(p.numel() for p in net.parameters())
    latency = measure_latency(net, lr, SCALE, repeats=3, warmup=1)
    assert 0 < latency < 10_000


@pytest.fixture
def experiment(tmp_path):
    """Options file with a 2-image validation set, a teacher file and a student checkpoint whose EMA
    weights equal the teacher's (its ``params`` are noise): the card must score the EMA weights."""
    hr, lr = write_pairs(str(tmp_path / 'val'), 2, 24)
    teacher_path = str(tmp_path / 'teacher.pth')
    teacher = save_teacher(teacher_path).eval()
    noise = _edsr(TINY_TEACHER, 1)
    models = tmp_path / 'experiments' / 'unit' / 'models'
    models.mkdir(parents=True)
    checkpoint = str(models / 'net_g_latest.pth')
    torch.save({'params': noise.state_dict(), 'params_ema': teacher.state_dict()}, checkpoint)
    opt = {
        'name': 'unit', 'model_type': 'DUKD', 'scale': SCALE,
        'network_g': copy.deepcopy(TINY_TEACHER), 'network_t': copy.deepcopy(TINY_TEACHER),
        'path': {'pretrain_network_t': teacher_path},
        'datasets': {'val': {'name': 'tiny', 'type': 'UpcyclingPairedImageDataset', 'dataroot_gt': hr,
                             'dataroot_lq': lr, 'io_backend': {'type': 'disk'}}},
    }
    opt_path = tmp_path / 'opt.yml'
    opt_path.write_text(yaml.safe_dump(opt))
    return opt, str(opt_path), checkpoint, teacher


Q = '## Quality'


def _table_value(text, role_prefix, column, section='# Model card'):
    for line in text.split(section, 1)[1].splitlines():
        if line.startswith(f'| {role_prefix} |'):
            return line.split('|')[column].strip()
    raise AssertionError(f'no row {role_prefix!r} in\n{text}')


def test_card_cli_scores_the_ema_student(experiment, capsys):
    opt, opt_path, checkpoint, _ = experiment
    assert card_main(['-opt', opt_path, '--checkpoint', checkpoint, '--lr-size', '16', '--device', 'cpu',
                      '--repeats', '2']) == 0
    text = capsys.readouterr().out
    card_file = checkpoint.rsplit('/models/', 1)[0] + '/model_card_net_g_latest.md'  # model_card.md is training's
    assert open(card_file).read() in text
    assert '## Quality on tiny (Y channel, crop border 2)' in text
    # the EMA weights are the teacher's: same PSNR, and identical outputs
    assert _table_value(text, 'student', 2, Q) == _table_value(text, 'teacher', 2, Q)
    assert _table_value(text, 'student vs teacher output', 2, Q) == 'inf'
    assert 'params_ema' in text
    assert 'Student / teacher: 100.0% of the parameters' in text


def test_card_without_checkpoint_reports_cost_only(experiment, tmp_path, capsys):
    _, opt_path, _, _ = experiment
    out = str(tmp_path / 'card.md')
    assert card_main(['-opt', opt_path, '--lr-size', '16', '--device', 'cpu', '--repeats', '1', '--out', out]) == 0
    text = open(out).read()
    assert 'Quality' not in text and 'untrained student' in text
    assert float(_table_value(text, 'student', 4)) == pytest.approx(
        count_flops(_edsr(TINY_TEACHER, 0), 16, SCALE) / 1e9, rel=1e-2)


def test_write_model_card_after_training_keeps_train_mode(experiment, tmp_path):
    opt, _, _, teacher = experiment
    student = _edsr(TINY_EDSR, 3).train()
    text = write_model_card(opt, student, teacher, str(tmp_path / 'm.md'), lr_size=16, repeats=1)
    assert student.training and not teacher.training
    psnr_student = float(_table_value(text, 'student', 2, Q))
    psnr_teacher = float(_table_value(text, 'teacher', 2, Q))
    assert math.isfinite(psnr_student) and psnr_student != psnr_teacher
    assert (tmp_path / 'm.md').read_text() == text


# ---- export ------------------------------------------------------------------------------------------------


def test_export_onnx_matches_pytorch_and_weights_rebuild_without_dukd(experiment, tmp_path, capsys):
    opt, opt_path, checkpoint, teacher = experiment  # the checkpoint's EMA weights are the teacher's
    out = tmp_path / 'export'
    assert export_main(['-opt', opt_path, '--checkpoint', checkpoint, '--out', str(out), '--lr-size', '16']) == 0
    assert 'params_ema' in capsys.readouterr().out
    report = json.loads((out / 'parity.json').read_text())
    assert report['dynamic'] is True  # EDSR is fully convolutional
    assert set(report['max_abs_diff']) == {'1x3x16x16', '2x3x24x17'}
    assert max(report['max_abs_diff'].values()) < 1e-4

    import onnxruntime as ort
    session = ort.InferenceSession(str(out / 'student.onnx'), providers=['CPUExecutionProvider'])
    x = torch.rand(1, 3, 11, 7)  # a size never seen in the export: independent parity check
    with torch.no_grad():
        want = teacher(x).numpy()
    assert np.abs(session.run(None, {'lr': x.numpy()})[0] - want).max() < 1e-4

    # plain safetensors + metadata are enough to rebuild the network with basicsr alone
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(str(out / 'student.safetensors'), 'pt') as f:
        meta = f.metadata()
    net_opt = json.loads(meta['network_g'])
    assert meta['scale'] == str(SCALE) and net_opt['type'] == 'EDSR'
    rebuilt = EDSR(**{k: v for k, v in net_opt.items() if k != 'type'}).eval()
    rebuilt.load_state_dict(load_file(str(out / 'student.safetensors')))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), teacher(x))


def test_export_refuses_a_checkpoint_of_another_architecture(experiment, tmp_path, capsys):
    _, opt_path, _, _ = experiment
    wrong = str(tmp_path / 'wrong.pth')
    torch.save({'params': _edsr(TINY_EDSR, 0).state_dict()}, wrong)  # 8 features, options say 12
    assert export_main(['-opt', opt_path, '--checkpoint', wrong, '--out', str(tmp_path / 'x')]) == 1
    err = capsys.readouterr().err
    assert 'wrong.pth' in err and 'shape mismatches' in err


def test_window_attention_student_falls_back_to_a_fixed_size_export(tmp_path):
    from basicsr.archs.swinir_arch import SwinIR
    from dukd_arch.export import export_onnx
    torch.manual_seed(0)
    net = SwinIR(upscale=2, in_chans=3, img_size=8, window_size=4, img_range=1., depths=[2], embed_dim=8,
                 num_heads=[2], mlp_ratio=2, upsampler='pixelshuffle').eval()
    with pytest.raises(ValueError, match='multiple of the network window size 4'):
        export_onnx(net, str(tmp_path / 's.onnx'), lr_size=10)
    report = export_onnx(net, str(tmp_path / 's.onnx'), lr_size=8)
    # tracing bakes the shifted-window attention mask of the traced size into the graph: other sizes run but
    # give slightly wrong images (about 2e-4 here), so only the traced size is exported
    assert report['dynamic'] is False
    assert list(report['max_abs_diff']) == ['1x3x8x8'] and report['max_abs_diff']['1x3x8x8'] < 1e-4
