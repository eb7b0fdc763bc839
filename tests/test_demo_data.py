"""The demo SR set: a fixed split, real MATLAB-bicubic LR, an LMDB BasicSR reads."""
import os

import cv2
import numpy as np
import pytest

import dukd_arch  # noqa: F401  (basicsr import shim)
from dukd_arch.demo.data import HELDOUT_PHOTOS, TRAIN_PHOTOS, build_demo_set
from dukd_arch.data.sr_data import bicubic_downsample, extract_subimages, modcrop

SMALL = dict(scale=4, crop_size=96, step=160, thresh=0, min_std=12.0, max_per_photo=4,
             train_photos=('astronaut', ), heldout_photos=('chelsea', ), verbose=False)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo'))
    build_demo_set(root, **SMALL)
    return root


def _read(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def test_split_is_fixed_disjoint_and_rebuilds_identically(demo_root, tmp_path):
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    again = build_demo_set(str(tmp_path), **SMALL)
    first = build_demo_set(demo_root, **SMALL)  # up to date: reused, not rebuilt
    assert first == again
    assert first['files']['val'] == ['chelsea.png']
    assert first['files']['train'] and all(n.startswith('astronaut_s') for n in first['files']['train'])
    for split, names in first['files'].items():
        for name in names:
            for sub in ('HR', 'LR_bicubic/X4'):
                a = _read(os.path.join(demo_root, split, sub, name))
                b = _read(os.path.join(str(tmp_path), split, sub, name))
                assert np.array_equal(a, b), (split, sub, name)
    with pytest.raises(ValueError, match='both the train and the held-out'):
        build_demo_set(str(tmp_path / 'x'), **{**SMALL, 'heldout_photos': ('astronaut', )})


def test_lr_is_matlab_bicubic_of_hr_rounded_to_uint8(demo_root):
    import torch
    from basicsr.utils.matlab_functions import imresize
    from dukd_arch.ops import matlab_imresize_uint8
    hr = _read(os.path.join(demo_root, 'val', 'HR', 'chelsea.png'))
    lr = _read(os.path.join(demo_root, 'val', 'LR_bicubic', 'X4', 'chelsea.png'))
    assert hr.shape[0] % 4 == 0 and hr.shape[1] % 4 == 0
    assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3)
    # MATLAB's uint8 imresize, one rounding per pass (bit-exact to the published Set5/Set14 LR, see
    # test_benchmark): the demo LR is exactly that
    exact = matlab_imresize_uint8(torch.from_numpy(hr).permute(2, 0, 1), 0.25).permute(1, 2, 0).numpy()
    assert np.array_equal(exact, lr)
    # and BasicSR's float imresize, rounded once, is the same kernel: off by at most 1 (the second rounding)
    ref = np.clip(np.round(imresize(hr.astype(np.float64) / 255.0, 0.25) * 255.0), 0, 255)
    diff = np.abs(ref - lr.astype(np.float64))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.8
    # and it is not some other downsampler (area average differs from bicubic)
    area = cv2.resize(hr, (lr.shape[1], lr.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(area.astype(int) - lr).mean() > 0.5


def test_lmdb_is_read_by_basicsr_paired_dataset(demo_root):
    from basicsr.data.paired_image_dataset import PairedImageDataset
    train = os.path.join(demo_root, 'train')
    opt = dict(name='demo', phase='val', scale=4, io_backend=dict(type='lmdb'),
               dataroot_gt=os.path.join(train, 'HR.lmdb'), dataroot_lq=os.path.join(train, 'LR_bicubic_X4.lmdb'))
    ds = PairedImageDataset(opt)
    names = sorted(os.listdir(os.path.join(train, 'HR')))
    assert len(ds) == len(names) > 0
    item = ds[0]
    key = os.path.splitext(names[0])[0]
    assert item['lq_path'] == key
    lq_disk = _read(os.path.join(train, 'LR_bicubic', 'X4', names[0]))[..., ::-1].astype(np.float32) / 255
    assert np.allclose(item['lq'].permute(1, 2, 0).numpy(), lq_disk, atol=1e-6)
    assert tuple(item['gt'].shape) == (3, 96, 96)


def test_subimages_and_bicubic_helpers():
    img = np.arange(10 * 13 * 3, dtype=np.uint8).reshape(10, 13, 3)
    assert modcrop(img, 4).shape == (8, 12, 3)
    subs = extract_subimages(np.zeros((20, 30), np.uint8), crop=8, step=8, thresh=0)
    assert [i for i, _ in subs] == list(range(1, 3 * 4 + 1))  # (2 + 1 flush) rows x (3 + 1 flush) cols
    # leftovers <= thresh: no border-flush crop
    assert extract_subimages(np.zeros((20, 30), np.uint8), crop=8, step=8, thresh=6)[-1][0] == 2 * 3
    with pytest.raises(ValueError, match='modcrop'):
        bicubic_downsample([img], 4)
    flat = np.full((8, 8, 3), 77, np.uint8)
    assert (bicubic_downsample([flat], 4)[0] == 77).all()


def test_training_log_parsing_gives_the_validation_curve(tmp_path):
    from dukd_arch.demo.runner import final_metrics, validation_curve
    log = tmp_path / 'train.log'
    log.write_text('\n'.join([
        '    total_iter: 800',  # option dump: not an iteration line
        '2026-01-01 INFO: [demo_..][epoch:  0, iter:     100, lr:(1.000e-03,)] [eta: 0:03:24] l_pix: 3.1e-02',
        '2026-01-01 INFO: Validation demo_heldout',
        '\t # psnr: 27.8767\tBest: 27.8767 @ 100 iter',
        '\t # ssim: 0.7000\tBest: 0.7000 @ 100 iter',
        '2026-01-01 INFO: [demo_..][epoch:  1, iter:   1,200, lr:(5.000e-04,)] [eta: 0:00:00] l_pix: 2.9e-02',
        '2026-01-01 INFO: Validation demo_heldout',
        '\t # psnr: 28.5000\tBest: 28.5000 @ 1200 iter',
        '2026-01-01 INFO: End of training.',
        '2026-01-01 INFO: Validation demo_heldout',  # basicsr validates once more at the end
        '\t # psnr: 28.5000\tBest: 28.5000 @ 1201 iter',
        '\t # ssim: 0.7500\tBest: 0.7500 @ 1201 iter',
    ]))
    assert validation_curve(str(log)) == [(100, 27.8767), (1200, 28.5)]
    assert final_metrics(log.read_text().splitlines()) == {'psnr': 28.5, 'ssim': 0.75}


def test_a_resumed_runs_wall_time_adds_up_every_segment(tmp_path, monkeypatch):
    # A resumed run writes a second log; its training time is both segments (cut one included), not the last.
    import os

    from dukd_arch.demo.pipeline import wall_seconds
    run = type('R', (), {'exp_dir': str(tmp_path)})()
    first, second = tmp_path / 'train_x_1.log', tmp_path / 'train_x_2.log'
    first.write_text('2026-01-01 10:00:00,000 INFO: start\n    total_iter: 800\n'
                     '2026-01-01 10:20:00,500 INFO: [x][epoch:  0, iter:     300, lr:(1e-3,)]\n')  # killed here
    second.write_text('2026-01-01 11:00:00,000 INFO: resumed\n2026-01-01 11:05:00,000 INFO: End of training.\n')
    os.utime(first, (1, 1))  # order by time written, not by name
    os.utime(second, (2, 2))
    (tmp_path / 'notes.log').write_text('2026-01-01 09:00:00,000 INFO: not a training log\n')
    seconds, segments = wall_seconds(run)
    assert segments == 2
    assert seconds == pytest.approx(20 * 60 + 0.5 + 5 * 60)


def test_run_changes_go_into_a_derived_option_file(tmp_path, monkeypatch):
    import yaml

    from dukd_arch.demo.pipeline import Run, iteration_changes
    base = tmp_path / 'base.yml'
    base.write_text('name: base\nmanual_seed: 0\ntrain: {total_iter: 800, scheduler: {milestones: [600]}}\n'
                    'val: {val_freq: 100}\nlogger: {print_freq: 50}\n')
    monkeypatch.chdir(tmp_path)
    plain = Run('x', str(base), 'base')
    assert plain.option_file() == str(base) and plain.total_iter() == 800
    run = Run('x', str(base), 'base_seed3', {**iteration_changes(40), 'manual_seed': 3})
    derived = yaml.safe_load(open(run.option_file()))
    assert derived['name'] == 'base_seed3' and derived['manual_seed'] == 3  # seeded before training, not forced after
    assert derived['train']['total_iter'] == 40 and derived['train']['scheduler']['milestones'] == [30]
    assert run.stamp() != Run('x', str(base), 'base_seed3', {'manual_seed': 4}).stamp()
    # a speed-only change is in the file but not in the stamp: switching it reuses and resumes the run
    fast = Run('x', str(base), 'base_seed3', dict(run.changes), {'datasets:train:decoded_cache_mib': 64})
    assert yaml.safe_load(open(fast.option_file()))['datasets']['train']['decoded_cache_mib'] == 64
    assert fast.stamp() == run.stamp()
    assert Run('x', str(base), 'base', speed={'logger:print_freq': 5}).option_file() != str(base)


def test_demo_option_files_agree_with_each_other():
    import yaml

    from dukd_arch.models.dukd_options import parse_dukd_options
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'options', 'demo')

    def load(name):
        with open(os.path.join(root, name)) as f:
            return yaml.safe_load(f)

    teacher = load('train_teacher.yml')
    students = {k: load(f'train_student_{k}.yml') for k in ('scratch', 'kd', 'dukd')}
    assert {s['model_type'] for s in students.values()} == {'SRModel', 'KDModel', 'DUKDModel'}
    same = ('network_g', 'manual_seed', 'scale')
    for key in same:
        assert len({yaml.safe_dump(s[key]) for s in students.values()}) == 1, key
    for key in ('total_iter', 'optim_g', 'scheduler', 'ema_decay', 'pixel_opt'):
        assert len({yaml.safe_dump(s['train'][key]) for s in students.values()}) == 1, key
    for s in (students['kd'], students['dukd']):
        assert s['network_t'] == teacher['network_g']
        assert s['path']['pretrain_network_t'] == f"experiments/{teacher['name']}/models/net_g_latest.pth"
    cfg = parse_dukd_options(students['dukd']['train'])
    assert cfg.zoom_in_tiles == 1 and cfg.zoom_out and cfg.lcr_prob == 0.3
    for kind, train in [('teacher', teacher)] + [(f'student_{k}', s) for k, s in students.items()]:
        test = load(f'test_{kind}.yml')
        assert test['network_g'] == train['network_g'], kind
        assert test['path']['pretrain_network_g'] == f"experiments/{train['name']}/models/net_g_latest.pth", kind


def _prepare(*argv):
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'scripts', 'prepare_sr_data.py')
    return subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=120)


def test_prepare_sr_data_never_writes_over_its_inputs_and_pairs_only_cropped_hr(tmp_path):
    hr = tmp_path / 'hr'
    hr.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(hr / 'a.png'), rng.integers(0, 256, (18, 18, 3), dtype=np.uint8))  # not a multiple of 4
    before = (hr / 'a.png').read_bytes()
    proc = _prepare('bicubic', '--hr', str(hr), '--lr-out', str(hr), '--scale', '4')
    assert proc.returncode == 1 and '--lr-out is the --hr folder' in proc.stderr and 'Traceback' not in proc.stderr
    proc = _prepare('bicubic', '--hr', str(hr), '--lr-out', str(tmp_path / 'lr'), '--scale', '4')
    assert proc.returncode == 1 and 'is 18x18, not a multiple of 4' in proc.stderr and '--hr-out' in proc.stderr
    assert (hr / 'a.png').read_bytes() == before and not (tmp_path / 'lr').exists()
    proc = _prepare('bicubic', '--hr', str(hr), '--lr-out', str(tmp_path / 'lr'), '--hr-out', str(tmp_path / 'hr16'),
                    '--scale', '4')
    assert proc.returncode == 0, proc.stderr
    assert _read(str(tmp_path / 'hr16' / 'a.png')).shape == (16, 16, 3)
    assert _read(str(tmp_path / 'lr' / 'a.png')).shape == (4, 4, 3)
    proc = _prepare('subimages', '--hr', str(tmp_path / 'hr16'), '--hr-out', str(tmp_path / 'hr16'), '--scale', '4')
    assert proc.returncode == 1 and '--hr-out is the --hr folder' in proc.stderr
    # an LMDB of one tiny image (BasicSR alone sizes its map from the first image and fails: MDB_MAP_FULL)
    proc = _prepare('lmdb', '--folder', str(tmp_path / 'lr'), '--lmdb', str(tmp_path / 'lr.lmdb'))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'lr.lmdb' / 'meta_info.txt').read_text().split()[0] == 'a.png'
