"""Quantization-aware students: quantizers, quantized archs, FP-checkpoint loading, export, DUKD training."""
import json
import math

import pytest
import torch
import yaml
from torch import nn

import dukd_arch  # noqa: F401  (registers the archs)
from basicsr.archs import build_network
from basicsr.archs.edsr_arch import EDSR
from conftest import tool_options
from dukd_arch.archs.quant_layers import (QUANT_LAYERS, QuantConv2d, QuantLinear, describe_quantization,
                                          initialize_quantizers, load_full_precision, quantizer_state_keys,
                                          uninitialized_quantizers)
from dukd_arch.ops.quantize import ActivationQuantizer, fake_quantize_weight, round_ste
from dukd_arch.archs.quant_export import dequantized_weights, export_tensors, load_quantized, save_quantized

EDSR_ARGS = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=2)
RCAN_ARGS = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=1, num_block=2, squeeze_factor=4, upscale=2)
SWINIR_ARGS = dict(upscale=2, in_chans=3, img_size=8, window_size=4, img_range=1., depths=[2], embed_dim=8,
                   num_heads=[2], mlp_ratio=2, upsampler='pixelshuffle', resi_connection='1conv')


def _quant_edsr(bits=4, **kw):
    return build_network(dict(type='QuantEDSR', w_bits=bits, a_bits=bits, **EDSR_ARGS, **kw))


def _nets(bits):
    return [
        _quant_edsr(bits),
        build_network(dict(type='QuantRCAN', w_bits=bits, a_bits=bits, quant_attention=True, **RCAN_ARGS)),
        build_network(dict(type='QuantSwinIR', w_bits=bits, a_bits=bits, quant_rstb_conv=True, **SWINIR_ARGS)),
    ]


def test_round_ste_rounds_forward_and_passes_gradient():
    x = torch.tensor([0.2, 0.7, -1.4, 2.5], requires_grad=True)
    y = round_ste(x)
    assert torch.equal(y, torch.round(x.detach()))
    (y * torch.arange(4.)).sum().backward()
    assert torch.equal(x.grad, torch.arange(4.))


@pytest.mark.parametrize('bits', [2, 3, 4, 8])
def test_every_quantized_layer_uses_at_most_2k_weight_and_activation_levels(bits):
    torch.manual_seed(bits)
    for net in _nets(bits):
        seen = {}
        hooks = [m.act_quant.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, out.detach()))
                 for n, m in net.named_modules() if isinstance(m, QUANT_LAYERS)]
        net.train()
        net(torch.rand(2, 3, 8, 8))
        for h in hooks:
            h.remove()
        layers = [(n, m) for n, m in net.named_modules() if isinstance(m, QUANT_LAYERS)]
        assert layers and len(seen) == len(layers)
        for name, m in layers:
            wq = m.weight_quant(m.weight).detach().flatten(1)
            assert max(len(torch.unique(row)) for row in wq) <= 2**bits, name
            act = seen[name]
            assert len(torch.unique(act)) <= 2**bits, name
            if not m.act_quant.signed:
                assert act.min() >= 0, name


def test_unsigned_mode_spends_all_levels_on_nonnegative_inputs():
    ramp = torch.linspace(-1, 1, 1001)
    unsigned, signed = ActivationQuantizer(2, signed=False), ActivationQuantizer(2, signed=True)
    for q in (unsigned, signed):
        q.train()
        q(ramp)
    assert len(torch.unique(unsigned(ramp.clamp_min(0)))) == 4  # 0, 1/3, 2/3, 1 of the clip
    assert len(torch.unique(signed(ramp))) == 3  # -clip, 0, clip


def test_weights_are_symmetric_per_output_channel():
    w = torch.randn(4, 3, 3, 3) * torch.tensor([0.01, 1., 10., 100.]).view(4, 1, 1, 1)
    wq = fake_quantize_weight(w, 4)
    for c in range(4):  # each channel keeps its own range: its max magnitude survives exactly
        assert torch.allclose(wq[c].abs().max(), w[c].abs().max())
        steps = torch.unique(wq[c]) / (w[c].abs().max() / 7)
        assert torch.allclose(steps, steps.round(), atol=1e-4)


def test_gradients_reach_weights_and_clip_values():
    torch.manual_seed(0)
    net = _quant_edsr(bits=2)
    net.train()
    net(torch.rand(2, 3, 8, 8)).abs().mean().backward()
    for name, m in net.named_modules():
        if isinstance(m, QUANT_LAYERS):
            assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0, name
            assert m.act_quant.clip_gain.grad is not None and m.act_quant.clip_gain.grad != 0, name
    # inputs beyond the clip pass their gradient to the clip only
    q = ActivationQuantizer(4, signed=True)
    q.train()
    q(torch.tensor([1.0]))  # initialises the clip at 1
    x = torch.tensor([3.0, -3.0, 0.5], requires_grad=True)
    q(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]
    assert q.clip_gain.grad is not None


def test_linear_and_conv_keep_nn_parameter_names():
    conv, lin = QuantConv2d(4, 5, 3, padding=1), QuantLinear(4, 5)
    assert {'weight', 'bias'} <= set(dict(conv.named_parameters())) and {'weight', 'bias'} <= set(
        dict(lin.named_parameters()))
    assert isinstance(conv, nn.Conv2d) and isinstance(lin, nn.Linear)


def test_full_precision_checkpoint_loads_and_reports_only_quantizer_keys():
    fp, q = EDSR(**EDSR_ARGS), _quant_edsr()
    added = load_full_precision(q, fp.state_dict())
    assert added and all('.act_quant.' in k or k.endswith('.weight_quant.num_bits') for k in added)
    assert set(added) == set(quantizer_state_keys(q))
    assert set(q.state_dict()) - set(added) == set(fp.state_dict())
    assert all(torch.equal(q.state_dict()[k], v) for k, v in fp.state_dict().items())
    # strict loading through the arch itself accepts the missing quantizer state (BasicSR's load path)
    q.load_state_dict(fp.state_dict(), strict=True)
    with pytest.raises(ValueError, match='missing'):
        load_full_precision(q, {k: v for k, v in fp.state_dict().items() if k != 'conv_last.bias'})
    with pytest.raises(ValueError, match='unexpected'):
        load_full_precision(q, {**fp.state_dict(), 'extra.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='shape'):
        load_full_precision(q, EDSR(**{**EDSR_ARGS, 'num_feat': 4}).state_dict())
    with pytest.raises(RuntimeError, match='Missing'):
        q.load_state_dict({k: v for k, v in fp.state_dict().items() if k != 'conv_last.bias'}, strict=True)


def test_head_upsampler_and_tail_stay_full_precision():
    for net in _nets(4):
        d = describe_quantization(net)
        assert d['w_bits'] == 4 and d['a_bits'] == 4
        fp = d['full_precision']
        assert 'conv_first' in fp and 'conv_last' in fp and any(n.startswith('upsample') for n in fp)
        assert not any(q['name'] in ('conv_first', 'conv_last') for q in d['quantized'])


def test_clip_initialises_from_data_once_and_travels_in_the_state_dict():
    torch.manual_seed(0)
    net = _quant_edsr()
    x = torch.rand(2, 3, 8, 8)
    net.eval()
    with torch.no_grad():  # eval before init (the model's shape probe): no quantization, no clip set
        probe = net(x)
    assert probe.shape == (2, 3, 16, 16) and len(uninitialized_quantizers(net)) == 4
    fresh = ActivationQuantizer(2, signed=True).eval()
    assert torch.equal(fresh(10 * x), 10 * x)
    net.train()
    net(x)
    aqs = [m for m in net.modules() if isinstance(m, ActivationQuantizer)]
    first = [float(a.clip_init) for a in aqs]
    assert all(bool(a.initialized) for a in aqs) and all(v > 0 and v != 1.0 for v in first)
    net(10 * x)  # a very different batch does not re-initialise
    assert [float(a.clip_init) for a in aqs] == first
    other = _quant_edsr()
    other.load_state_dict(net.state_dict())
    net.eval()
    other.eval()
    assert torch.equal(net(x), other(x))
    calibrated = _quant_edsr()
    calibrated.eval()
    assert initialize_quantizers(calibrated, x) == len(aqs) and not calibrated.training
    calibrated(x)


def test_averaging_parameters_and_copying_buffers_keeps_the_data_clip():
    # what an EMA that averages parameters and copies buffers sees right after the first update
    torch.manual_seed(0)
    net, ema = _quant_edsr(), _quant_edsr()
    ema.load_state_dict(net.state_dict())
    net.train()
    net(torch.rand(2, 3, 8, 8))
    with torch.no_grad():
        for p_ema, p in zip(ema.parameters(), net.parameters()):
            p_ema.mul_(0.999).add_(p, alpha=0.001)
        for b_ema, b in zip(ema.buffers(), net.buffers()):
            b_ema.copy_(b)
    for (n, a), (_, b) in zip(net.named_modules(), ema.named_modules()):
        if isinstance(a, ActivationQuantizer):
            assert torch.allclose(a.clip(), b.clip()), n


def test_export_reconstructs_the_fake_quantized_weights_exactly(tmp_path):
    torch.manual_seed(0)
    for net in _nets(3):
        net.train()
        net(torch.rand(1, 3, 8, 8))
        path = str(tmp_path / f'{type(net).__name__}.safetensors')
        save_quantized(net, path)
        tensors, meta = load_quantized(path)
        rebuilt = dequantized_weights(tensors, meta)
        layers = json.loads(meta['quantization'])
        assert meta['w_bits'] == '3' and 'conv_first' in json.loads(meta['full_precision'])
        for name, m in net.named_modules():
            if isinstance(m, QUANT_LAYERS):
                assert tensors[f'{name}.weight_int'].dtype == torch.int8
                assert tensors[f'{name}.weight_int'].abs().max() <= 3
                assert torch.equal(rebuilt[f'{name}.weight'], m.weight_quant(m.weight).detach()), name
                assert torch.equal(tensors[f'{name}.act_clip'], m.act_quant.clip().detach()), name
                assert layers[name]['a_signed'] == m.act_quant.signed
        assert torch.equal(tensors['conv_first.weight'], net.conv_first.weight.detach())
    with pytest.raises(ValueError, match='never initialised'):
        export_tensors(_quant_edsr())


def test_export_cli_prefers_ema_weights(tmp_path):
    from dukd_arch.quant_export import main
    torch.manual_seed(0)
    net, ema = _quant_edsr(), _quant_edsr()
    for n in (net, ema):
        n.train()
        n(torch.rand(1, 3, 8, 8))
    ckpt = tmp_path / 'net_g_10.pth'
    torch.save({'params': net.state_dict(), 'params_ema': ema.state_dict()}, ckpt)
    opt = tmp_path / 'opt.yml'
    opt.write_text(yaml.safe_dump(tool_options({'type': 'QuantEDSR', 'w_bits': 4, 'a_bits': 4, **EDSR_ARGS})))
    out = tmp_path / 'out.safetensors'
    main(['-opt', str(opt), str(ckpt), str(out)])
    tensors, meta = load_quantized(str(out))
    assert torch.equal(dequantized_weights(tensors, meta)['body.0.conv1.weight'],
                       ema.body[0].conv1.weight_quant(ema.body[0].conv1.weight).detach())


def test_a_checkpoint_records_its_bit_widths_and_a_network_of_other_widths_refuses_it(tmp_path):
    # a W2A2 student exported (or tested) through W8A8 options gave 8-bit codes from 2-bit clips, without a word
    from dukd_arch.quant_export import main
    torch.manual_seed(0)
    w2 = _quant_edsr(bits=2)
    w2.train()
    w2(torch.rand(1, 3, 8, 8))
    state = w2.state_dict()
    assert int(state['body.0.conv1.weight_quant.num_bits']) == 2 and int(state['body.0.conv1.act_quant.num_bits']) == 2
    w8 = _quant_edsr(bits=8)
    with pytest.raises(ValueError, match=r'w_bits: 2 in the checkpoint, 8 in the network .*a_bits: 2 in the '
                                         r'checkpoint, 8 in the network'):
        w8.load_state_dict(state)
    _quant_edsr(bits=2).load_state_dict(state)  # the widths it was trained at load
    w8.load_state_dict(state, strict=False)  # on purpose (strict_load_g: false): the record stays the network's
    assert int(w8.state_dict()['body.0.conv1.weight_quant.num_bits']) == 8
    torch.save({'params': state}, tmp_path / 'w2.pth')
    opt = tmp_path / 'w8.yml'
    opt.write_text(yaml.safe_dump(tool_options({'type': 'QuantEDSR', 'w_bits': 8, 'a_bits': 8, **EDSR_ARGS})))
    with pytest.raises(SystemExit) as stop:
        main(['-opt', str(opt), str(tmp_path / 'w2.pth'), str(tmp_path / 'out.safetensors')])
    assert 'w_bits: 2 in the checkpoint, 8 in the network' in str(stop.value.code)
    assert not (tmp_path / 'out.safetensors').exists()


def test_bad_bit_width_is_a_clear_error():
    with pytest.raises(ValueError, match='w_bits must be an integer from 2 to 8'):
        _quant_edsr(bits=1)
    with pytest.raises(ValueError, match='a_bits'):
        build_network(dict(type='QuantEDSR', w_bits=4, a_bits=16, **EDSR_ARGS))


def test_quantized_student_trains_under_dukd_and_its_ema_carries_quantizer_state(tmp_path, batch):
    from basicsr.models import build_model
    from conftest import TINY_EDSR, make_opt
    torch.manual_seed(0)
    fp_args = {k: v for k, v in TINY_EDSR.items() if k != 'type'}
    fp = EDSR(**fp_args)
    fp_path = tmp_path / 'student_fp.pth'
    torch.save({'params': fp.state_dict()}, fp_path)
    opt = make_opt(tmp_path)
    opt['network_g'] = {**TINY_EDSR, 'type': 'QuantEDSR', 'w_bits': 4, 'a_bits': 4}
    opt['path'].update(pretrain_network_g=str(fp_path), strict_load_g=True, param_key_g='params')
    model = build_model(opt)
    net, ema = model.net_g, model.net_g_ema
    assert all(torch.equal(net.state_dict()[k], v) for k, v in fp.state_dict().items())
    assert uninitialized_quantizers(net)  # the start-up scale probe ran in eval mode and set nothing
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        assert all(math.isfinite(float(v)) for v in model.get_current_log().values())
    assert not uninitialized_quantizers(net) and not uninitialized_quantizers(ema)
    for (name, a), (_, b) in zip(net.named_modules(), ema.named_modules()):
        if isinstance(a, ActivationQuantizer):
            assert torch.equal(a.clip_init, b.clip_init), name  # buffers copied
            assert torch.allclose(a.clip(), b.clip(), rtol=1e-2), name  # gains: both started at 1, 2 small steps
    assert any(not torch.equal(net.state_dict()[k], v) for k, v in fp.state_dict().items())
    model.test()  # EMA student in eval mode: activations are quantized
    assert model.output.shape == batch['gt'].shape
    model.save(0, 2)
    saved = torch.load(tmp_path / 'models' / 'net_g_2.pth', weights_only=True)
    assert set(quantizer_state_keys(ema)) <= set(saved['params_ema'])



@pytest.mark.parametrize('student', [{'type': 'QuantRCAN', 'quant_attention': True, **RCAN_ARGS},
                                     {'type': 'QuantSwinIR', **SWINIR_ARGS}])
def test_quantized_rcan_and_swinir_train_under_dukd(tmp_path, batch, student):
    from basicsr.models import build_model
    from conftest import make_opt
    opt = make_opt(tmp_path)
    opt['network_g'] = {**student, 'w_bits': 3, 'a_bits': 3}
    model = build_model(opt)
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert all(math.isfinite(float(v)) for v in model.get_current_log().values())
    assert not uninitialized_quantizers(model.net_g_ema)
    model.test()
    assert model.output.shape == batch['gt'].shape

@pytest.mark.parametrize('name', ['edsr_x4_w8a8', 'edsr_x4_w4a4', 'edsr_x4_w3a3', 'edsr_x4_w2a2', 'rcan_x4_w4a4',
                                  'swinir_x4_w4a4'])
def test_shipped_options_build_the_quantized_student(name):
    import os
    import yaml
    from dukd_arch.models.dukd_options import parse_dukd_options
    root = os.path.join(os.path.dirname(__file__), os.pardir, 'options')
    bits = int(name[-1])
    with open(os.path.join(root, f'dukd_{name}.yml')) as f:
        train = yaml.safe_load(f)
    with open(os.path.join(root, 'test', f'test_dukd_{name}.yml')) as f:
        test = yaml.safe_load(f)
    assert train['network_g'] == test['network_g']
    assert train['path']['pretrain_network_g'].startswith(f'experiments/{train["name"][:-5]}/')
    assert test['path']['pretrain_network_g'].startswith(f'experiments/{train["name"]}/')
    parse_dukd_options(train['train'])
    net = build_network(dict(train['network_g']))
    d = describe_quantization(net)
    assert d['w_bits'] == bits and d['a_bits'] == bits and 'conv_last' in d['full_precision']
