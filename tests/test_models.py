"""KDModel / DUKDModel behaviour on tiny networks."""
import copy

import pytest
import torch

from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY
from conftest import SCALE, make_opt, save_teacher
from dukd_arch.ops import apply_augmentations
from dukd_arch.models.dukd_options import parse_dukd_options


@ARCH_REGISTRY.register()
class NearestUpForTests(torch.nn.Module):
    """Exactly equivariant to flips, transpose and colour inversion: LCR with an exact inverse changes nothing."""

    def __init__(self, upscale=SCALE):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(1))
        self.upscale = upscale

    def forward(self, x):
        up = torch.nn.functional.interpolate(x, scale_factor=self.upscale, mode='nearest')
        return self.gain * (up - 0.5) + 0.5


def _steps(model, batch, n=3):
    for it in range(1, n + 1):
        model.feed_data(batch)
        model.optimize_parameters(it)


def test_teacher_is_frozen_and_never_trained(tmp_path, batch):
    model = build_model(make_opt(tmp_path))
    before = copy.deepcopy(model.net_t.state_dict())
    _steps(model, batch)
    assert not model.net_t.training
    assert all(not p.requires_grad and p.grad is None for p in model.net_t.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.net_t.state_dict().items())
    optimised = {id(p) for group in model.optimizer_g.param_groups for p in group['params']}
    assert not optimised & {id(p) for p in model.net_t.parameters()}


def test_every_loss_term_is_logged_and_student_learns(tmp_path, batch):
    model = build_model(make_opt(tmp_path))
    before = copy.deepcopy(model.net_g.state_dict())
    _steps(model, batch)
    assert set(model.get_current_log()) == {'l_pix', 'l_kd', 'l_zoom_in', 'l_zoom_out_lr', 'l_zoom_out_kd', 'l_total'}
    assert any(not torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())


def test_kd_model_logs_pixel_and_kd(tmp_path, batch):
    model = build_model(make_opt(tmp_path, model_type='BaseKD'))
    _steps(model, batch, 1)
    assert set(model.get_current_log()) == {'l_pix', 'l_kd', 'l_total'}


def test_authors_keys_parse_like_ours():
    theirs = parse_dukd_options({'dukd_opt': {'n_gt_sub': [2], 'zoom_out': True}, 'noisy': {'prob': 0.3}})
    ours = parse_dukd_options({'dukd_opt': {'zoom_in': {'num_tiles': 2}, 'zoom_out': True,
                                            'label_consistency': {'prob': 0.3}}})
    same = ('zoom_in_tiles', 'zoom_in_positions', 'zoom_out', 'lcr_prob', 'lcr_ops', 'lcr_apply_to', 'two_step')
    assert all(getattr(theirs, k) == getattr(ours, k) for k in same)
    assert theirs.zoom_in_tiles == 2 and theirs.lcr_prob == 0.3
    assert parse_dukd_options({'dukd_opt': {'n_gt_sub': [1]}}).lcr_prob == 0  # no `noisy` key: LCR off
    with pytest.raises(ValueError, match='zoom_inn'):
        parse_dukd_options({'dukd_opt': {'zoom_inn': 1}})


def test_label_consistency_uses_the_exact_inverse(tmp_path, batch, monkeypatch):
    import dukd_arch.models.dukd_model as dukd_model
    net = {'type': 'NearestUpForTests', 'upscale': SCALE}
    base = make_opt(tmp_path, network_g=net)
    base['train']['dukd_opt'] = {'zoom_in': {'num_tiles': 4}, 'zoom_out': False}
    lcr = copy.deepcopy(base)
    # every tile gets invert + vflip + transpose: the authors' same-order "inverse" rotates its label 180 deg
    lcr['train']['dukd_opt']['label_consistency'] = {'prob': 1.0, 'ops': ['invert', 'vflip', 'transpose']}
    augmented = []  # the flags the student's tiles were augmented with, per run
    real_apply = dukd_model.apply_augmentations
    monkeypatch.setattr(dukd_model, 'apply_augmentations', lambda x, flags: augmented.append(flags) or
                        real_apply(x, flags))
    losses = []
    for opt in (base, lcr):
        model = build_model(opt)
        model.feed_data(batch)
        torch.manual_seed(0)
        _, terms = model.compute_losses(1)
        losses.append(terms['l_zoom_in'].item())
        if opt is base:
            assert not augmented  # no label consistency: the student sees the tiles as they are
    # with it, every tile was inverted, flipped and transposed (the ops not asked for stay off), and mapped back
    assert len(augmented) == 1 and augmented[0].shape[0] == 4 * batch['lq'].shape[0]
    assert augmented[0][:, [0, 1, 3]].all() and not augmented[0][:, 2].any()
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    flags = torch.tensor([[True, True, False, True]])
    x = torch.rand(1, 3, 4, 4)
    assert not torch.equal(apply_augmentations(apply_augmentations(x, flags), flags), x)


def test_two_step_parity_mode_reproduces_the_authors_update(tmp_path, batch):
    opt = make_opt(tmp_path, train_extra={'ema_decay': 0})
    opt['train']['dukd_opt'] = {'n_gt_sub': [1], 'zoom_out': True, 'two_step': True}
    model = build_model(opt)
    student = copy.deepcopy(model.net_g)
    data = dict(batch)
    data['zoom_in'] = batch['gt'][:, None, :, :8, :8].clone()  # fixed tiles: no RNG in the comparison
    model.feed_data(data)
    model.optimize_parameters(1)

    # reference: the authors' loop written out by hand
    teacher = model.net_t
    optim = torch.optim.Adam(student.parameters(), lr=1e-3, betas=(0.9, 0.99))
    l1 = torch.nn.functional.l1_loss
    optim.zero_grad()
    out = student(batch['lq'])
    with torch.no_grad():
        t_lq = teacher(batch['lq'])
    (l1(out, batch['gt']) + l1(out, t_lq)).backward()
    optim.step()  # step A
    tiles = data['zoom_in'][:, 0]
    small = model.zoom_out_inputs()
    with torch.no_grad():
        t_tiles, t_small = teacher(tiles), teacher(small)
    s_small = student(small)
    (l1(student(tiles), t_tiles) + l1(s_small, batch['lq']) + l1(s_small, t_small)).backward()  # no zero_grad
    optim.step()  # step B
    for (k, ours), theirs in zip(model.net_g.state_dict().items(), student.state_dict().values()):
        assert torch.allclose(ours, theirs, atol=1e-6), k


def test_combined_loss_is_one_step(tmp_path, batch):
    opt = make_opt(tmp_path, train_extra={'ema_decay': 0})
    model = build_model(opt)
    _steps(model, batch, 2)
    assert model.optimizer_g.state[model.optimizer_g.param_groups[0]['params'][0]]['step'] == 2


def test_ema_copies_buffers(tmp_path, batch):
    model = build_model(make_opt(tmp_path))
    model.net_g.register_buffer('quant_state', torch.zeros(1))
    model.net_g_ema.register_buffer('quant_state', torch.zeros(1))
    model.net_g.quant_state.fill_(3.0)
    model.model_ema(0.999)
    assert model.net_g_ema.quant_state.item() == 3.0


def test_self_ensemble_averages_the_8_transforms(tmp_path, batch):
    opt = make_opt(tmp_path)
    opt['val'] = {'self_ensemble': True}
    model = build_model(opt)
    model.feed_data({'lq': batch['lq'][:1, :, :7, :5]})  # non-square, odd size
    model.test()
    net = model.net_g_ema
    with torch.no_grad():
        lq = model.lq
        # the 8 symmetries of the square written out here (flip, then k quarter turns), each undone on the output
        ref = sum(torch.rot90(net(torch.rot90(lq.flip(-1) if f else lq, k, (-2, -1))), -k, (-2, -1)).flip(-1)
                  if f else torch.rot90(net(torch.rot90(lq, k, (-2, -1))), -k, (-2, -1))
                  for f in (False, True) for k in range(4)) / 8
        plain = net(lq)
    assert not torch.allclose(ref, plain, atol=1e-4)  # the ensemble is not the plain pass for this network
    torch.testing.assert_close(model.output, ref, atol=1e-5, rtol=0)


def test_nonfinite_loss_stops_with_terms(tmp_path, batch):
    model = build_model(make_opt(tmp_path))
    bad = dict(batch)
    bad['gt'] = batch['gt'].clone()
    bad['gt'][0, 0, 0, 0] = float('nan')
    model.feed_data(bad)
    with pytest.raises(FloatingPointError, match='iter 7.*l_pix=nan'):
        model.optimize_parameters(7)
    (tmp_path / 'b').mkdir()
    skip = build_model(make_opt(tmp_path / 'b', train_extra={'nonfinite': 'skip'}))
    before = copy.deepcopy(skip.net_g.state_dict())
    skip.feed_data(bad)
    skip.optimize_parameters(1)
    assert all(torch.equal(before[k], v) for k, v in skip.net_g.state_dict().items())


# ------------------------------------------------------------------------------------------------ bad input
def test_missing_teacher_file_is_named(tmp_path):
    opt = make_opt(tmp_path)
    opt['path']['pretrain_network_t'] = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        build_model(opt)


def test_teacher_keys_that_do_not_match_are_listed(tmp_path):
    opt = make_opt(tmp_path)
    opt['network_t']['num_block'] = 3
    with pytest.raises(ValueError, match=r'missing in file \(4\).*body\.2'):
        build_model(opt)


def test_teacher_scale_mismatch(tmp_path):
    (tmp_path / 'x4').mkdir()
    teacher = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 12, 'num_block': 2, 'upscale': 4}
    save_teacher(tmp_path / 'x4' / 'teacher.pth', teacher)
    opt = make_opt(tmp_path / 'x4', network_t=teacher)
    with pytest.raises(ValueError, match='teacher.*x4.*scale: 2'):
        build_model(opt)


def test_too_many_tiles_fails_before_training(tmp_path):
    opt = make_opt(tmp_path)
    opt['train']['dukd_opt'] = {'zoom_in': {'num_tiles': 5}}
    with pytest.raises(ValueError, match='holds 4 non-overlapping'):
        build_model(opt)


def test_lr_patch_not_a_multiple_of_scale_fails_before_training_with_zoom_out(tmp_path):
    opt = make_opt(tmp_path)
    opt['datasets']['train']['gt_size'] = 18  # LR 9 px, zoom-out 5 px, student 10 px against the 9 px LR label
    with pytest.raises(ValueError, match=r'gt_size 18 at scale 2 .* multiple of scale x scale = 4 \(e.g. 16 or 20\)'):
        build_model(opt)
    opt['train']['dukd_opt']['zoom_out'] = False  # without zoom-out the patch is fine
    build_model(opt)


def test_swinir_window_that_cannot_tile_zoom_out(tmp_path):
    swin = {'type': 'SwinIR', 'upscale': SCALE, 'in_chans': 3, 'img_size': 8, 'window_size': 8, 'img_range': 1.,
            'depths': [1], 'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle'}
    opt = make_opt(tmp_path, network_g=swin)
    opt['datasets']['train']['gt_size'] = 8  # LR 4 px, zoom-out 2 px: cannot be padded to 8
    with pytest.raises(ValueError, match='window size 8 cannot tile'):
        build_model(opt)


def test_swinir_student_trains_with_padding(tmp_path, batch):
    swin = {'type': 'SwinIR', 'upscale': SCALE, 'in_chans': 3, 'img_size': 8, 'window_size': 4, 'img_range': 1.,
            'depths': [1], 'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle'}
    model = build_model(make_opt(tmp_path, network_g=swin))
    _steps(model, batch, 1)  # zoom-out input is 4 px (LR 8 / 2): padded to the window inside
    model.feed_data({'lq': batch['lq'][:1, :, :7, :6]})
    model.test()
    assert model.output.shape[-2:] == (14, 12)
