"""scripts/smoke_options.py (a CPU-sized copy of any option file) and the real-world meta_info generator."""
import glob
import importlib.util
import os

import cv2
import numpy as np
import pytest
import yaml

import dukd_arch  # noqa: F401
from basicsr.data import build_dataset
from dukd_arch.data.meta_info import write_meta_info
from dukd_arch.options.file import load_options

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def _script():
    spec = importlib.util.spec_from_file_location('smoke_options', f'{REPO}/scripts/smoke_options.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    """The demo layout, x4 LR only (other scales are made by the script)."""
    root = tmp_path_factory.mktemp('demo')
    rng = np.random.default_rng(0)
    for split, n, size in (('train', 3, 144), ('val', 1, 140)):  # 140: not a multiple of 3
        for i in range(n):
            hr = (rng.random((size, size, 3)) * 255).astype(np.uint8)
            lr = cv2.resize(hr, (size // 4, size // 4), interpolation=cv2.INTER_AREA)
            for folder, img in (('HR', hr), ('LR_bicubic/X4', lr)):
                os.makedirs(root / split / folder, exist_ok=True)
                cv2.imwrite(str(root / split / folder / f'{i:03d}.png'), img)
    return str(root)


TRAIN_FILES = sorted(glob.glob(f'{REPO}/options/*.yml') + glob.glob(f'{REPO}/options/realworld/*.yml'))


def test_every_shipped_training_option_file_shrinks_to_a_cpu_run(data_dir, tmp_path):
    smoke = _script()
    for path in TRAIN_FILES:
        opt, _ = smoke.smoke_options(load_options(path), data_dir, iters=3, batch=4)
        name = os.path.basename(path)
        assert opt['train']['total_iter'] == 3 and opt['num_gpu'] == 0, name
        assert 'pretrain_network_g' not in opt['path'] and 'resume_state' not in opt['path'], name
        assert opt['val']['val_freq'] == opt['logger']['save_checkpoint_freq'] == 3, name
        train_set = opt['datasets']['train']
        assert train_set['batch_size_per_gpu'] == 4 and train_set['num_worker_per_gpu'] == 0, name
        assert opt.get('queue_size', 8) % 4 == 0, name
        scale = opt['scale']
        gt = opt.get('gt_size', train_set.get('gt_size'))
        assert gt <= 128 and gt % (scale * scale) == 0, name
        for ds_key, ds in opt['datasets'].items():  # every data root exists and the sets load
            ds = dict(ds, phase=ds_key.split('_')[0], scale=scale)
            dataset = build_dataset(ds)
            item = dataset[0]
            if ds['phase'] == 'train' and ds['type'] != 'RealESRGANDataset':
                assert item['gt'].shape[-1] == gt and item['lq'].shape[-1] == gt // scale, name


def test_smoke_copy_is_written_and_names_what_is_missing(data_dir, tmp_path, capsys):
    out = tmp_path / 'x.yml'
    assert _script().main([f'{REPO}/options/dukd_edsr_x2.yml', data_dir, '-o', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'download it (docs/teachers.md) or pass --teacher FILE' in printed and 'train.py -opt' in printed
    opt = yaml.safe_load(out.read_text())
    assert opt['name'] == 'DUKD_EDSR_x2_smoke'
    assert os.path.isdir(opt['datasets']['train']['dataroot_lq']) and opt['datasets']['train']['gt_size'] == 16
    assert _script().main([f'{REPO}/options/dukd_edsr_x2.yml', str(tmp_path / 'nowhere')]) == 1
    assert 'demo layout' in capsys.readouterr().err


def test_meta_info_lists_gt_images_relative_to_the_root(tmp_path):
    (tmp_path / 'gt' / 'sub').mkdir(parents=True)
    for name in ('b.png', 'a.jpg', 'sub/c.png'):
        cv2.imwrite(str(tmp_path / 'gt' / name), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / 'gt' / 'notes.txt').write_text('x')
    assert write_meta_info(str(tmp_path / 'gt'), str(tmp_path / 'meta' / 'm.txt')) == 3
    assert (tmp_path / 'meta' / 'm.txt').read_text().splitlines() == ['a.jpg', 'b.png', 'sub/c.png']
    with pytest.raises(FileNotFoundError, match='holds no images'):
        write_meta_info(str(tmp_path / 'meta'), str(tmp_path / 'n.txt'))
