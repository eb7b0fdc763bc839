"""The teacher-label store: builder (tiling, resume, LMDB), dataset alignment, models, bad input, DDP."""
import copy
import json
import os
import re
import random

import cv2
import numpy as np
import pytest
import torch

from basicsr.archs import build_network
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.models import build_model

from conftest import SCALE, TINY_TEACHER, make_opt, write_pairs
from dukd_arch.data.teacher_label_dataset import TeacherLabelPairedImageDataset
from dukd_arch.data.upcycling_paired_image_dataset import UpcyclingPairedImageDataset
from dukd_arch.ops import DIHEDRAL_TRANSFORMS, tiled_forward, tiling_error, transform
from dukd_arch.teacher_labels import main as build_labels
from dukd_arch.data.label_store import (LabelStoreError, check_run_store, manifest_path, read_manifest, sha256_file,
                                         write_manifest)
from pipeline_opts import pipeline_options, run_two_cpu_ranks, write_options

TOL = 1 / 65535



def assert_refused(argv, match):
    """The builder's CLI refuses: exit status 2 and a one-line error matching ``match``, no traceback."""
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert build_labels(argv) == 2
    assert re.search(match, err.getvalue()), err.getvalue()

def _dataset_opt(root, labels=None, **extra):
    opt = {'name': 'tiny', 'type': 'UpcyclingPairedImageDataset', 'dataroot_gt': os.path.join(root, 'data', 'HR'),
           'dataroot_lq': os.path.join(root, 'data', 'LR'), 'io_backend': {'type': 'disk'}, 'scale': SCALE,
           'phase': 'train', 'gt_size': 16, 'use_hflip': True, 'use_rot': True}
    if labels:
        opt['dataroot_teacher'] = labels
    opt.update(extra)
    return opt


@pytest.fixture
def store(tmp_path):
    """Tiny pairs, a tiny teacher and its label store (16-bit PNGs); returns (options file, options, store)."""
    opt = pipeline_options(str(tmp_path), n_images=4, size=32)
    labels = str(tmp_path / 'labels')
    opt['datasets']['train']['dataroot_teacher'] = labels
    opt_file = write_options(opt, tmp_path / 'opt.yml')
    assert build_labels(['-opt', opt_file, '--device', 'cpu']) == 0
    return opt_file, opt, labels


def _teacher(opt):
    net = build_network(copy.deepcopy(TINY_TEACHER)).eval()
    net.load_state_dict(torch.load(opt['path']['pretrain_network_t'], weights_only=True)['params'])
    return net


def _read8(path):
    img = cv2.imread(str(path))
    return torch.from_numpy(img[..., ::-1].astype(np.float32) / 255).permute(2, 0, 1)


def _read16(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return torch.from_numpy(img[..., ::-1].astype(np.float32) / 65535).permute(2, 0, 1)


# ------------------------------------------------------------------------------------------- builder
def test_tiled_forward_matches_untiled_within_label_precision():
    torch.manual_seed(0)
    net = build_network(copy.deepcopy(TINY_TEACHER)).eval()
    x = torch.rand(1, 3, 37, 29)
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, SCALE, tile=10, overlap=8)  # > the tiny EDSR's receptive radius
        assert tiled.shape == whole.shape
        assert (tiled - whole).abs().max() < TOL
        assert tiling_error(net, x, SCALE, 10, 8) < TOL
        assert tiling_error(net, x, SCALE, 10, 0) > TOL  # without context the tile borders differ


def test_builder_writes_teacher_outputs_and_manifest(store):
    opt_file, opt, labels = store
    manifest = read_manifest(labels)
    assert manifest['complete'] and manifest['format'] == 'png16' and manifest['scale'] == SCALE
    assert manifest['teacher']['sha256'] == sha256_file(opt['path']['pretrain_network_t'])
    assert manifest['teacher']['network_t'] == opt['network_t']
    assert [im['key'] for im in manifest['images']] == ['000', '001', '002', '003']
    assert all(im['lr_size'] == [16, 16] and im['label_size'] == [32, 32] for im in manifest['images'])
    net = _teacher(opt)
    lr = cv2.imread(os.path.join(opt['datasets']['train']['dataroot_lq'], '002.png'))
    x = torch.from_numpy(lr[..., ::-1].astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = net(x)[0].clamp(0, 1)
    assert (_read16(os.path.join(labels, '002.png')) - expected).abs().max() <= 0.5 / 65535 + 1e-6


def test_builder_tiles_exactly_or_refuses(store, tmp_path):
    opt_file, _, labels = store
    tiled = str(tmp_path / 'tiled')
    build_labels(['-opt', opt_file, '--out', tiled, '--tile', '6', '--tile-overlap', '8', '--device', 'cpu'])
    for k in ('000', '003'):
        assert (_read16(os.path.join(tiled, f'{k}.png')) - _read16(os.path.join(labels, f'{k}.png'))).abs().max() \
            <= 1.01 * TOL  # at most one rounding step apart
    assert_refused(['-opt', opt_file, '--out', str(tmp_path / 't0'), '--tile', '6', '--tile-overlap', '0'],
                   'differ by .* raise --tile-overlap')


def test_builder_resumes_skips_finished_and_rewrites_damaged_labels(store, capsys):
    opt_file, _, labels = store
    path = lambda k: os.path.join(labels, f'{k}.png')  # noqa: E731
    good = open(path('000'), 'rb').read()
    with open(path('001'), 'wb') as f:  # a truncated label (e.g. a copy that was cut off)
        f.write(good[:len(good) // 2])
    os.remove(path('003'))
    before = os.stat(path('002')).st_mtime_ns
    capsys.readouterr()
    build_labels(['-opt', opt_file, '--device', 'cpu'])
    assert '2 computed now, 2 already there' in capsys.readouterr().out
    assert os.stat(path('002')).st_mtime_ns == before  # finished labels are not rewritten
    assert cv2.imread(path('001'), cv2.IMREAD_UNCHANGED).shape == (32, 32, 3)
    assert os.path.isfile(path('003'))


def test_interrupted_build_is_reported_then_resumed(tmp_path, monkeypatch):
    opt = pipeline_options(str(tmp_path), n_images=3, size=32)
    labels = str(tmp_path / 'labels')
    opt_file = write_options(opt, tmp_path / 'opt.yml')
    import dukd_arch.teacher_labels as tl
    calls = []
    encode = tl.encode_label

    def dying(out, compression):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while computing the second label
        return encode(out, compression)

    monkeypatch.setattr(tl, 'encode_label', dying)
    with pytest.raises(KeyboardInterrupt):
        build_labels(['-opt', opt_file, '--out', labels, '--device', 'cpu'])
    assert sorted(os.listdir(labels)) == ['000.png', 'manifest.json']
    with pytest.raises(LabelStoreError, match='interrupted.*again'):
        TeacherLabelPairedImageDataset(_dataset_opt(str(tmp_path), labels))
    monkeypatch.setattr(tl, 'encode_label', encode)
    build_labels(['-opt', opt_file, '--out', labels, '--device', 'cpu'])
    assert len(TeacherLabelPairedImageDataset(_dataset_opt(str(tmp_path), labels))) == 3


def test_builder_refuses_to_mix_teachers_in_one_store(store, tmp_path):
    opt_file, opt, labels = store
    other = copy.deepcopy(opt)
    other['path']['pretrain_network_t'] = str(tmp_path / 'other.pth')
    from conftest import save_teacher
    save_teacher(other['path']['pretrain_network_t'], seed=1)
    assert_refused(['-opt', write_options(other, tmp_path / 'other.yml'), '--device', 'cpu'], 'another teacher.*--out')


def test_builder_refuses_an_out_among_the_training_images(store, tmp_path):
    opt_file, opt, _ = store
    lr_dir = opt['datasets']['train']['dataroot_lq']
    before = {f: open(os.path.join(lr_dir, f), 'rb').read() for f in os.listdir(lr_dir)}
    for out in (lr_dir, os.path.join(lr_dir, 'labels'), opt['datasets']['train']['dataroot_gt']):
        assert_refused(['-opt', opt_file, '--out', out, '--device', 'cpu'],
                       'inside datasets.train.dataroot_(lq|gt).*folder of its own')
    assert {f: open(os.path.join(lr_dir, f), 'rb').read() for f in os.listdir(lr_dir)} == before
    photos = tmp_path / 'photos'
    photos.mkdir()
    (photos / 'cat.jpg').write_bytes(b'not a store')
    assert_refused(['-opt', opt_file, '--out', str(photos), '--device', 'cpu'],
                   'holds 1 images.*no manifest.json.*not a teacher-label store')


def _replace_lr(opt, name, seed=5):
    """Another LR image of the same name and size (a regenerated or swapped LR set)."""
    path = os.path.join(opt['datasets']['train']['dataroot_lq'], name)
    shape = cv2.imread(path).shape
    cv2.imwrite(path, np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8))


def test_labels_of_other_lr_images_are_refused_and_rebuilt(store, capsys):
    opt_file, opt, labels = store
    ds_opt = {**opt['datasets']['train'], 'phase': 'train', 'scale': SCALE}
    assert len(UpcyclingPairedImageDataset(ds_opt)) == 4
    _replace_lr(opt, '002.png')
    with pytest.raises(LabelStoreError, match=r'labels/002.png was computed from another LR image than .*LR/002.png'
                       '.*recomputes those whose LR changed'):
        UpcyclingPairedImageDataset(ds_opt)
    capsys.readouterr()
    build_labels(['-opt', opt_file, '--device', 'cpu'])
    assert '1 computed now, 3 already there' in capsys.readouterr().out
    UpcyclingPairedImageDataset(ds_opt)
    net = _teacher(opt)  # and the rebuilt label is the teacher's output on the new LR
    with torch.no_grad():
        expected = net(_read8(os.path.join(opt['datasets']['train']['dataroot_lq'], '002.png'))[None])[0].clamp(0, 1)
    assert (_read16(os.path.join(labels, '002.png')) - expected).abs().max() <= 0.5 / 65535 + 1e-6


def test_interrupted_manifest_never_vouches_for_a_stale_label(store, monkeypatch, capsys):
    # The LR changes, the rebuild is killed before it reaches that label: the next build must still redo it.
    opt_file, opt, labels = store
    _replace_lr(opt, '003.png')
    import dukd_arch.teacher_labels as tl
    monkeypatch.setattr(tl, 'encode_label', lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        build_labels(['-opt', opt_file, '--device', 'cpu'])
    with open(manifest_path(labels)) as f:
        unvouched = [im['lq_sha256'] is None for im in json.load(f)['images']]
    assert unvouched == [False, False, False, True]
    monkeypatch.undo()
    capsys.readouterr()
    build_labels(['-opt', opt_file, '--device', 'cpu'])
    assert '1 computed now, 3 already there' in capsys.readouterr().out


def test_store_built_by_an_older_dukd_still_loads_with_a_warning(store, records):
    _, opt, labels = store
    manifest = read_manifest(labels)
    for im in manifest['images']:
        del im['lq_sha256']
    del manifest['loaded_param_key']
    write_manifest(labels, manifest)
    ds_opt = {**opt['datasets']['train'], 'phase': 'train', 'scale': SCALE}
    assert len(UpcyclingPairedImageDataset(ds_opt)) == 4
    assert any('did not record which LR images' in m for m in records)
    check_run_store(opt)  # its param key option (~) resolves on the same file to the same key as now


def test_labels_from_another_param_key_of_the_same_file(store, tmp_path):
    opt_file, opt, labels = store
    ckpt = torch.load(opt['path']['pretrain_network_t'], weights_only=True)
    ckpt['params_ema'] = {k: v * 0.9 for k, v in ckpt['params'].items()}
    torch.save(ckpt, opt['path']['pretrain_network_t'])  # the file the store was built from, now with an EMA copy
    ema = copy.deepcopy(opt)
    ema['path']['param_key_t'] = 'params_ema'
    ema['datasets']['train']['dataroot_teacher'] = str(tmp_path / 'ema_labels')
    ema_file = write_options(ema, tmp_path / 'ema.yml')
    build_labels(['-opt', ema_file, '--device', 'cpu'])
    assert read_manifest(str(tmp_path / 'ema_labels'))['loaded_param_key'] == 'params_ema'
    plain_key = copy.deepcopy(ema)
    plain_key['path']['param_key_t'] = 'params'
    with pytest.raises(LabelStoreError, match=r"weights under 'params_ema'.*loads 'params'.*param_key_t"):
        check_run_store(plain_key)
    assert_refused(['-opt', write_options(plain_key, tmp_path / 'p.yml'), '--device', 'cpu'], 'another teacher')
    check_run_store(ema)


def _lmdb_of(folder, lmdb_path):
    """BasicSR's LMDB layout (its own writer sizes the map too small for tiny images)."""
    import lmdb
    env = lmdb.open(str(lmdb_path), map_size=1 << 24)
    with env.begin(write=True) as txn, open(os.path.join(lmdb_path, 'meta_info.txt'), 'w') as meta:
        for name in sorted(os.listdir(folder)):
            img = cv2.imread(os.path.join(folder, name))
            txn.put(name[:-4].encode(), cv2.imencode('.png', img)[1].tobytes())
            meta.write(f'{name[:-4]}.png ({img.shape[0]},{img.shape[1]},3) 1\n')
    env.close()


def test_lmdb_store_in_basicsr_layout_feeds_an_lmdb_dataset(tmp_path):
    opt = pipeline_options(str(tmp_path), n_images=3, size=32)
    data = tmp_path / 'data'
    _lmdb_of(data / 'HR', data / 'HR.lmdb')
    _lmdb_of(data / 'LR', data / 'LR.lmdb')
    opt['datasets']['train'].update(dataroot_gt=str(data / 'HR.lmdb'), dataroot_lq=str(data / 'LR.lmdb'),
                                    io_backend={'type': 'lmdb'}, dataroot_teacher=str(tmp_path / 'labels.lmdb'))
    build_labels(['-opt', write_options(opt, tmp_path / 'opt.yml'), '--device', 'cpu'])
    meta = (tmp_path / 'labels.lmdb' / 'meta_info.txt').read_text().splitlines()
    assert meta == [f'{k}.png (32,32,3) 0' for k in ('000', '001', '002')]
    ds_opt = {**opt['datasets']['train'], 'phase': 'train', 'scale': SCALE}
    item = UpcyclingPairedImageDataset(ds_opt)[1]
    assert item['teacher'].shape == item['gt'].shape == (3, 16, 16)
    # the label patch is the crop of the teacher's whole-image output that the GT patch is of the HR image
    hr = _read8(data / 'HR' / '001.png')
    with torch.no_grad():
        whole = _teacher(opt)(_read8(data / 'LR' / '001.png')[None])[0].clamp(0, 1)
    found = [(t, l, ops) for ops in DIHEDRAL_TRANSFORMS for t in range(0, 17, SCALE) for l in range(0, 17, SCALE)
             if torch.equal(transform(hr[None, :, t:t + 16, l:l + 16], ops)[0], item['gt'])]
    assert len(found) == 1
    t, l, ops = found[0]
    assert (transform(whole[None, :, t:t + 16, l:l + 16], ops)[0] - item['teacher']).abs().max() <= TOL


# ------------------------------------------------------------------------------------------- dataset
def _fake_store(root, labels, scale=SCALE, size_of=None):
    """A store whose 'teacher output' is the HR image itself (8-bit v stored as 257 v): alignment is visible."""
    os.makedirs(labels, exist_ok=True)
    images = []
    for name in sorted(os.listdir(os.path.join(root, 'data', 'HR'))):
        hr = cv2.imread(os.path.join(root, 'data', 'HR', name))
        if size_of is not None:
            hr = cv2.resize(hr, size_of)
        cv2.imwrite(os.path.join(labels, name), hr.astype(np.uint16) * 257)
        images.append({'key': name[:-4], 'lr_size': [hr.shape[0] // scale, hr.shape[1] // scale],
                       'label_size': list(hr.shape[:2])})
    write_manifest(labels, {'version': 1, 'format': 'png16', 'scale': scale, 'precision': 'fp32',
                            'teacher': {'sha256': '0' * 64, 'checkpoint': 'x', 'network_t': {}},
                            'images': images, 'complete': True})


def _asymmetric_pairs(root, n=3, size=32):
    """Pairs whose HR has no symmetry (a ramp in x plus a different ramp in y per channel, plus noise)."""
    write_pairs(os.path.join(root, 'data'), n, size)
    rng = np.random.default_rng(1)
    for i in range(n):
        yy, xx = np.mgrid[0:size, 0:size]
        hr = np.stack([yy * 3 + xx, xx * 5 + 2 * yy, yy * 7], -1) % 256
        hr = (hr + rng.integers(0, 20, hr.shape)) % 256
        cv2.imwrite(os.path.join(root, 'data', 'HR', f'{i:03d}.png'), hr.astype(np.uint8))


@pytest.mark.parametrize('cls', [UpcyclingPairedImageDataset, TeacherLabelPairedImageDataset])
def test_label_is_cropped_flipped_and_rotated_exactly_like_the_hr_patch(tmp_path, cls):
    root = str(tmp_path)
    _asymmetric_pairs(root)
    _fake_store(root, str(tmp_path / 'labels'))
    ds = cls(_dataset_opt(root, str(tmp_path / 'labels')))
    plain = PairedImageDataset(_dataset_opt(root))
    for seed in range(24):  # covers every flip / rotation combination many times
        random.seed(seed)
        item = ds[seed % len(ds)]
        assert torch.allclose(item['teacher'], item['gt'], atol=1e-6, rtol=0), f'misaligned at seed {seed}'
        random.seed(seed)  # and the same random draws as PairedImageDataset: the same patches
        ref = plain[seed % len(ds)]
        assert torch.equal(ref['gt'], item['gt']) and torch.equal(ref['lq'], item['lq'])


def test_validation_sets_and_plain_items_carry_no_label(tmp_path):
    root = str(tmp_path)
    write_pairs(os.path.join(root, 'data'), 2, 32)
    assert 'teacher' not in UpcyclingPairedImageDataset(_dataset_opt(root))[0]
    _fake_store(root, str(tmp_path / 'labels'))
    with pytest.raises(ValueError, match='training set only'):
        UpcyclingPairedImageDataset(_dataset_opt(root, str(tmp_path / 'labels'), phase='val'))


# ------------------------------------------------------------------------------------------- bad input
def test_missing_and_unreadable_manifest(tmp_path):
    root = str(tmp_path)
    write_pairs(os.path.join(root, 'data'), 2, 32)
    labels = str(tmp_path / 'labels')
    with pytest.raises(LabelStoreError, match='does not exist.*dukd_arch.teacher_labels'):
        UpcyclingPairedImageDataset(_dataset_opt(root, labels))
    os.makedirs(labels)
    with pytest.raises(LabelStoreError, match='no manifest.json.*dukd_arch.teacher_labels'):
        UpcyclingPairedImageDataset(_dataset_opt(root, labels))
    with open(manifest_path(labels), 'w') as f:
        f.write('{"version": 1, "form')
    with pytest.raises(LabelStoreError, match='manifest.json cannot be read.*rebuild'):
        UpcyclingPairedImageDataset(_dataset_opt(root, labels))


def test_missing_label_names_the_image_and_the_fix(tmp_path):
    root = str(tmp_path)
    write_pairs(os.path.join(root, 'data'), 3, 32)
    labels = str(tmp_path / 'labels')
    _fake_store(root, labels)
    os.remove(os.path.join(labels, '001.png'))
    with pytest.raises(LabelStoreError, match=r'1 of 3 training images.*LR/001.png.*labels/001.png is missing.*'
                       'dukd_arch.teacher_labels'):
        UpcyclingPairedImageDataset(_dataset_opt(root, labels))


def test_label_of_the_wrong_size_names_both_files(tmp_path):
    root = str(tmp_path)
    write_pairs(os.path.join(root, 'data'), 2, 32)
    labels = str(tmp_path / 'labels')
    _fake_store(root, labels, size_of=(24, 24))
    with pytest.raises(LabelStoreError, match=r'labels/000.png is 24x24 but .*HR/000.png is 32x32.*Rebuild'):
        UpcyclingPairedImageDataset(_dataset_opt(root, labels))


def test_labels_of_another_scale(tmp_path):
    root = str(tmp_path)
    write_pairs(os.path.join(root, 'data'), 2, 32)
    labels = str(tmp_path / 'labels')
    _fake_store(root, labels, scale=4)
    with pytest.raises(LabelStoreError, match='x4 labels but the dataset has `scale: 2`'):
        UpcyclingPairedImageDataset(_dataset_opt(root, labels))


def _model_opt(tmp_path, opt, labels, model_type='KDModel', dataset_type='UpcyclingPairedImageDataset'):
    mopt = make_opt(tmp_path, model_type)
    mopt['path']['pretrain_network_t'] = opt['path']['pretrain_network_t']
    mopt['datasets']['train'].update(type=dataset_type, dataroot_teacher=labels)
    return mopt


def test_labels_of_another_teacher_fail_at_model_setup(store, tmp_path):
    _, opt, labels = store
    mopt = _model_opt(tmp_path, opt, labels)
    build_model(mopt)  # the same teacher: fine
    from conftest import save_teacher
    save_teacher(str(tmp_path / 'other.pth'), seed=3)
    mopt['path']['pretrain_network_t'] = str(tmp_path / 'other.pth')
    with pytest.raises(LabelStoreError, match=r'another teacher.*other.pth.*Rebuild'):
        build_model(mopt)
    mopt['path']['pretrain_network_t'] = opt['path']['pretrain_network_t']
    mopt['network_t']['num_feat'] = 12  # same as stored; another change in the architecture options:
    mopt['network_t']['res_scale'] = 0.5
    with pytest.raises(LabelStoreError, match='network_t'):
        build_model(mopt)


def test_store_with_a_dataset_that_ignores_it_or_real_world_training(store, tmp_path):
    _, opt, labels = store
    with pytest.raises(LabelStoreError, match='PairedImageDataset does not read dataroot_teacher.*TeacherLabel'):
        build_model(_model_opt(tmp_path, opt, labels, dataset_type='PairedImageDataset'))
    with pytest.raises(LabelStoreError, match='real-world training synthesises'):
        check_run_store(_model_opt(tmp_path, opt, labels), synthesising=True)


# ------------------------------------------------------------------------------------------- models
def _count_teacher_inputs(model):
    seen = []
    forward = model.teacher_forward

    def counting(x):
        seen.append(x.shape[0])
        return forward(x)

    model.teacher_forward = counting
    return seen


@pytest.mark.parametrize('model_type', ['KDModel', 'DUKDModel', 'FeatureDUKDModel'])
def test_models_use_the_stored_label_for_the_real_pair_term(store, tmp_path, batch, model_type):
    _, opt, labels = store
    extra = {'feature_kd_opt': {'type': 'AttentionTransferLoss', 'loss_weight': 1.0}}
    mopt = _model_opt(tmp_path, opt, labels, model_type)
    mopt['train'].update(extra if model_type.startswith('Feature') else {})
    live_opt = copy.deepcopy(mopt)
    del live_opt['datasets']['train']['dataroot_teacher']
    torch.manual_seed(0)
    cached = build_model(mopt)
    torch.manual_seed(0)
    live = build_model(live_opt)  # the same student weights
    assert cached.uses_teacher_labels and not live.uses_teacher_labels
    with torch.no_grad():
        label = live.teacher_forward(batch['lq'])
    # with the label equal to the live teacher's output, every loss term is unchanged
    torch.manual_seed(0)
    live.feed_data(batch)
    seen_live = _count_teacher_inputs(live)
    _, live_losses = live.compute_losses(1)
    torch.manual_seed(0)
    cached.feed_data({**batch, 'teacher': label})
    seen_cached = _count_teacher_inputs(cached)
    _, cached_losses = cached.compute_losses(1)
    assert live_losses.keys() == cached_losses.keys()
    for k in live_losses:
        assert torch.allclose(live_losses[k], cached_losses[k], atol=1e-6), k
    b = batch['lq'].shape[0]
    if model_type == 'KDModel':
        assert seen_live == [b] and seen_cached == []
    elif model_type == 'DUKDModel':  # zoom-in tiles (and zoom-out) keep the live teacher
        assert seen_live == [2 * b, b] and seen_cached == [b, b]
    else:  # feature KD taps the teacher on the real LR anyway
        assert sum(seen_cached) == sum(seen_live)
    # and the label is what the kd term compares with
    cached.feed_data({**batch, 'teacher': torch.zeros_like(label)})
    _, losses = cached.compute_losses(1)
    assert torch.allclose(losses['l_kd'], cached.output.abs().mean(), atol=1e-6)


# ------------------------------------------------------------------------------------------- DDP
SAVED = ("{'g': m.get_bare_model(m.net_g).state_dict(), 'labels': m.uses_teacher_labels, "
         "'world': torch.distributed.get_world_size()}")


def test_ddp_two_cpu_ranks_train_with_the_store(store, tmp_path):
    opt_file, opt, labels = store
    opt.update(name='ddp_labels')
    opt['train']['total_iter'] = 2
    opt['logger']['save_checkpoint_freq'] = 2
    opt_file = write_options(opt, tmp_path / 'ddp.yml')
    r0, r1 = run_two_cpu_ranks(tmp_path, opt_file, SAVED)
    assert r0['world'] == 2 and r0['labels'] and r1['labels']
    assert all(torch.equal(r0['g'][k], r1['g'][k]) for k in r0['g'])
    log = open(next(p for p in (tmp_path / 'experiments' / 'ddp_labels').glob('train_*.log'))).read()
    assert log.count('Real-pair KD term: stored teacher labels, 4 images') == 1


def test_builder_refuses_bad_arguments_and_files_in_one_line(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'\x89PNG not yaml \xff')
    assert_refused(['-opt', str(tmp_path / 'a.png')], r'a\.png: not valid YAML')
    assert_refused(['-opt', str(tmp_path / 'missing.yml')], 'options file not found')
    (tmp_path / 'noscale.yml').write_text('name: x\ndatasets: {train: {dataroot_teacher: labels}}\n')
    assert_refused(['-opt', str(tmp_path / 'noscale.yml'), '--device', 'cpu'], '`scale:` .* is missing')
    with pytest.raises(SystemExit):
        build_labels(['-opt', str(tmp_path / 'noscale.yml'), '--tile', '-1'])
