"""The paper-format benchmark: MATLAB-bicubic LR, Y-channel metrics, the PAN teacher's published table.

The published-table checks need ``../shared/data`` (standard benchmark images and the public PAN x4 teacher,
never committed here); they skip, saying so, when it is absent.
"""
import contextlib
import csv
import json
import os

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs.edsr_arch import EDSR

from conftest import SCALE, TINY_EDSR, smooth_image, tool_options
from dukd_arch.archs.imdn_arch import IMDN
from dukd_arch.archs.pan_arch import PAN
from dukd_arch.benchmark import main as benchmark_main
from dukd_arch.benchmark import read_set
from dukd_arch.ops import matlab_imresize, matlab_imresize_uint8
from dukd_arch.ops.matlab_resize import _resize_matrix

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..', 'shared', 'data')
PAN_FILE = os.path.join(SHARED, 'teachers', 'PANx4_DF2K.pth')
needs_shared = pytest.mark.skipif(not os.path.isfile(PAN_FILE),
                                  reason='../shared/data (benchmark images, public PAN teacher) is not here')
# the PAN repository's own test log (results/PANx4_DF2K/test_PANx4_DF2Ktrain_200912-232209.log)
PAN_PUBLISHED = {'Set5': (32.131, 0.8948), 'Set14': (28.611, 0.7822)}
# IMDN x4 (Zheng222/IMDN checkpoints/IMDN_x4.pth, DIV2K) is not in ../shared/data: a path in DUKD_IMDN_X4 runs the
# check against the paper's table (Hui et al. 2019, Table 3: x4, 715 K parameters)
IMDN_FILE = os.environ.get('DUKD_IMDN_X4', '')
IMDN_PUBLISHED = {'Set5': (32.21, 0.8948), 'Set14': (28.58, 0.7811)}


def test_uint8_resize_rounds_each_pass_half_away_from_zero():
    """MATLAB stores the row pass as uint8 before the column pass; one rounding at the end differs."""
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.integers(0, 256, (3, 40, 36)).astype(np.float64))
    out = matlab_imresize_uint8(img, 0.25)
    assert out.shape == (3, 10, 9)
    rows = torch.floor(_one_axis(img, 0.25, -2) + 0.5).clamp(0, 255)  # height first, stored as uint8
    expected = torch.floor(_one_axis(rows, 0.25, -1) + 0.5).clamp(0, 255)
    assert torch.equal(out, expected)
    once = matlab_imresize(img, 0.25).round().clamp(0, 255)
    assert not torch.equal(out, once)  # the difference this function exists for
    assert (out - once).abs().max() <= 1
    flat = torch.full((1, 16, 16), 77.0)
    assert torch.equal(matlab_imresize_uint8(flat, 0.5), torch.full((1, 8, 8), 77.0))
    with pytest.raises(ValueError, match='below 1'):
        matlab_imresize_uint8(flat, 2)


def _one_axis(img, scale, dim):
    """MATLAB's bicubic along one axis only (its own 1-D pass), unrounded."""
    n = img.shape[dim]
    m = _resize_matrix(n, int(np.ceil(n * scale)), scale, True)
    return torch.matmul(m, img) if dim == -2 else torch.matmul(img, m.T)


def test_pan_paper_size_and_scales():
    assert sum(p.numel() for p in PAN().parameters()) == 272419  # the paper's x4 PAN
    for scale in (2, 3, 4):
        assert PAN(nb=1, scale=scale)(torch.rand(1, 3, 7, 9)).shape == (1, 3, 7 * scale, 9 * scale)
    with pytest.raises(ValueError, match='scale must be 2, 3 or 4'):
        PAN(scale=8)


def _tiny_set(root, n=2, size=48):
    os.makedirs(root / 'HR')
    rng = np.random.default_rng(1)
    for i in range(n):
        cv2.imwrite(str(root / 'HR' / f'im{i}.png'), smooth_image(rng, size + 3, size + 1))  # not a multiple of 4
    return str(root)


def test_benchmark_command_writes_the_paper_table(tmp_path, capsys):
    torch.manual_seed(0)
    net = PAN(nf=8, unf=8, nb=1, scale=4)
    torch.save(net.state_dict(), tmp_path / 'pan.pth')
    sets = [_tiny_set(tmp_path / 'SetA'), _tiny_set(tmp_path / 'SetB', n=1)]
    out = tmp_path / 'res' / 'table.md'
    rc = benchmark_main(['--checkpoint', str(tmp_path / 'pan.pth'), '--network', '{type: PAN, nf: 8, unf: 8, nb: 1}',
                         '--name', 'T', '--checkpoint', str(tmp_path / 'pan.pth'), '--name', 'S',
                         '--network', '{type: PAN, nf: 8, unf: 8, nb: 1}', '--reference', 'T',
                         '--sets', *sets, '--scale', '4', '--device', 'cpu', '--out', str(out)])
    assert rc == 0
    table = out.read_text()
    assert '| Model | Scale | Params (K) | Multi-Adds (G) | SetA PSNR/SSIM | SetB PSNR/SSIM |' in table
    data = json.loads((tmp_path / 'res' / 'table.json').read_text())
    s, t = data['models'][1], data['models'][0]
    assert s['params'] == sum(p.numel() for p in net.parameters())
    assert s['macs'] > 0 and s['seconds_per_image'] > 0
    assert s['sets']['SetA']['psnr_to_reference'] == float('inf')  # same weights: identical outputs
    # the per-image CSV agrees with the set means, scored on the HR cropped to a multiple of 4
    rows = list(csv.DictReader(open(tmp_path / 'res' / 'table.csv')))
    assert len(rows) == 2 * 3 and {r['image'] for r in rows if r['set'] == 'SetA'} == {'im0', 'im1'}
    for model in (s, t):
        for set_name in ('SetA', 'SetB'):
            psnrs = [float(r['psnr']) for r in rows if r['model'] == model['name'] and r['set'] == set_name]
            assert model['sets'][set_name]['psnr'] == pytest.approx(np.mean(psnrs))
    name, items, note = read_set(sets[0], 4)
    assert items[0][1].shape == (48, 48, 3) and items[0][2].shape == (12, 12, 3) and note is None
    assert t['sets']['SetA']['psnr'] == pytest.approx(s['sets']['SetA']['psnr'])


def test_benchmark_refuses_bad_input_clearly(tmp_path, capsys):
    torch.save(PAN(nf=8, unf=8, nb=1, scale=2).state_dict(), tmp_path / 'x2.pth')
    good = _tiny_set(tmp_path / 'SetA')
    cases = [
        (['--checkpoint', str(tmp_path / 'nope.pth'), '--network', '{type: PAN}', '--sets', good], 'checkpoint not found'),
        (['--checkpoint', str(tmp_path / 'x2.pth'), '--network', '{type: PAN, nf: 8, unf: 8, nb: 1, scale: 2}',
          '--sets', str(tmp_path / 'missing')], 'benchmark set not found'),
        (['--checkpoint', str(tmp_path / 'x2.pth'), '--network', '[PAN]', '--sets', good], 'must be a mapping'),
        (['--checkpoint', str(tmp_path / 'x2.pth'), '--checkpoint', str(tmp_path / 'x2.pth'), '--network', 'type: PAN',
          '--network', 'type: PAN', '--network', 'type: PAN', '--sets', good], '--network given 3 times'),
        (['--checkpoint', str(tmp_path / 'x2.pth'), '--network', '{type: PAN, nf: 8, unf: 8, nb: 1, scale: 2}',
          '--sets', good], 'upscales x2 (measured on a test input), but --scale is 4: pass --scale 2'),
        # a public teacher's bare weights name no network: the advice is this command's --network, not only -opt
        (['--checkpoint', str(tmp_path / 'x2.pth'), '--sets', good], 'Or name it here: --network "{type: PAN'),
    ]
    for args, message in cases:
        assert benchmark_main(args + ['--scale', '4', '--device', 'cpu']) == 2, message
        assert message in capsys.readouterr().err


def test_benchmark_names_a_network_argument_that_is_missing_or_misspelt(tmp_path, capsys):
    # `--network "{type: EDSR, num_feat: 8, num_block: 1}"` ended in a TypeError traceback from EDSR's constructor
    torch.save({'params': {}}, tmp_path / 'edsr.pth')
    good = _tiny_set(tmp_path / 'SetA')
    for network, problem in [('{type: EDSR, num_feat: 8, num_block: 1}', 'network.num_in_ch: missing: EDSR needs'),
                             ('{type: PAN, nf: 8, unf: 8, nbb: 1}', 'network.nbb: unknown key; did you mean `nb`?')]:
        assert benchmark_main(['--checkpoint', str(tmp_path / 'edsr.pth'), '--network', network, '--sets', good,
                               '--scale', '4', '--device', 'cpu']) == 2
        err = capsys.readouterr().err
        assert problem in err and 'Traceback' not in err and 'allow_unknown_keys' not in err
        assert f"{network.split(',')[0][7:]} takes: num_in_ch, num_out_ch" in err


@needs_shared
def test_made_lr_equals_the_published_lr_bicubic():
    for name in ('Set5', 'Set14'):
        _, items, note = read_set(os.path.join(SHARED, 'benchmarks', name), 4)
        assert note == f'LR made here equals the shipped LR_bicubic/X4 in {len(items)} of {len(items)} images'


def _reproduces_published_table(tmp_path, checkpoint, network, params, published):
    """The metric path end to end: a public x4 checkpoint scores its authors' Set5 / Set14 numbers."""
    rc = benchmark_main(['--checkpoint', checkpoint, '--network', network, '--name', 'public',
                         '--sets', *(os.path.join(SHARED, 'benchmarks', s) for s in published),
                         '--scale', '4', '--device', 'cpu', '--out', str(tmp_path / 'table.md')])
    assert rc == 0
    model = json.loads((tmp_path / 'table.json').read_text())['models'][0]
    assert model['params'] == params
    for name, (psnr, ssim) in published.items():
        assert abs(model['sets'][name]['psnr'] - psnr) < 0.05, name
        assert abs(model['sets'][name]['ssim'] - ssim) < 0.002, name


@needs_shared
def test_public_pan_teacher_reproduces_its_published_table(tmp_path):
    _reproduces_published_table(tmp_path, PAN_FILE, '{type: PAN, scale: 4}', 272419, PAN_PUBLISHED)


def test_imdn_paper_size_and_scales():
    assert sum(p.numel() for p in IMDN().parameters()) == 715176  # the paper's x4 IMDN (715 K)
    for scale in (2, 3, 4):
        assert IMDN(num_block=2, upscale=scale)(torch.rand(1, 3, 7, 9)).shape == (1, 3, 7 * scale, 9 * scale)
    with pytest.raises(ValueError, match='upscale must be a whole number'):
        IMDN(upscale=2.5)


def test_imdn_reads_the_authors_data_parallel_layout(tmp_path):
    """The released IMDN files are bare state dicts saved from DataParallel (``module.`` keys): same outputs."""
    torch.manual_seed(0)
    net = IMDN(num_feat=16, num_block=2, upscale=4)
    torch.save({f'module.{k}': v for k, v in net.state_dict().items()}, tmp_path / 'authors.pth')
    torch.save({'params': net.state_dict()}, tmp_path / 'basicsr.pth')
    network = '{type: IMDN, num_feat: 16, num_block: 2, upscale: 4}'
    rc = benchmark_main(['--checkpoint', str(tmp_path / 'authors.pth'), '--network', network, '--name', 'authors',
                         '--checkpoint', str(tmp_path / 'basicsr.pth'), '--network', network, '--name', 'basicsr',
                         '--reference', 'basicsr', '--sets', _tiny_set(tmp_path / 'SetA', n=1), '--scale', '4',
                         '--device', 'cpu', '--out', str(tmp_path / 'r.md')])
    assert rc == 0
    authors = json.loads((tmp_path / 'r.json').read_text())['models'][0]
    assert authors['sets']['SetA']['psnr_to_reference'] == float('inf')


@needs_shared
@pytest.mark.skipif(not os.path.isfile(IMDN_FILE), reason='DUKD_IMDN_X4 does not name the public IMDN x4 file')
def test_public_imdn_teacher_reproduces_its_published_table(tmp_path):
    _reproduces_published_table(tmp_path, IMDN_FILE, '{type: IMDN, upscale: 4}', 715176, IMDN_PUBLISHED)


def test_benchmark_reads_a_spandrel_file_through_auto_teacher(tmp_path, capsys):
    """``--network "{type: AutoTeacher}"``: spandrel builds the network from the file (checked against --scale when
    the block names no scale); same output as BasicSR's."""
    pytest.importorskip('spandrel')
    from basicsr.archs.srvgg_arch import SRVGGNetCompact
    torch.manual_seed(0)
    torch.save({'params': SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4).state_dict()}, tmp_path / 'c.pth')
    out = tmp_path / 'r.md'
    rc = benchmark_main(['--checkpoint', str(tmp_path / 'c.pth'), '--network', '{type: AutoTeacher}',
                         '--name', 'auto', '--checkpoint', str(tmp_path / 'c.pth'), '--name', 'basicsr', '--network',
                         '{type: SRVGGNetCompact_basicsr, num_feat: 8, num_conv: 2, upscale: 4}', '--reference',
                         'basicsr', '--sets', _tiny_set(tmp_path / 'SetA', n=1), '--scale', '4', '--device', 'cpu',
                         '--out', str(out)])
    assert rc == 0
    auto = json.loads((tmp_path / 'r.json').read_text())['models'][0]
    assert auto['name'] == 'auto' and auto['sets']['SetA']['psnr_to_reference'] == float('inf')
    rc = benchmark_main(['--checkpoint', str(tmp_path / 'c.pth'), '--network', '{type: AutoTeacher}', '--sets',
                         _tiny_set(tmp_path / 'SetB', n=1), '--scale', '2', '--device', 'cpu'])
    err = capsys.readouterr().err  # an x4 file benchmarked at --scale 2 is refused up front
    assert rc == 2 and 'teacher upscales x4, but scale 2 is asked for' in err


def test_benchmark_refuses_before_scoring_what_would_lose_or_merge_results(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(PAN(nf=8, unf=8, nb=1, scale=4).state_dict(), tmp_path / 'pan.pth')
    base = ['--checkpoint', str(tmp_path / 'pan.pth'), '--network', '{type: PAN, nf: 8, unf: 8, nb: 1}',
            '--scale', '4', '--device', 'cpu']
    one, twin = _tiny_set(tmp_path / 'Set5', n=1), _tiny_set(tmp_path / 'other' / 'Set5', n=1)
    cases = [(['--sets', one, twin], 'two --sets folders have the same name'),
             (['--sets', one, '--out', str(tmp_path / 'r.json')], 'name the Markdown table'),
             (['--sets', one, '--out', str(tmp_path)], 'is a folder; give the table'),
             (['--sets', one, '--threads', '-3'], '--threads -3: must be 1 or more')]
    for extra, message in cases:
        with pytest.raises(SystemExit) if '--threads' in extra else contextlib.nullcontext():
            assert benchmark_main(base + extra) == 2
        assert message in capsys.readouterr().err
    tiny = tmp_path / 'Tiny' / 'HR'
    tiny.mkdir(parents=True)
    cv2.imwrite(str(tiny / 'a.png'), smooth_image(np.random.default_rng(0), 16, 16))  # SSIM would be nan
    assert benchmark_main(base + ['--sets', str(tmp_path / 'Tiny')]) == 2
    assert 'a.png is 16x16: too small for x4 scoring (SSIM needs 19 px on each side)' in capsys.readouterr().err


def test_reference_may_cover_some_sets_only():
    """Study v2 measures imitation on Set5 / Set14 only: the other sets are scored without it, not refused."""
    from types import SimpleNamespace
    from dukd_arch.benchmark import score_model, summarise
    rng = np.random.default_rng(2)
    hr = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    up = SimpleNamespace(device=torch.device('cpu'), scale=4, enhance=lambda lr: hr[int(lr[0, 0, 0])])
    lrs = [np.full((4, 4, 3), i, np.uint8) for i in range(3)]
    sets = [('A', [('a0', hr[0], lrs[0]), ('a1', hr[1], lrs[1])], None), ('B', [('b0', hr[2], lrs[2])], None)]
    noisy = {('A', 'a0'): np.clip(hr[0].astype(int) + 3, 0, 255).astype(np.uint8), ('A', 'a1'): hr[1]}
    rows = score_model(up, sets, 4, 'm', noisy)[0]
    assert [('psnr_to_reference' in r) for r in rows] == [True, True, False]
    summary = summarise(rows, ['A', 'B'])
    assert 35 < rows[0]['psnr_to_reference'] < 45 and rows[1]['psnr_to_reference'] == float('inf')
    assert 'psnr_to_reference' in summary['A'] and 'psnr_to_reference' not in summary['B']
    with pytest.raises(ValueError, match='A: the reference covers 1 of its 2 images'):
        summarise(score_model(up, sets, 4, 'm', {('A', 'a0'): hr[0]})[0], ['A', 'B'])


def test_the_files_a_student_ships_as_score_alike(tmp_path, capsys):
    # the training checkpoint, the exported safetensors and the ONNX graph (one -opt for all three) are the same
    # student: the command takes each as infer does, and scores them alike
    pytest.importorskip('onnxruntime', reason='the export extra (onnx, onnxruntime) is not installed')
    from dukd_arch.export import main as export_main
    torch.manual_seed(0)
    net = EDSR(**{k: v for k, v in TINY_EDSR.items() if k != 'type'})
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'net_g.pth')
    opt = tmp_path / 'opt.yml'
    opt.write_text(yaml.safe_dump(tool_options()))
    assert export_main(['-opt', str(opt), '--checkpoint', str(tmp_path / 'net_g.pth'), '--out', str(tmp_path)]) == 0
    out = tmp_path / 'res' / 'table.md'
    rc = benchmark_main(['--checkpoint', str(tmp_path / 'net_g.pth'), '-opt', str(opt), '--name', 'pth',
                         '--checkpoint', str(tmp_path / 'student.safetensors'), '--name', 'safetensors',
                         '--checkpoint', str(tmp_path / 'student.onnx'), '--name', 'onnx',
                         '--sets', _tiny_set(tmp_path / 'SetA'), '--scale', str(SCALE), '--device', 'cpu',
                         '--out', str(out)])
    assert rc == 0, capsys.readouterr().err
    scores = {m['name']: m['sets']['SetA'] for m in json.loads((tmp_path / 'res' / 'table.json').read_text())['models']}
    assert scores['safetensors'] == scores['pth']
    assert scores['onnx']['psnr'] == pytest.approx(scores['pth']['psnr'], abs=1e-3)
