"""The authors' option files mean here what they mean in their code (github.com/yun224/DUKD, copies in
tests/data/authors_options)."""
import copy
import glob
import logging
import os

import pytest
import torch
import yaml

from basicsr.archs import build_network
from basicsr.models import build_model
from conftest import TINY_EDSR, TINY_TEACHER, make_opt, save_teacher
from dukd_arch.models.authors_fakd_model import translate_authors_fakd
from dukd_arch.models.dukd_options import parse_dukd_options
from dukd_arch.losses.feature_taps import resolve_module

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
AUTHORS = os.path.join(REPO, 'tests', 'data', 'authors_options')


def _load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _fixed_batch(batch):
    data = dict(batch)
    data['zoom_in'] = batch['gt'][:, None, :, :8, :8].clone()  # fixed tiles: no RNG in the comparison
    return data


# ------------------------------------------------------------------------------------- (a) loss weights
def _upcycled_terms(tmp_path, batch, dukd_opt, noisy=None):
    opt = make_opt(tmp_path, train_extra={'kd_opt': {'type': 'L1Loss', 'loss_weight': 2.0}, 'dukd_opt': dukd_opt})
    if noisy is not None:
        opt['train']['noisy'] = noisy
    torch.manual_seed(0)
    model = build_model(opt)
    model.feed_data(_fixed_batch(batch))
    _, terms = model.compute_losses(1)
    return model.dukd, {k: v.item() for k, v in terms.items()}


def test_authors_keys_scale_the_upcycled_teacher_terms_by_the_kd_weight(tmp_path, batch):
    """Their zoom-in and zoom-out-KD terms are computed by the KD criterion, so kd_opt.loss_weight scales them."""
    theirs, t = _upcycled_terms(tmp_path, batch, {'n_gt_sub': [1], 'zoom_out': True})
    ours, o = _upcycled_terms(tmp_path, batch, {'zoom_in': 1, 'zoom_out': True})
    assert (theirs.zoom_in_weight, theirs.zoom_out_weight) == (2.0, 2.0)
    assert (ours.zoom_in_weight, ours.zoom_out_weight) == (1.0, 1.0)  # readable keys keep their own weights
    assert t['l_zoom_in'] == pytest.approx(2 * o['l_zoom_in'], rel=1e-6)
    assert t['l_zoom_out_kd'] == pytest.approx(2 * o['l_zoom_out_kd'], rel=1e-6)
    assert t['l_zoom_out_lr'] == pytest.approx(o['l_zoom_out_lr'], rel=1e-6)  # the pixel weight in both
    assert t['l_kd'] == pytest.approx(o['l_kd'], rel=1e-6)


def test_noisy_alone_also_selects_the_authors_weighting_and_a_readable_weight_still_wins():
    train = {'kd_opt': {'type': 'L1Loss', 'loss_weight': 3.0}, 'noisy': {'prob': 0.3},
             'dukd_opt': {'zoom_in': 1, 'zoom_out': {'loss_weight': 0.5}}}
    cfg = parse_dukd_options(train)
    assert (cfg.zoom_in_weight, cfg.zoom_out_weight) == (3.0, 0.5)
    assert 'kd_opt.loss_weight' in cfg.zoom_in_weight_source and cfg.zoom_out_weight_source == 'zoom_out.loss_weight'


def test_effective_weights_are_logged_at_start(tmp_path):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('basicsr')
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        opt = make_opt(tmp_path, train_extra={'kd_opt': {'type': 'L1Loss', 'loss_weight': 2.0},
                                              'dukd_opt': {'n_gt_sub': [1], 'zoom_out': True}})
        build_model(opt)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    line = next(r.getMessage() for r in records if 'Effective loss weights' in r.getMessage())
    assert "l_zoom_in 2.0 (kd_opt.loss_weight: the authors' keys)" in line
    assert 'l_zoom_out_lr 1.0 (pixel_opt.loss_weight)' in line and 'l_zoom_out_kd 2.0' in line


def test_shipped_dukd_files_have_the_settings_of_the_authors_dukd_files():
    """Loss weights, tiles, zoom-out, LCR probability and schedule of every published DUKD pair."""
    names = {'EDSR': 'edsr', 'RCAN': 'rcan', 'Swinir': 'swinir'}
    files = sorted(glob.glob(f'{AUTHORS}/*/dukd_*.yml'))
    assert len(files) == 9
    for path in files:
        theirs = _load(path)
        ours = _load(f"{REPO}/options/dukd_{names[os.path.basename(os.path.dirname(path))]}_x{theirs['scale']}.yml")
        t, o = parse_dukd_options(theirs['train']), parse_dukd_options(ours['train'])
        for field in ('zoom_in_tiles', 'zoom_in_positions', 'zoom_in_weight', 'zoom_out', 'zoom_out_weight',
                      'zoom_out_lr_weight', 'lcr_prob', 'lcr_ops', 'lcr_apply_to', 'two_step'):
            assert getattr(t, field) == getattr(o, field), (path, field)
        for section, key in (('pixel_opt', 'loss_weight'), ('kd_opt', 'loss_weight'), ('scheduler', 'milestones'),
                             ('optim_g', 'betas')):
            assert theirs['train'][section][key] == ours['train'][section][key], (path, section)
        assert theirs['train']['optim_g']['lr'] == ours['train']['optim_g']['lr']
        assert theirs['train']['total_iter'] == ours['train']['total_iter'], path
        assert theirs['train']['ema_decay'] == ours['train']['ema_decay'], path


def test_kd_baselines_follow_the_published_kd_file():
    """The authors' released output-KD file (kd_edsr_x4) trains with pixel weight 1.0, not DUKD's 5.0."""
    published = _load(f'{AUTHORS}/EDSR/kd_edsr_x4c256b32_c64b32.yml')['train']
    for scale in (2, 3, 4):
        ours = _load(f'{REPO}/options/kd_edsr_x{scale}.yml')['train']
        assert ours['pixel_opt'] == published['pixel_opt'] and ours['kd_opt'] == published['kd_opt'], scale
    ours_x4 = _load(f'{REPO}/options/kd_edsr_x4.yml')
    assert ours_x4['path']['strict_load_g'] is False and 'KD_EDSR_x2' in ours_x4['path']['pretrain_network_g']


# ------------------------------------------------------------------------------------- (b) model_type FAKD
def test_the_authors_fakd_files_translate_to_modules_of_their_networks():
    for name, blocks in (('EDSR/fakd_edsr_x2c256b32_c64b32.yml', ('10', '21')),
                         ('RCAN/fakd_rcan_x4c64b20g10_c64b6g10.yml', ('2', '6'))):
        opt = _load(f'{AUTHORS}/{name}')
        entry = translate_authors_fakd(opt['train'])
        assert entry['type'] == 'FAKDLoss' and entry['loss_weight'] == 10.0 * 4  # their sum over 4 positions
        assert entry['layers'] == [['conv_first', 'conv_first']] + [[f'body.{b}', f'body.{b}'] for b in blocks] + [
            ['conv_after_body', 'conv_after_body']]
        with torch.device('meta'):
            student, teacher = build_network(dict(opt['network_g'])), build_network(dict(opt['network_t']))
        for s, t in entry['layers']:
            resolve_module(student, s, 'student')
            resolve_module(teacher, t, 'teacher')


def test_model_type_fakd_trains_the_authors_schema(tmp_path, batch):
    """Their EDSR FAKD train section, unchanged, on tiny EDSRs deep enough for positions 10 and 21."""
    student, teacher = {**TINY_EDSR, 'num_feat': 4, 'num_block': 22}, {**TINY_TEACHER, 'num_feat': 6, 'num_block': 22}
    save_teacher(str(tmp_path / 'teacher.pth'), teacher)
    theirs = _load(f'{AUTHORS}/EDSR/fakd_edsr_x2c256b32_c64b32.yml')['train']
    opt = make_opt(tmp_path, model_type='FAKD', network_g=student, network_t=teacher)
    del opt['train']['dukd_opt']
    for key in ('feature_distillation', 'feature_opt', 'pixel_opt', 'kd_opt'):
        opt['train'][key] = copy.deepcopy(theirs[key])
    model = build_model(opt)
    assert type(model).__name__ == 'AuthorsFAKDModel'
    (term, ) = model.feature_terms
    assert term.pairs == [('conv_first', 'conv_first'), ('body.10', 'body.10'), ('body.21', 'body.21'),
                          ('conv_after_body', 'conv_after_body')]
    assert term.loss.loss_weight == 40.0
    model.feed_data(batch)
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert set(log) == {'l_pix', 'l_kd', 'l_fakd', 'l_total'} and log['l_fakd'] > 0


@pytest.mark.parametrize('train, match', [
    ({'feature_distillation': {'positions': ['conv_first'], 'type': 'AT'}}, "type: 'AT' is not supported"),
    ({'feature_distillation': {'positions': ['upsample'], 'type': 'SA'}}, "'upsample' .*is not one the authors"),
    ({'feature_distillation': {'positions': {'g': [1], 't': [1, 2]}, 'type': 'SA'}}, 'equal length'),
    ({'feature_distillation': {'positions': [1], 'type': 'SA'}, 'feature_opt': {'type': 'MSELoss'}},
     'train.feature_opt'),
])
def test_authors_fakd_settings_without_an_exact_equivalent_are_refused(train, match):
    with pytest.raises(ValueError, match=match):
        translate_authors_fakd(train)


# ------------------------------------------------------------------------------------- (c) EMA after a non-strict load
def test_non_strict_student_load_copies_the_student_into_the_ema(tmp_path):
    """EDSR x4 students start from x2 students: the x4 upsampler is missing from the file."""
    x4_teacher, x4_student = {**TINY_TEACHER, 'upscale': 4}, {**TINY_EDSR, 'upscale': 4}
    save_teacher(str(tmp_path / 'teacher.pth'), x4_teacher)
    torch.manual_seed(1)
    x2 = build_network(dict(TINY_EDSR)).state_dict()
    x2_ema = {k: v + 0.5 for k, v in x2.items()}
    torch.save({'params': x2, 'params_ema': x2_ema}, tmp_path / 'x2.pth')
    opt = make_opt(tmp_path, model_type='KDModel', scale=4, network_g=x4_student, network_t=x4_teacher)
    opt['datasets']['train']['gt_size'] = 32
    del opt['train']['dukd_opt']
    opt['path'].update(pretrain_network_g=str(tmp_path / 'x2.pth'), strict_load_g=False)
    model = build_model(opt)
    student, ema = model.net_g.state_dict(), model.net_g_ema.state_dict()
    assert 'upsample.2.weight' not in x2
    assert torch.equal(ema['upsample.2.weight'], student['upsample.2.weight'])  # was the EMA's own random init
    assert torch.equal(ema['conv_first.weight'], x2_ema['conv_first.weight'])  # loaded layers keep params_ema
    assert torch.equal(student['conv_first.weight'], x2['conv_first.weight'])


# ------------------------------------------------------------------------------------- (d) one setting for positions
def test_zoom_in_positions_that_differ_from_the_dataset_are_an_error(tmp_path):
    opt = make_opt(tmp_path)
    opt['datasets']['train'] = {'type': 'UpcyclingPairedImageDataset', 'gt_size': 16,
                                'upcycling': {'zoom_in_tiles': 1, 'positions': 'random'}}
    opt['train']['dukd_opt']['zoom_in'] = {'num_tiles': 1, 'positions': 'grid'}
    with pytest.raises(ValueError, match=r"upcycling\.positions='random'.*zoom_in\.positions is 'grid'.*equal"):
        build_model(opt)
    opt['train']['dukd_opt']['zoom_in']['positions'] = 'random'
    build_model(opt)
