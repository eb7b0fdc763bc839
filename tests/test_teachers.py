"""Teachers from the files users own: original RCAN / EDSR releases, spandrel-detected models, safe loading."""
import argparse
import logging
import math
import pathlib

import pytest
import torch
from torch import nn

import dukd_arch  # noqa: F401  (registers archs, patches basicsr)
from basicsr.archs import build_network
from basicsr.archs.edsr_arch import EDSR
from basicsr.archs.rcan_arch import RCAN
from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.archs.srvgg_arch import SRVGGNetCompact
from basicsr.archs.swinir_arch import SwinIR
from dukd_arch.convert import main as convert_main
from dukd_arch.ops import forward_padded
from dukd_arch.io.checkpoint import read_checkpoint
from dukd_arch.io.edsr_pytorch_convert import (convert_original_state_dict, edsr_layout, is_original_edsr,
                                              is_original_rcan, original_kind, original_rcan_from_basicsr,
                                              rcan_layout)
from dukd_arch.archs.teacher import build_teacher, probe_scale, window_multiple
from dukd_arch.io.network import load_weights


@pytest.fixture(autouse=True)
def _basicsr_log_reaches_caplog(monkeypatch):
    # basicsr's get_root_logger (called by build_network) turns propagation off on first use
    from basicsr.utils import get_root_logger
    monkeypatch.setattr(get_root_logger(), 'propagate', True)


TINY_RCAN = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_group=2, num_block=2, squeeze_factor=4, upscale=4)


def _randomised(net):
    """Random non-zero weights everywhere, so a wrongly routed tensor changes the output."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return net.eval()


@pytest.fixture(scope='module')
def rcan_pair():
    net = _randomised(RCAN(**TINY_RCAN))
    original = original_rcan_from_basicsr(net.state_dict(), num_group=2, num_block=2)
    return net, original


def test_original_rcan_is_detected_and_its_layout_read(rcan_pair):
    net, original = rcan_pair
    assert is_original_rcan(original)
    assert not is_original_rcan(net.state_dict())
    assert rcan_layout(original) == dict(num_group=2, num_block=2, num_feat=8, squeeze_factor=4)
    assert 'body.0.body.2.weight' in original and 'body.2.weight' in original  # group conv, conv_after_body


def test_conversion_inverts_the_map_and_drops_mean_shift(rcan_pair):
    net, original = rcan_pair
    converted, mean = convert_original_state_dict(original)
    own = net.state_dict()
    assert set(converted) == set(own)
    assert all(torch.equal(converted[k], own[k]) for k in own)
    assert mean == pytest.approx((0.4488, 0.4371, 0.4040), abs=1e-4)


@pytest.mark.parametrize('suffix', ['.pt', '.safetensors'])
def test_original_rcan_file_loads_with_identical_outputs(rcan_pair, tmp_path, caplog, suffix):
    net, original = rcan_pair
    path = str(tmp_path / f'RCAN_BIX4{suffix}')
    if suffix == '.pt':  # the 2018 releases predate torch's zip format
        torch.save(original, path, _use_new_zipfile_serialization=False)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in original.items()}, path)
    fresh = RCAN(**TINY_RCAN).eval()
    with caplog.at_level(logging.INFO, logger='basicsr'):
        used = load_weights(fresh, path, option='network_t')
    assert used == ''
    assert 'original RCAN checkpoint' in caplog.text
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(fresh(x), net(x))


def test_rcan_mean_mismatch_is_reported(rcan_pair, tmp_path, caplog):
    net, _ = rcan_pair
    original = original_rcan_from_basicsr(net.state_dict(), 2, 2, rgb_mean=(0.5, 0.5, 0.5))
    path = str(tmp_path / 'rcan_other_mean.pt')
    torch.save(original, path)
    with caplog.at_level(logging.WARNING, logger='basicsr'):
        load_weights(RCAN(**TINY_RCAN), path)
    assert 'rgb_mean: [0.5, 0.5, 0.5]' in caplog.text


def test_unknown_keys_in_an_rcan_like_file_are_refused(rcan_pair):
    _, original = rcan_pair
    bad = dict(original)
    bad['tail.2.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match='tail.2.weight'):
        convert_original_state_dict(bad, 'weird.pt')


def test_conversion_agrees_with_an_independent_rcan_implementation(rcan_pair):
    # spandrel ships its own port of the original RCAN code: same file, same image
    from spandrel import ModelLoader
    net, original = rcan_pair
    reference = ModelLoader().load_from_state_dict(original).model.eval()
    converted = RCAN(**TINY_RCAN).eval()
    converted.load_state_dict(convert_original_state_dict(original)[0])
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), reference(x), atol=1e-5, rtol=0)


# ---- original EDSR releases (EDSR-PyTorch: edsr_baseline_x2 ... edsr_x4) -------------------------------------
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class _MeanShift(nn.Conv2d):
    """EDSR-PyTorch ``common.MeanShift`` (rgb_std 1): x -/+ rgb_range * mean as a fixed 1x1 conv."""

    def __init__(self, rgb_range, rgb_mean=DIV2K_MEAN, sign=-1):
        super().__init__(3, 3, kernel_size=1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * rgb_range * torch.tensor(rgb_mean)
        self.requires_grad_(False)


def _conv(c_in, c_out):  # common.default_conv
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class _ResBlock(nn.Module):
    """``common.ResBlock`` without BN: body = conv, ReLU, conv; residual scaled by res_scale."""

    def __init__(self, n_feats, res_scale):
        super().__init__()
        self.body = nn.Sequential(_conv(n_feats, n_feats), nn.ReLU(True), _conv(n_feats, n_feats))
        self.res_scale = res_scale

    def forward(self, x):
        return self.body(x).mul(self.res_scale) + x


class _OriginalEDSR(nn.Module):
    """EDSR-PyTorch ``model/edsr.py`` (rgb_range 255), the module structure that names the released keys."""

    def __init__(self, n_feats, n_resblocks, scale, res_scale, rgb_mean=DIV2K_MEAN):
        super().__init__()
        self.sub_mean, self.add_mean = _MeanShift(255, rgb_mean), _MeanShift(255, rgb_mean, sign=1)
        self.head = nn.Sequential(_conv(3, n_feats))
        self.body = nn.Sequential(*[_ResBlock(n_feats, res_scale) for _ in range(n_resblocks)], _conv(n_feats, n_feats))
        if scale == 3:  # common.Upsampler: one conv + shuffle for x3, one per x2 step for 2^n
            up = [_conv(n_feats, 9 * n_feats), nn.PixelShuffle(3)]
        else:
            up = [m for _ in range(int(math.log2(scale))) for m in (_conv(n_feats, 4 * n_feats), nn.PixelShuffle(2))]
        self.tail = nn.Sequential(nn.Sequential(*up), _conv(n_feats, 3))

    def forward(self, x):  # x in [0, 255]
        x = self.head(self.sub_mean(x))
        return self.add_mean(self.tail(self.body(x) + x))


# (scale, num_feat, num_block, res_scale): the baseline (res_scale 1) and large (0.1) settings, tiny widths
EDSR_CASES = [(2, 8, 2, 1.0), (3, 8, 2, 0.1), (4, 12, 3, 0.1)]


def _original_edsr(scale, num_feat, num_block, res_scale, rgb_mean=DIV2K_MEAN):
    torch.manual_seed(scale)
    net = _OriginalEDSR(num_feat, num_block, scale, res_scale, rgb_mean).eval()
    with torch.no_grad():  # random weights everywhere but the fixed MeanShift layers
        for name, p in net.named_parameters():
            if not name.startswith(('sub_mean', 'add_mean')):
                p.copy_(torch.randn_like(p) * 0.1)
    return net


def _edsr_teacher_opt(path, scale, num_feat, num_block, res_scale):
    return {'network_t': {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': num_feat, 'num_block': num_block,
                          'upscale': scale, 'res_scale': res_scale, 'img_range': 255, 'rgb_mean': list(DIV2K_MEAN)},
            'path': {'pretrain_network_t': path}}


@pytest.mark.parametrize('scale, num_feat, num_block, res_scale', EDSR_CASES)
def test_original_edsr_file_loads_with_the_original_outputs(tmp_path, caplog, scale, num_feat, num_block, res_scale):
    original = _original_edsr(scale, num_feat, num_block, res_scale)
    state = original.state_dict()
    assert original_kind(state) == 'EDSR' and not is_original_rcan(state)
    assert edsr_layout(state) == dict(num_in_ch=3, num_out_ch=3, num_feat=num_feat, num_block=num_block, upscale=scale)
    path = str(tmp_path / f'edsr_x{scale}.pt')
    torch.save(state, path, _use_new_zipfile_serialization=scale != 2)  # the 2018 releases predate the zip format
    opt = _edsr_teacher_opt(path, scale, num_feat, num_block, res_scale)
    with caplog.at_level(logging.INFO, logger='basicsr'):
        teacher = build_teacher(opt, torch.device('cpu'))
    assert 'original EDSR checkpoint (EDSR-PyTorch key names) converted to BasicSR EDSR keys' in caplog.text
    assert 'RGB mean' not in caplog.text
    x = torch.rand(2, 3, 9, 7)
    with torch.no_grad():
        diff = (teacher(x) - original(x * 255) / 255).abs().max().item()
    assert diff < 1e-5, diff


def test_original_edsr_mean_mismatch_is_reported(tmp_path, caplog):
    path = str(tmp_path / 'edsr_other_mean.pt')
    torch.save(_original_edsr(*EDSR_CASES[0], rgb_mean=(0.5, 0.5, 0.5)).state_dict(), path)
    with caplog.at_level(logging.WARNING, logger='basicsr'):
        build_teacher(_edsr_teacher_opt(path, *EDSR_CASES[0]), torch.device('cpu'))
    assert 'rgb_mean: [0.5, 0.5, 0.5]' in caplog.text


@pytest.mark.parametrize('wrong', [{'num_block': 3}, {'num_feat': 12}, {'upscale': 4}])
def test_original_edsr_that_does_not_fit_names_the_file_and_its_layout(tmp_path, wrong):
    path = str(tmp_path / 'edsr_baseline_x2.pt')
    torch.save(_original_edsr(*EDSR_CASES[0]).state_dict(), path)
    opt = _edsr_teacher_opt(path, *EDSR_CASES[0])
    opt['network_t'].update(wrong)
    with pytest.raises(ValueError, match='does not fit the network built from `network_t`') as err:
        build_teacher(opt, torch.device('cpu'))
    assert path in str(err.value) and 'Fix `network_t`' in str(err.value)
    assert 'num_feat: 8, num_block: 2, upscale: 2' in str(err.value)


def test_edsr_and_rcan_originals_are_told_apart(rcan_pair, tmp_path):
    _, rcan = rcan_pair
    edsr = _original_edsr(*EDSR_CASES[0]).state_dict()
    assert (original_kind(rcan), original_kind(edsr)) == ('RCAN', 'EDSR')
    assert not is_original_edsr(rcan) and not is_original_rcan(edsr)
    basicsr_edsr = EDSR(3, 3, num_feat=8, num_block=2, upscale=2).state_dict()
    assert original_kind(basicsr_edsr) is None and original_kind(rcan_pair[0].state_dict()) is None
    bad = dict(edsr, **{'body.0.body.1.running_mean': torch.zeros(8)})  # an EDSR with BatchNorm: not convertible
    with pytest.raises(ValueError, match='body.0.body.1.running_mean'):
        convert_original_state_dict(bad, 'edsr_bn.pt')
    # AutoTeacher (spandrel has no EDSR) points at the BasicSR EDSR that loads the file
    path = _save(edsr, str(tmp_path / 'edsr_baseline_x2.pt'), None)
    with pytest.raises(ValueError, match=r'original EDSR-PyTorch EDSR.*type: EDSR, num_in_ch: 3'):
        build_network({'type': 'AutoTeacher', 'path': path, 'scale': 2})


def test_convert_cli_renames_original_edsr(tmp_path, capsys):
    original = _original_edsr(*EDSR_CASES[2])
    src, out = str(tmp_path / 'edsr_x4.pt'), str(tmp_path / 'edsr_x4.safetensors')
    torch.save(original.state_dict(), src)
    assert convert_main([src, out]) == 0
    assert 'original EDSR -> BasicSR EDSR keys' in capsys.readouterr().out
    assert set(read_checkpoint(out)) == set(EDSR(3, 3, num_feat=12, num_block=3, upscale=4).state_dict())


# ---- python -m dukd_arch.convert ----------------------------------------------------------------------------


class _TouchOnLoad:
    """A pickle that runs code when loaded: creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker), ))


@pytest.mark.parametrize('out_name', ['rcan.safetensors', 'rcan.pth'])
def test_convert_cli_renames_original_rcan(rcan_pair, tmp_path, out_name, capsys):
    net, original = rcan_pair
    src, out = str(tmp_path / 'RCAN_BIX4.pt'), str(tmp_path / out_name)
    torch.save(original, src)
    assert convert_main([src, out]) == 0
    assert 'original RCAN -> BasicSR RCAN keys' in capsys.readouterr().out
    fresh = RCAN(**TINY_RCAN).eval()
    used = load_weights(fresh, out)
    assert used == ('' if out.endswith('.safetensors') else 'params')
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(fresh(x), net(x))


def test_pickle_with_objects_is_refused_until_converted_with_unsafe_trust(rcan_pair, tmp_path):
    net, _ = rcan_pair
    src, out = str(tmp_path / 'with_args.pth'), str(tmp_path / 'clean.pth')
    torch.save({'params': net.state_dict(), 'args': argparse.Namespace(scale=4)}, src)
    with pytest.raises(ValueError, match='need code execution') as err:
        load_weights(RCAN(**TINY_RCAN), src)
    assert f'python -m dukd_arch.convert --unsafe-trust {src}' in str(err.value)
    assert src in str(err.value)
    assert convert_main([src, out]) == 1  # still refused without the flag
    assert convert_main(['--unsafe-trust', src, out]) == 0  # the command the message suggests
    assert set(read_checkpoint(out)['params']) == set(net.state_dict())


def test_code_in_a_pickle_never_runs(tmp_path):
    marker = tmp_path / 'pwned'
    src = str(tmp_path / 'evil.pth')
    torch.save({'params': {'w': torch.zeros(1)}, 'payload': _TouchOnLoad(str(marker))}, src)
    with pytest.raises(ValueError, match='refuses'):
        read_checkpoint(src)
    assert convert_main([src, str(tmp_path / 'x.safetensors')]) == 1
    assert not marker.exists()


def test_convert_bare_keep_names(rcan_pair, tmp_path):
    _, original = rcan_pair
    src, out = str(tmp_path / 'RCAN_BIX4.pt'), str(tmp_path / 'bare.pth')
    torch.save(original, src)
    assert convert_main([src, out, '--bare', '--keep-names']) == 0
    assert set(read_checkpoint(out)) == set(original)


# ---- AutoTeacher: any architecture spandrel detects -------------------------------------------------------


def _save(state, path, wrap):
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save({wrap: state} if wrap else state, path)
    return path


COMMUNITY = {
    # name: (constructor, scale, test input size, output tolerance vs the original module)
    'ESRGAN': (lambda: RRDBNet(3, 3, scale=4, num_feat=8, num_block=1), 4, (10, 12), 0),
    'RealESRGAN_compact': (lambda: SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=2, act_type='prelu'), 2,
                           (10, 12), 0),
    # spandrel's SwinIR port computes attention in a different order: float rounding only
    'SwinIR': (lambda: SwinIR(upscale=2, in_chans=3, img_size=16, window_size=4, img_range=1., depths=[2],
                              embed_dim=12, num_heads=[2], mlp_ratio=2, upsampler='pixelshuffle'), 2, (16, 20), 1e-4),
}


@pytest.mark.parametrize('arch', sorted(COMMUNITY))
@pytest.mark.parametrize('fmt', ['params_ema.pth', 'bare.safetensors'])
def test_auto_teacher_builds_community_models_from_the_file_alone(arch, fmt, tmp_path, caplog):
    make, scale, size, atol = COMMUNITY[arch]
    net = _randomised(make())
    path = _save(net.state_dict(), str(tmp_path / f'{arch}_{fmt}'), 'params_ema' if fmt.endswith('.pth') else None)
    with caplog.at_level(logging.INFO, logger='basicsr'):
        teacher = build_network({'type': 'AutoTeacher', 'path': path, 'scale': scale}).eval()
    assert type(teacher).loads_own_weights
    assert f'x{scale}' in caplog.text and 'M parameters' in caplog.text
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), net(x), atol=atol, rtol=0)


def test_auto_teacher_pads_inputs_its_architecture_cannot_take(tmp_path):
    # RRDBNet x2 pixel-unshuffles its input, so sizes must be even: an odd input is padded and cropped
    net = _randomised(RRDBNet(3, 3, scale=2, num_feat=8, num_block=1))
    path = _save(net.state_dict(), str(tmp_path / 'esrgan_x2.pth'), 'params')
    teacher = build_network({'type': 'AutoTeacher', 'path': path, 'scale': 2}).eval()
    multiple = window_multiple(teacher)
    assert multiple > 1
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        out = teacher(x)
        assert out.shape[-2:] == (18, 22)
        torch.testing.assert_close(out, forward_padded(net, x, multiple, 2), atol=0, rtol=0)
    assert probe_scale(teacher, torch.device('cpu')) == 2


def test_auto_teacher_reads_original_rcan_releases(rcan_pair, tmp_path):
    net, original = rcan_pair
    path = _save(original, str(tmp_path / 'RCAN_BIX4.pt'), None)
    teacher = build_network({'type': 'AutoTeacher', 'path': path, 'scale': 4}).eval()
    assert teacher.architecture == 'RCAN'
    x = torch.rand(1, 3, 8, 8)
    kept = x.clone()
    with torch.no_grad():
        out = teacher(x)
        assert torch.equal(x, kept)  # spandrel's RCAN scales its input in place; the batch must not change
        torch.testing.assert_close(out, net(x), atol=1e-5, rtol=0)


def test_build_teacher_with_auto_teacher_needs_no_pretrain_path(tmp_path):
    net = _randomised(SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=4))
    path = _save(net.state_dict(), str(tmp_path / 'compact.safetensors'), None)
    opt = {'network_t': {'type': 'AutoTeacher', 'path': path, 'scale': 4}, 'path': {}}
    teacher = build_teacher(opt, torch.device('cpu'))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    opt['path']['pretrain_network_t'] = str(tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='reads its weights from its own `path:`'):
        build_teacher(opt, torch.device('cpu'))


def test_auto_teacher_honours_param_key_t_and_refuses_strict_load_t_false(tmp_path, caplog):
    # path.param_key_t was dropped: a file with both keys taught with `params` while the options said params_ema
    raw, ema = (_randomised(SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=2)) for _ in range(2))
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(0.05)  # the EMA weights differ from the raw ones
    path = str(tmp_path / 'both.pth')
    torch.save({'params': raw.state_dict(), 'params_ema': ema.state_dict()}, path)
    opt = {'network_t': {'type': 'AutoTeacher', 'path': path, 'scale': 2}, 'path': {'param_key_t': 'params_ema'}}
    with caplog.at_level(logging.INFO, logger='basicsr'):
        teacher = build_teacher(opt, torch.device('cpu'))
    assert 'param key: params_ema' in caplog.text
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), ema(x), atol=0, rtol=0)
    opt['network_t']['param_key'] = 'params'
    with pytest.raises(ValueError, match="param_key_t is 'params_ema' but network_t.param_key is 'params'"):
        build_teacher(opt, torch.device('cpu'))
    opt = {'network_t': {'type': 'AutoTeacher', 'path': path, 'scale': 2}, 'path': {'strict_load_t': False}}
    with pytest.raises(ValueError, match='strict_load_t: false cannot apply to `network_t: type: AutoTeacher`'):
        build_teacher(opt, torch.device('cpu'))


# ---- bad files are refused with errors that name the file and the fix --------------------------------------
@pytest.mark.parametrize('name', ['teacher.pth', 'teacher.safetensors'])
def test_truncated_file_is_refused_naming_it(tmp_path, name):
    net = EDSR(3, 3, num_feat=8, num_block=1, upscale=2)
    path = _save(net.state_dict(), str(tmp_path / name), 'params')
    data = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError) as err:
        load_weights(EDSR(3, 3, num_feat=8, num_block=1, upscale=2), path)
    assert path in str(err.value)
    assert 're-download' in str(err.value)
    with pytest.raises(ValueError, match=path.replace('.', r'\.')):
        build_network({'type': 'AutoTeacher', 'path': path, 'scale': 2})


def test_missing_file_is_named(tmp_path):
    path = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        build_network({'type': 'AutoTeacher', 'path': path, 'scale': 4})


def test_wrong_architecture_lists_missing_and_unexpected_keys(rcan_pair, tmp_path):
    net, _ = rcan_pair
    path = _save(net.state_dict(), str(tmp_path / 'rcan.pth'), 'params')
    with pytest.raises(ValueError) as err:
        load_weights(EDSR(3, 3, num_feat=8, num_block=1, upscale=4), path, option='network_t')
    text = str(err.value)
    assert path in text and 'missing in file' in text and 'unexpected in file' in text
    assert 'body.0.residual_group.0.rcab.0.weight' in text  # an RCAN key EDSR does not have
    assert 'Fix `network_t`' in text


def test_wrong_scale_for_a_basicsr_teacher_is_a_shape_error(tmp_path):
    path = _save(EDSR(3, 3, num_feat=8, num_block=1, upscale=2).state_dict(), str(tmp_path / 'edsr_x2.pth'), 'params')
    with pytest.raises(ValueError, match='shape mismatches') as err:
        load_weights(EDSR(3, 3, num_feat=8, num_block=1, upscale=3), path)
    assert path in str(err.value)


def test_auto_teacher_scale_mismatch_is_refused(tmp_path):
    net = SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=4)
    path = _save(net.state_dict(), str(tmp_path / 'compact_x4.safetensors'), None)
    with pytest.raises(ValueError, match=r'upscales x4, but scale 2 is asked for') as err:
        build_network({'type': 'AutoTeacher', 'path': path, 'scale': 2})
    assert path in str(err.value)
    with pytest.raises(ValueError, match='needs `scale:`'):
        build_network({'type': 'AutoTeacher', 'path': path})


def test_auto_teacher_channel_mismatch_is_refused(tmp_path):
    net = SRVGGNetCompact(1, 1, num_feat=8, num_conv=2, upscale=4)
    path = _save(net.state_dict(), str(tmp_path / 'gray.pth'), 'params')
    with pytest.raises(ValueError, match=r'maps 1 -> 1 channels, the options expect 3 -> 3'):
        build_network({'type': 'AutoTeacher', 'path': path, 'scale': 4})


def test_auto_teacher_names_unrecognised_architectures(tmp_path):
    path = _save(EDSR(3, 3, num_feat=8, num_block=1, upscale=2).state_dict(), str(tmp_path / 'edsr.pth'), 'params')
    with pytest.raises(ValueError, match='does not recognise this architecture') as err:
        build_network({'type': 'AutoTeacher', 'path': path, 'scale': 2})
    assert path in str(err.value) and 'pretrain_network_t' in str(err.value)


def test_dukd_trains_with_an_auto_teacher(tmp_path, batch):
    # a community ESRGAN x2 (input sizes must be multiples of 4) teaching a BasicSR EDSR student
    from basicsr.models import build_model
    from conftest import make_opt
    net = _randomised(RRDBNet(3, 3, scale=2, num_feat=8, num_block=1))
    path = _save(net.state_dict(), str(tmp_path / 'esrgan_x2.safetensors'), None)
    opt = make_opt(tmp_path)
    opt['network_t'] = {'type': 'AutoTeacher', 'path': path, 'scale': 2}
    del opt['path']['pretrain_network_t']
    model = build_model(opt)
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
    log = model.get_current_log()
    assert {'l_kd', 'l_zoom_in', 'l_zoom_out_kd'} <= set(log)
    assert all(math.isfinite(v) for v in log.values())
    assert not model.net_t.training and not any(p.requires_grad for p in model.net_t.parameters())
