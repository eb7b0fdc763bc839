"""Model card (cost, speed, quality) and student export (ONNX + plain weights) on tiny networks."""
import copy
import math

import pytest
import torch
import yaml

import dukd_arch  # noqa: F401
from basicsr.archs.edsr_arch import EDSR
from dukd_arch.card import count_flops, count_parameters, main as card_main, measure_latency, write_model_card

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
    card_file = checkpoint.rsplit('/models/', 1)[0] + '/model_card.md'
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
