"""Feature distillation: taps, layer maps, the feature losses, and their integration into the KD models."""
import copy
import glob
import os

import pytest
import torch
import yaml

from basicsr.archs import build_network
from basicsr.archs.edsr_arch import EDSR
from basicsr.archs.rcan_arch import RCAN
from basicsr.archs.swinir_arch import SwinIR
from basicsr.losses import build_loss
from basicsr.models import build_model
from conftest import SCALE, TINY_TEACHER, make_opt, save_teacher
from dukd_arch.losses.fakd_loss import spatial_affinity
from dukd_arch.models.feature_kd_model import build_feature_terms
from dukd_arch.losses.rkd_loss import _gram, pairwise_distances, triplet_cosines
from dukd_arch.ops import forward_padded
from dukd_arch.io.checkpoint import read_checkpoint
from dukd_arch.losses.feature_taps import (FeatureTaps, UnknownLayerError, default_layer_map, parse_layer_map,
                                          probe_feature_shapes)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
EQUAL_WIDTH_TEACHER = {**TINY_TEACHER, 'num_feat': 8}  # same width as the tiny student: CrossKD works


def _tiny_swinir(num_stages, embed_dim=12, window=4, upscale=SCALE):
    return SwinIR(upscale=upscale, in_chans=3, img_size=16, window_size=window, img_range=1., depths=[1] * num_stages,
                  embed_dim=embed_dim, num_heads=[2] * num_stages, mlp_ratio=2, upsampler='pixelshuffle')


def _feature_model(tmp_path, feature_kd_opt, model_type='FeatureKDModel', teacher=TINY_TEACHER, seed=0, **train):
    save_teacher(str(tmp_path / 'teacher.pth'), teacher)
    opt = make_opt(tmp_path, model_type=model_type, network_t=copy.deepcopy(teacher),
                   train_extra={'feature_kd_opt': feature_kd_opt, **train})
    if model_type == 'FeatureKDModel':
        opt['train'].pop('dukd_opt')
    torch.manual_seed(seed)
    return build_model(opt)


# --------------------------------------------------------------------------------------------------- taps
def test_tap_on_conv_after_body_sees_the_feature_before_the_inplace_skip():
    torch.manual_seed(0)
    net = EDSR(3, 3, num_feat=8, num_block=2, upscale=SCALE).eval()
    x = torch.rand(1, 3, 10, 10)
    taps = FeatureTaps(net, ['conv_after_body', 'conv_first'], 'student')
    with torch.no_grad():
        with taps.capture():
            net(x)
        body_out, first = taps.features()
        expected = net.conv_after_body(net.body(first))
    assert torch.allclose(body_out, expected)  # without the clone it would be expected + first (res += x)
    assert not torch.allclose(body_out, expected + first)


def test_swinir_tokens_become_maps_of_the_padded_input_and_are_cropped_back():
    torch.manual_seed(0)
    net = _tiny_swinir(2).eval()
    raw = {}
    net.layers[1].register_forward_hook(lambda m, args, out: raw.update(tokens=out, size=args[1]))
    taps = FeatureTaps(net, ['layers.1'], 'student')
    x = torch.rand(2, 3, 10, 10)  # window 4: padded to 12 x 12
    with torch.no_grad(), taps.capture():
        forward_padded(net, x, 4, SCALE)
    padded = taps.features()[0]
    assert padded.shape == (2, 12, 12, 12) and raw['size'] == (12, 12)
    assert torch.equal(padded, net.patch_unembed(raw['tokens'], raw['size']))  # SwinIR's own layout
    assert taps.features(crop=(10, 10))[0].shape == (2, 12, 10, 10)


def test_only_the_first_forward_in_a_capture_is_recorded_and_batch_is_limited():
    net = EDSR(3, 3, num_feat=8, num_block=1, upscale=SCALE).eval()
    taps = FeatureTaps(net, ['body.0'])
    a, b = torch.rand(3, 3, 8, 8), torch.rand(2, 3, 4, 4)
    with torch.no_grad(), taps.capture(batch_limit=2):
        net(a)
        net(b)
    feat = taps.features()[0]
    assert feat.shape == (2, 8, 8, 8) and taps.input is a


def test_bad_layer_name_is_a_clear_error_with_nearby_names():
    net = EDSR(3, 3, num_feat=8, num_block=2, upscale=SCALE)
    with pytest.raises(UnknownLayerError, match=r"no module named 'conv_after_bdy'.*conv_after_body"):
        parse_layer_map({'conv_after_bdy': 'conv_after_body'}, net, net)
    with pytest.raises(UnknownLayerError, match=r"teacher EDSR has no module named 'body.7'.*body.1"):
        parse_layer_map({'body.0': 'body.7'}, net, net)


def test_bad_layer_name_in_options_fails_when_the_model_is_built(tmp_path):
    with pytest.raises(UnknownLayerError, match='student EDSR has no module named'):
        _feature_model(tmp_path, {'type': 'FAKDLoss', 'layers': {'body.5': 'body.1'}})


# --------------------------------------------------------------------------------------------------- layer maps
def _published_pairs():
    with torch.device('meta'):  # real sizes, no memory
        edsr_t = EDSR(3, 3, num_feat=256, num_block=32, upscale=4, res_scale=0.1, img_range=255.)
        edsr_s = EDSR(3, 3, num_feat=64, num_block=32, upscale=4, res_scale=0.1, img_range=255.)
        rcan_t = RCAN(3, 3, num_feat=64, num_group=10, num_block=20, upscale=4, img_range=255.)
        rcan_s = RCAN(3, 3, num_feat=64, num_group=10, num_block=6, upscale=4, img_range=255.)
    # SwinIR's constructor calls .item() (no meta); same module names and stage counts, tiny widths
    swin_t, swin_s = _tiny_swinir(6, window=8, upscale=4), _tiny_swinir(4, window=8, upscale=4)
    return {'edsr': (edsr_s, edsr_t), 'rcan': (rcan_s, rcan_t), 'swinir': (swin_s, swin_t),
            'edsr->rcan': (rcan_s, edsr_t), 'swinir->rcan': (rcan_s, swin_t)}


def test_default_layer_maps_of_the_published_pairs():
    pairs = _published_pairs()
    expected = {
        'edsr': [('body.7', 'body.7'), ('body.15', 'body.15'), ('body.23', 'body.23'), ('body.31', 'body.31')],
        'rcan': [('body.2', 'body.2'), ('body.4', 'body.4'), ('body.7', 'body.7'), ('body.9', 'body.9')],
        'swinir': [('layers.0', 'layers.1'), ('layers.1', 'layers.2'), ('layers.2', 'layers.4'),
                   ('layers.3', 'layers.5')],
        'edsr->rcan': [('body.2', 'body.7'), ('body.4', 'body.15'), ('body.7', 'body.23'), ('body.9', 'body.31')],
        'swinir->rcan': [('body.2', 'layers.1'), ('body.4', 'layers.2'), ('body.7', 'layers.4'),
                         ('body.9', 'layers.5')],
    }
    for name, (student, teacher) in pairs.items():
        assert parse_layer_map(None, student, teacher) == expected[name], name
    # the layer names also exist in the published RCAN / EDSR checkpoints' module trees
    assert list(default_layer_map(*pairs['rcan'], num_pairs=2).items()) == [('body.4', 'body.4'), ('body.9', 'body.9')]


def test_default_maps_pair_features_of_equal_resolution():
    student, teacher = _tiny_swinir(4), _tiny_swinir(6, embed_dim=16)
    pairs = parse_layer_map(None, student, teacher)
    s = probe_feature_shapes(student, [p[0] for p in pairs], 16)
    t = probe_feature_shapes(teacher, [p[1] for p in pairs], 16)
    assert all(a[1:] == b[1:] == (16, 16) for a, b in zip(s, t)) and s[0][0] == 12 and t[0][0] == 16


# --------------------------------------------------------------------------------------------------- losses
def test_fakd_chunked_loss_and_gradient_equal_the_full_affinity():
    torch.manual_seed(0)
    s = torch.randn(2, 4, 6, 5, requires_grad=True)
    t = torch.randn(2, 8, 6, 5)
    full = (spatial_affinity(s) - spatial_affinity(t)).abs().mean()
    chunked = build_loss({'type': 'FAKDLoss', 'chunk_size': 7})([s], [t])
    assert torch.allclose(full, chunked, atol=1e-6)
    g_full, = torch.autograd.grad(full, s)
    g_chunked, = torch.autograd.grad(chunked, s)
    assert torch.allclose(g_full, g_chunked, atol=1e-7)


def test_rkd_relations_from_the_gram_matrix_match_the_definitions():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64) + 3  # an offset: centring must not change relations
    e = x.flatten(1)
    diff = torch.nn.functional.normalize(e.unsqueeze(0) - e.unsqueeze(1), dim=2)  # [j, i] = e_i - e_j
    assert torch.allclose(pairwise_distances(_gram(x)), torch.cdist(e, e), atol=1e-9)
    assert torch.allclose(triplet_cosines(_gram(x)), diff @ diff.transpose(1, 2), atol=1e-8)


def test_relational_loss_needs_a_batch():
    with pytest.raises(ValueError, match='batch size >= 3'):
        build_loss({'type': 'RKDLoss'})([torch.rand(2, 4, 3, 3)], [torch.rand(2, 5, 3, 3)])


FEATURE_LOSSES = [
    ('l_fitnet', {'type': 'FitNetLoss', 'layers': {'body.0': 'body.1'}}),
    ('l_attentiontransfer', {'type': 'AttentionTransferLoss', 'layers': {'body.0': 'body.1'}}),
    ('l_fakd', {'type': 'FAKDLoss', 'layers': {'body.0': 'body.1'}, 'chunk_size': 20}),  # 64 positions: 4 chunks
    ('l_rkd', {'type': 'RKDLoss', 'layers': {'body.0': 'body.1'}}),
    ('l_crosskd', {'type': 'CrossKDLoss', 'layers': {'body.0': 'body.1'}}),
]


@pytest.mark.parametrize('log_name, entry', FEATURE_LOSSES, ids=[e['type'] for _, e in FEATURE_LOSSES])
def test_each_feature_loss_trains_the_tapped_student_layer_and_its_adapters(tmp_path, log_name, entry):
    model = _feature_model(tmp_path, entry, teacher=EQUAL_WIDTH_TEACHER)
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(3, 3, 16, 16, generator=g)
    model.feed_data({'lq': torch.nn.functional.avg_pool2d(gt, SCALE), 'gt': gt})
    model.optimizer_g.zero_grad(set_to_none=True)
    _, loss_dict = model.compute_losses(1)
    loss = loss_dict[log_name]
    assert loss.requires_grad and float(loss.detach()) > 0
    loss.backward()  # the feature term alone
    tapped = model.net_g.body[0]
    grads = [p.grad for p in tapped.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads) and sum(gr.abs().sum() for gr in grads) > 0
    behind = model.net_g.conv_last.weight.grad  # after the tapped layer: the feature term does not reach it
    assert behind is None or not behind.any()
    assert all(p.grad is None for p in model.net_t.parameters())
    for module in model.extra_trainable.values():
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert bool(model.extra_trainable) == (entry['type'] == 'FitNetLoss')


def test_adapters_are_optimised_saved_and_resumed(tmp_path):
    entry = [{'type': 'FAKDLoss', 'layers': {'body.0': 'body.1'}},
             {'type': 'FitNetLoss', 'layers': {'body.0': 'body.0'}}]
    model = _feature_model(tmp_path, entry)
    adapters = model.extra_trainable['feature_kd_1']
    assert list(model.extra_trainable) == ['feature_kd_1']  # FAKD has nothing to train
    in_optimizer = {id(p) for group in model.optimizer_g.param_groups for p in group['params']}
    assert {id(p) for p in adapters.parameters()} <= in_optimizer
    before = copy.deepcopy(adapters.state_dict())
    gt = torch.rand(2, 3, 16, 16)
    for it in (1, 2):
        model.feed_data({'lq': torch.nn.functional.avg_pool2d(gt, SCALE), 'gt': gt})
        model.optimize_parameters(it)
    assert {'l_fakd', 'l_fitnet'} <= set(model.get_current_log())
    assert any(not torch.equal(before[k], v) for k, v in adapters.state_dict().items())
    os.makedirs(model.opt['path']['models'], exist_ok=True)
    os.makedirs(model.opt['path']['training_states'], exist_ok=True)
    model.save(0, 2)
    saved = read_checkpoint(os.path.join(model.opt['path']['models'], 'net_feature_kd_1_2.pth'), 'adapters')
    assert all(torch.equal(saved['params'][k], v.cpu()) for k, v in adapters.state_dict().items())

    resumed = _feature_model(tmp_path, entry, seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(resumed.extra_trainable['feature_kd_1'].state_dict().values(),
                                                     adapters.state_dict().values()))
    state = read_checkpoint(os.path.join(model.opt['path']['training_states'], '2.state'), 'state')
    resumed.resume_training(state)
    for k, v in adapters.state_dict().items():
        assert torch.equal(resumed.extra_trainable['feature_kd_1'].state_dict()[k], v)


def test_crosskd_needs_equal_widths(tmp_path):
    with pytest.raises(ValueError, match='CrossKD needs equal'):
        _feature_model(tmp_path, {'type': 'CrossKDLoss'})  # student 8 channels, teacher 12


def test_dukd_feature_terms_use_the_real_pair_only(tmp_path):
    """In DUKD the student/teacher see [real LR, zoom-in tiles] in one batch; feature terms must see only the
    real LR, so they equal those of plain feature KD with the same weights."""
    entry = [{'type': 'FAKDLoss', 'layers': {'body.0': 'body.1'}}, {'type': 'AttentionTransferLoss'}]
    gt = torch.rand(2, 3, 16, 16)
    data = {'lq': torch.nn.functional.avg_pool2d(gt, SCALE), 'gt': gt}
    logs = []
    for model_type in ('FeatureKDModel', 'FeatureDUKDModel'):
        model = _feature_model(tmp_path, entry, model_type=model_type)
        model.feed_data(data)
        _, loss_dict = model.compute_losses(1)
        logs.append(loss_dict)
    assert {'l_zoom_in', 'l_zoom_out_kd'} <= set(logs[1])
    for name in ('l_fakd', 'l_attentiontransfer'):
        assert torch.allclose(logs[0][name], logs[1][name], atol=1e-6), name


def test_feature_terms_without_output_kd_and_with_two_step_dukd(tmp_path):
    entry = {'type': 'FAKDLoss', 'layers': {'body.0': 'body.1'}}
    model = _feature_model(tmp_path, entry, model_type='FeatureDUKDModel', kd_opt=None,
                           dukd_opt={'zoom_in': 1, 'zoom_out': False, 'two_step': True})
    gt = torch.rand(2, 3, 16, 16)
    model.feed_data({'lq': torch.nn.functional.avg_pool2d(gt, SCALE), 'gt': gt})
    model.optimize_parameters(1)
    assert {'l_pix', 'l_fakd', 'l_zoom_in'} <= set(model.get_current_log()) and 'l_kd' not in model.get_current_log()


def test_swinir_pair_on_sizes_that_need_window_padding(tmp_path):
    s_net = {'type': 'SwinIR', 'upscale': SCALE, 'in_chans': 3, 'img_size': 16, 'window_size': 4, 'img_range': 1.,
             'depths': [1, 1], 'embed_dim': 12, 'num_heads': [2, 2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle'}
    t_net = {**s_net, 'depths': [1, 1, 1], 'num_heads': [2, 2, 2]}
    torch.manual_seed(0)
    teacher = _tiny_swinir(3)
    torch.save({'params': teacher.state_dict()}, tmp_path / 'teacher.pth')
    opt = make_opt(tmp_path, model_type='FeatureKDModel', network_g=s_net, network_t=t_net,
                   train_extra={'feature_kd_opt': [{'type': 'FAKDLoss'}, {'type': 'CrossKDLoss'}]})
    opt['train'].pop('dukd_opt')
    model = build_model(opt)
    assert [t.pairs for t in model.feature_terms] == [[('layers.0', 'layers.1'), ('layers.1', 'layers.2')],
                                                      [('conv_after_body', 'conv_after_body')]]
    gt = torch.rand(2, 3, 20, 20)  # LR 10 x 10: padded to 12 x 12 for window 4
    model.feed_data({'lq': torch.nn.functional.avg_pool2d(gt, SCALE), 'gt': gt})
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert log['l_fakd'] > 0 and log['l_crosskd'] > 0


# --------------------------------------------------------------------------------------------------- option files
def _network_for_parsing(net_opt):
    """The options' network at real size on the meta device; SwinIR (no meta) with the same stage count, tiny."""
    net_opt = dict(net_opt)
    if net_opt['type'] == 'SwinIR':
        n = len(net_opt['depths'])
        net_opt.update(depths=[1] * n, num_heads=[2] * n, embed_dim=12)
        return build_network(net_opt), 'cpu'
    with torch.device('meta'):
        return build_network(net_opt), 'meta'


def test_every_feature_kd_option_file_resolves_on_its_published_pair():
    files = sorted(glob.glob(os.path.join(REPO, 'options', '*.yml')))
    checked, nets = 0, {}
    for path in files:
        with open(path) as f:
            opt = yaml.safe_load(f)
        if 'feature_kd_opt' not in opt['train']:
            continue
        assert opt['model_type'] in ('FeatureKDModel', 'FeatureDUKDModel'), path
        for key in ('network_g', 'network_t'):  # many files share a pair: build each network once
            spec = yaml.safe_dump(opt[key])
            if spec not in nets:
                nets[spec] = _network_for_parsing(opt[key])
        student, device = nets[yaml.safe_dump(opt['network_g'])]
        teacher, _ = nets[yaml.safe_dump(opt['network_t'])]
        terms, _, _ = build_feature_terms(opt['train']['feature_kd_opt'], student, teacher, device, option=path)
        assert terms and all(t.pairs for t in terms), path
        if opt['network_g']['type'] == 'EDSR' and terms[0].loss.__class__.__name__ == 'FitNetLoss':
            adapter = terms[0].loss.adapters[0]
            assert (adapter.in_channels, adapter.out_channels) == (64, 256), path
        checked += 1
    assert checked >= 12


DDP_SCRIPT = """
import importlib.util, sys, torch, torch.distributed as dist
spec = importlib.util.spec_from_file_location('grad_sync', {path!r})  # torch only: no basicsr import cost
grad_sync = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grad_sync)
rank = int(sys.argv[1])
dist.init_process_group('gloo', init_method='tcp://127.0.0.1:{port}', rank=rank, world_size=2)
adapter = torch.nn.Conv2d(2, 3, 1)
grad_sync.average_gradients_across_ranks(adapter)
adapter(torch.full((1, 2, 2, 2), float(rank + 1))).sum().backward()  # local grads 4 and 8 per weight
print('GRAD', adapter.weight.grad.flatten().tolist())
dist.destroy_process_group()
"""


def test_adapter_gradients_are_averaged_across_ranks(tmp_path):
    import socket
    import subprocess
    import sys
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    script = tmp_path / 'ddp.py'
    script.write_text(DDP_SCRIPT.format(path=os.path.join(REPO, 'dukd_arch', 'training', 'grad_sync.py'), port=port))
    procs = [subprocess.Popen([sys.executable, str(script), str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        grads = [line for line in out.splitlines() if line.startswith('GRAD')]
        assert grads == ['GRAD [6.0, 6.0, 6.0, 6.0, 6.0, 6.0]']
