"""python -m dukd_arch.infer and StudentUpsampler: checkpoints, formats, tiling, failures (tiny networks)."""
import os

import cv2
import numpy as np
import pytest
import torch
import yaml

import dukd_arch
from basicsr.archs import build_network
from dukd_arch.export import main as export_main
from dukd_arch.infer import main as infer_main
from dukd_arch.upsampler import StudentUpsampler, measure_receptive_field

from conftest import SCALE, TINY_EDSR, tool_options


def _student(tmp_path, net_opt=TINY_EDSR, seed=0, with_options=True):
    """A checkpoint shaped like BasicSR's net_g_*.pth (params and a different params_ema) and its options."""
    torch.manual_seed(seed)
    net, ema = build_network(dict(net_opt)), build_network(dict(net_opt))
    for m in (net, ema):  # quantized layers initialise their clips on a first training forward
        m.train()(torch.rand(1, 3, 8, 8))
    path = tmp_path / 'net_g_10.pth'
    torch.save({'params': net.state_dict(), 'params_ema': ema.state_dict()}, path)
    opt = tmp_path / 'opt.yml'
    if with_options:
        opt.write_text(yaml.safe_dump(tool_options(net_opt)))
    return str(path), str(opt), ema.eval()


def _photo(h=21, w=27, channels=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.25 * np.sin(x / 3.0)[..., None] * np.cos(y / 4.0)[..., None] + 0.1 * rng.random((h, w, channels))
    img = (np.clip(base, 0, 1) * np.iinfo(dtype).max).round().astype(dtype)
    return img[..., 0] if channels == 1 else img


def test_receptive_field_is_measured_and_tiles_that_wide_equal_the_whole_image(tmp_path):
    ckpt, opt, _ = _student(tmp_path)
    up = StudentUpsampler(ckpt, opt, device='cpu')
    # TINY_EDSR: head, 2 convs per block, conv after body, upsampler conv (LR), last conv at HR: 6 LR px
    assert up.receptive_field == 6
    img = _photo(37, 45)
    whole = up.enhance(img).astype(int)
    up.tile, up.tile_pad = 8, up.receptive_field
    assert np.abs(up.enhance(img).astype(int) - whole).max() <= 1
    up.tile_pad = 1  # too little context: the seams show
    assert np.abs(up.enhance(img).astype(int) - whole).max() > 1


def test_receptive_field_of_a_global_operation_is_reported_as_none():
    def global_mean(x):  # every output pixel sees every input pixel (as channel attention does)
        return torch.nn.functional.interpolate(x, scale_factor=2) + x.mean()
    assert measure_receptive_field(global_mean, 3, 2, max_size=65) is None


def test_folder_in_folder_out_keeps_formats_depth_and_channels_and_reports_a_corrupt_file(tmp_path, capsys):
    ckpt, opt, _ = _student(tmp_path)
    src = tmp_path / 'photos'
    src.mkdir()
    cases = {'rgb.png': _photo(), 'photo.jpg': _photo(), 'deep.tif': _photo(dtype=np.uint16),
             'grey.png': _photo(channels=1), 'alpha.webp': _photo(channels=4), 'alpha16.png': _photo(channels=4,
                                                                                                      dtype=np.uint16)}
    for name, img in cases.items():
        assert cv2.imwrite(str(src / name), img)
    (src / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    (src / 'readme.txt').write_text('not an image: ignored')
    out = tmp_path / 'sr'
    rc = infer_main(['-i', str(src), '-o', str(out), '--checkpoint', ckpt, '-opt', opt, '--tile', '8'])
    err = capsys.readouterr().err
    assert rc == 1 and 'broken.png' in err and 'not a readable image' in err
    for name, img in cases.items():
        stem, ext = os.path.splitext(name)
        got = cv2.imread(str(out / f'{stem}_sr{ext}'), cv2.IMREAD_UNCHANGED)
        assert got is not None, name
        assert got.dtype == img.dtype and got.shape[:2] == (img.shape[0] * SCALE, img.shape[1] * SCALE), name
        assert got.shape[2:] == img.shape[2:], name
    assert len(os.listdir(out)) == len(cases)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_a_photo_comes_out_the_way_viewers_show_it(tmp_path, orientation):
    # EXIF orientation (phones): the output carries no EXIF, so the pixels must be turned upright first
    from PIL import Image, ImageOps
    from dukd_arch.infer import read_upright
    rgb = _photo(h=9, w=14)[..., ::-1]
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = str(tmp_path / 'phone.png')  # lossless, so PIL's and OpenCV's decoders agree on every pixel
    Image.fromarray(np.ascontiguousarray(rgb)).save(path, exif=exif)
    with Image.open(path) as im:
        shown = np.asarray(ImageOps.exif_transpose(im))[..., ::-1]
    assert np.array_equal(read_upright(path), shown)
    ckpt, opt, _ = _student(tmp_path)
    assert infer_main(['-i', path, '-o', str(tmp_path / 'sr'), '--checkpoint', ckpt, '-opt', opt]) == 0
    # the student ran on the upright photo (orientations 2-4 keep the shape: only the pixels tell)
    expected = StudentUpsampler(ckpt, opt, device='cpu').enhance(np.ascontiguousarray(shown))
    assert np.array_equal(cv2.imread(str(tmp_path / 'sr' / 'phone_sr.png')), expected)


def test_alpha_is_upscaled_on_its_own(tmp_path):
    ckpt, opt, _ = _student(tmp_path)
    rgba = _photo(channels=4)
    rgba[..., 3] = 255
    for mode in ('network', 'bicubic'):
        up = StudentUpsampler(ckpt, opt, device='cpu', alpha=mode)
        out = up.enhance(rgba)
        assert np.array_equal(out[..., :3], up.enhance(np.ascontiguousarray(rgba[..., :3])))
        if mode == 'bicubic':
            assert (out[..., 3] == 255).all()
        else:  # the network upscales the alpha plane as a grey image of its own
            grey = up.enhance(np.ascontiguousarray(rgba[..., 3]))
            assert grey.ndim == 2 and np.array_equal(out[..., 3], grey)


def test_an_input_is_never_overwritten(tmp_path, capsys):
    ckpt, opt, _ = _student(tmp_path)
    src = tmp_path / 'photos'
    src.mkdir()
    cv2.imwrite(str(src / 'a.png'), _photo())
    before = (src / 'a.png').read_bytes()
    rc = infer_main(['-i', str(src), '-o', str(src), '--suffix', '', '--checkpoint', ckpt, '-opt', opt])
    assert rc == 2 and 'would overwrite an input' in capsys.readouterr().err
    assert (src / 'a.png').read_bytes() == before


def test_ema_weights_and_every_checkpoint_form_give_the_same_image(tmp_path):
    ckpt, opt, ema = _student(tmp_path)
    img = _photo()
    ref = StudentUpsampler(ckpt, opt, device='cpu')
    x = torch.from_numpy(img[..., ::-1].astype(np.float32).transpose(2, 0, 1).copy() / 255)[None]
    with torch.no_grad():
        want = (ema(x).clamp(0, 1)[0].numpy().transpose(1, 2, 0)[..., ::-1] * 255).round()
    assert np.abs(ref.enhance(img).astype(int) - want).max() == 0
    assert export_main(['-opt', opt, '--checkpoint', ckpt, '--out', str(tmp_path / 'exp')]) == 0
    for name in ('student.safetensors', 'student.onnx'):  # one shipped file, no options needed
        got = StudentUpsampler(str(tmp_path / 'exp' / name), device='cpu', tile=8).enhance(img)
        assert np.abs(got.astype(int) - want).max() <= 1, name
    assert export_main(['-opt', opt, '--checkpoint', ckpt, '--out', str(tmp_path / 'st'), '--safetensors']) == 0
    assert os.listdir(tmp_path / 'st') == ['student.safetensors']
    net = dukd_arch.load_student(str(tmp_path / 'st' / 'student.safetensors'))
    assert torch.equal(net.state_dict()['conv_first.weight'], ema.state_dict()['conv_first.weight'])


def test_options_that_contradict_a_file_naming_its_own_network_are_refused(tmp_path):
    ckpt, opt, _ = _student(tmp_path)
    assert export_main(['-opt', opt, '--checkpoint', ckpt, '--out', str(tmp_path / 'st'), '--safetensors']) == 0
    shipped = str(tmp_path / 'st' / 'student.safetensors')
    StudentUpsampler(shipped, opt, device='cpu')  # the options it was exported with agree: fine
    other = tmp_path / 'other.yml'
    other.write_text(yaml.safe_dump(tool_options({**TINY_EDSR, 'num_block': TINY_EDSR['num_block'] + 1})))
    with pytest.raises(ValueError, match=r'names its own network, which differs from .*other.yml in num_block'):
        StudentUpsampler(shipped, str(other), device='cpu')


def test_options_are_found_beside_a_training_checkpoint_or_asked_for(tmp_path):
    root = tmp_path / 'experiments' / 'unit'
    (root / 'models').mkdir(parents=True)
    ckpt, opt, _ = _student(root / 'models', with_options=False)
    with pytest.raises(ValueError, match='pass -opt OPTIONS.yml'):
        StudentUpsampler(ckpt, device='cpu')
    (root / 'unit.yml').write_text(yaml.safe_dump({'scale': SCALE, 'network_g': dict(TINY_EDSR)}))
    assert StudentUpsampler(ckpt, device='cpu').scale == SCALE


def test_quantized_student_and_self_ensemble(tmp_path):
    from dukd_arch.ops import DIHEDRAL_TRANSFORMS, inverse_transform, transform
    ckpt, opt, net = _student(tmp_path, {**TINY_EDSR, 'type': 'QuantEDSR', 'w_bits': 4, 'a_bits': 4})
    img = _photo()
    plain = StudentUpsampler(ckpt, opt, device='cpu').enhance(img)
    ensembled = StudentUpsampler(ckpt, opt, device='cpu', self_ensemble=True).enhance(img)
    assert plain.shape == ensembled.shape == (img.shape[0] * SCALE, img.shape[1] * SCALE, 3)
    # the mean of the quantized network's 8 dihedral passes, each undone, clamped once (BGR in and out)
    x = torch.from_numpy(img[..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255)[None]
    with torch.no_grad():
        mean = torch.stack([inverse_transform(net(transform(x, ops)), ops) for ops in DIHEDRAL_TRANSFORMS]).mean(0)
    expected = (mean[0].clamp(0, 1).numpy().transpose(1, 2, 0)[..., ::-1] * 255).round()
    assert np.abs(ensembled - expected).max() <= 1 and np.abs(plain - expected).max() > 1
    # its integer export is for deployment runtimes: infer says so instead of "the weights do not fit"
    from dukd_arch.quant_export import main as quant_export_main
    quant_export_main(['-opt', opt, '--checkpoint', ckpt, '--out', str(tmp_path / 'q.safetensors')])
    with pytest.raises(ValueError, match='is the integer export of a quantized student'):
        StudentUpsampler(str(tmp_path / 'q.safetensors'), opt, device='cpu')


def test_bad_settings_are_early_one_line_errors(tmp_path, capsys):
    ckpt, opt, _ = _student(tmp_path)
    with pytest.raises(ValueError, match='--half runs fp16 on CUDA only'):
        StudentUpsampler(ckpt, opt, device='cpu', half=True)
    assert infer_main(['-i', str(tmp_path / 'missing'), '-o', str(tmp_path / 'o'), '--checkpoint', ckpt]) == 2
    assert 'input not found' in capsys.readouterr().err


def test_a_bad_network_g_argument_is_named_with_the_accepted_ones(tmp_path, capsys):
    # an -opt whose network_g does not fit the constructor gave a raw TypeError traceback
    ckpt, opt, _ = _student(tmp_path)
    bad = {k: v for k, v in TINY_EDSR.items() if k != 'num_in_ch'}
    bad['num_blocks'] = bad.pop('num_block')
    (tmp_path / 'bad.yml').write_text(yaml.safe_dump(tool_options(bad)))
    args = ['-i', str(tmp_path / 'in.png'), '-o', str(tmp_path / 'o'), '--checkpoint', ckpt, '-opt']
    cv2.imwrite(str(tmp_path / 'in.png'), _photo())
    assert infer_main(args + [str(tmp_path / 'bad.yml')]) == 2
    err = capsys.readouterr().err
    assert 'bad.yml: network_g does not build a network' in err and 'Traceback' not in err
    assert 'network_g.num_in_ch: missing: EDSR needs `num_in_ch`' in err
    assert 'network_g.num_blocks: unknown key; did you mean `num_block`?' in err
    assert 'EDSR takes: num_in_ch, num_out_ch, num_feat, num_block, upscale' in err
    assert infer_main(args + [opt]) == 0


def test_fixed_size_onnx_runs_whole_windows_and_matches_pytorch(tmp_path):
    from dukd_arch.export import _onnx_export
    ckpt, opt, ema = _student(tmp_path)
    _onnx_export(ema, torch.rand(1, 3, 20, 20), str(tmp_path / 'fixed.onnx'), 17, dynamic=False)
    up = StudentUpsampler(str(tmp_path / 'fixed.onnx'), device='cpu')
    assert up.fixed_size == (20, 20) and up.tile_pad == up.receptive_field == 6 and up.tile == 8
    img = _photo(29, 43)
    want = StudentUpsampler(ckpt, opt, device='cpu').enhance(img).astype(int)
    assert np.abs(up.enhance(img).astype(int) - want).max() <= 1


def test_a_file_as_output_folder_or_a_missing_param_key_is_one_clear_line(tmp_path, capsys):
    ckpt, opt, _ = _student(tmp_path)
    cv2.imwrite(str(tmp_path / 'in.png'), _photo())
    (tmp_path / 'taken.png').write_bytes(b'x')
    assert infer_main(['-i', str(tmp_path / 'in.png'), '-o', str(tmp_path / 'taken.png'), '--checkpoint', ckpt,
                       '-opt', opt]) == 2
    assert 'taken.png is a file; give the output folder' in capsys.readouterr().err
    assert infer_main(['-i', str(tmp_path / 'in.png'), '-o', str(tmp_path / 'sr'), '--checkpoint', ckpt, '-opt', opt,
                       '--param-key', 'foo']) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'error: {ckpt} has no param key \'foo\'') and '--param-key for the tools' in err
