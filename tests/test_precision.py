"""Mixed precision, channels_last and torch.compile options of KDModel/DUKDModel, on the CPU."""
import math

import pytest
import torch

from basicsr.models import build_model
from conftest import make_opt
from dukd_arch.training.precision import parse_amp, parse_compile


def _run(model, batch, n=2):
    for it in range(1, n + 1):
        model.feed_data(batch)
        model.optimize_parameters(it)
    return model.get_current_log()


def test_amp_option_forms():
    assert parse_amp(None, 'x') is None and parse_amp(False, 'x') is None and parse_amp('fp32', 'x') is None
    assert parse_amp({'enabled': False, 'dtype': 'fp16'}, 'x') is None
    assert parse_amp({'enabled': True, 'dtype': 'fp16'}, 'x') is torch.float16
    assert parse_amp('bf16', 'x') is torch.bfloat16
    with pytest.raises(ValueError, match='train.amp: dtype .fp8'):
        parse_amp({'enabled': True, 'dtype': 'fp8'}, 'train.amp')
    with pytest.raises(ValueError, match='unknown key'):
        parse_amp({'enable': True}, 'train.amp')
    assert parse_compile(False) is None and parse_compile(True) == {'dynamic': False}
    with pytest.raises(ValueError, match='torch.compile'):
        parse_compile('yes')


def test_bf16_student_and_teacher_run_in_bf16_and_stay_finite(tmp_path, batch):
    opt = make_opt(tmp_path, train_extra={'amp': {'enabled': True, 'dtype': 'bf16'}, 'teacher_amp': 'bf16'})
    model = build_model(opt)
    assert not model.grad_scaler.is_enabled(), 'bf16 needs no grad scaler'
    seen = []
    hooks = [net.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
             for net in (model.get_bare_model(model.net_g).conv_first, model.net_t.conv_first)]
    before = {k: v.clone() for k, v in model.get_bare_model(model.net_g).state_dict().items()}
    log = _run(model, batch)
    for h in hooks:
        h.remove()
    assert seen and all(d == torch.bfloat16 for d in seen), seen
    assert all(math.isfinite(v) for v in log.values()), log
    after = model.get_bare_model(model.net_g).state_dict()
    assert all(v.dtype == torch.float32 for v in after.values()), 'master weights stay fp32'
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_fp16_uses_a_grad_scaler_that_scales_the_loss(tmp_path, batch):
    model = build_model(make_opt(tmp_path, train_extra={'amp': {'enabled': True, 'dtype': 'fp16'}}))
    scaler = model.grad_scaler
    try:  # the fallback (fp16 unscaled) only where this torch has no enabled GradScaler for the device
        available = torch.amp.GradScaler(model.device.type).is_enabled()
    except (RuntimeError, ValueError, AssertionError):
        available = False
    assert scaler.is_enabled() == available
    if not available:
        log = _run(model, batch)
        assert all(math.isfinite(v) for v in log.values())
        return
    scales = []
    original = scaler.update
    scaler.update = lambda *a, **k: (scales.append(scaler.get_scale()), original(*a, **k))[1]
    log = _run(model, batch, 3)
    assert all(math.isfinite(v) for v in log.values()), log
    assert len(scales) == 3 and scales[0] > 1, 'the fp16 loss must be scaled before backward'


def test_fp16_two_step_is_refused(tmp_path):
    opt = make_opt(tmp_path, train_extra={'amp': 'fp16'})
    opt['train']['dukd_opt']['two_step'] = True
    with pytest.raises(ValueError, match=r'two_step .*fp16 GradScaler.*bf16'):
        build_model(opt)


def test_channels_last_student_and_teacher(tmp_path, batch):
    model = build_model(make_opt(tmp_path, train_extra={'channels_last': True}))
    w = model.get_bare_model(model.net_g).conv_first.weight
    assert w.is_contiguous(memory_format=torch.channels_last)
    assert model.net_t.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    log = _run(model, batch)
    assert all(math.isfinite(v) for v in log.values())


def test_compile_wraps_only_the_training_forward(tmp_path, batch):
    # the eager backend checks the wiring without a C++ toolchain; the benchmark measures real inductor speed
    model = build_model(make_opt(tmp_path, train_extra={'compile': {'backend': 'eager'}}))
    assert model.net_g_train is not model.net_g
    log = _run(model, batch, 1)
    assert math.isfinite(log['l_total'])
    keys = model.get_bare_model(model.net_g).state_dict().keys()
    assert not any(k.startswith('_orig_mod') for k in keys), 'saved weights must not carry compile prefixes'


def test_channels_last_and_bf16_with_a_swinir_student(tmp_path, batch):
    swin = {'type': 'SwinIR', 'upscale': 2, 'in_chans': 3, 'img_size': 8, 'window_size': 4, 'img_range': 1.,
            'depths': [1], 'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle'}
    opt = make_opt(tmp_path, network_g=swin, train_extra={'channels_last': True, 'amp': 'bf16'})
    log = _run(build_model(opt), batch, 1)  # window padding + NHWC layout + autocast together
    assert all(math.isfinite(v) for v in log.values()), log
