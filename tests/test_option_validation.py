"""The whole option file is validated before anything is built (dukd_arch/options)."""
import copy
import glob
import os
import subprocess
import sys

import pytest
import yaml

from dukd_arch.options import OptionError, check_option_file, validate_options

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
AUTHORS = os.path.join(REPO, 'tests', 'data', 'authors_options')  # github.com/yun224/DUKD (CC0), unchanged


def _base():
    with open(f'{REPO}/options/dukd_edsr_x4.yml') as f:
        return yaml.safe_load(f)


def _problems(opt, is_train=True):
    with pytest.raises(OptionError) as info:
        validate_options(opt, is_train=is_train, source='my.yml')
    return str(info.value)


def _is_test_file(path):
    return f'{os.sep}test{os.sep}' in path or os.path.basename(path).startswith('test_')


def test_every_shipped_option_file_validates():
    files = sorted(glob.glob(f'{REPO}/options/**/*.yml', recursive=True))
    assert len(files) > 70
    for path in files:
        check_option_file(path, is_train=not _is_test_file(path))


def test_the_authors_published_option_files_validate_unchanged():
    files = sorted(glob.glob(f'{AUTHORS}/**/*.yml', recursive=True))
    assert len(files) == 13 and sum(not _is_test_file(f) for f in files) == 12  # 12 training files + 1 test file
    for path in files:
        check_option_file(path, is_train=not _is_test_file(path))


@pytest.mark.parametrize('edit, where, hint', [
    (lambda o: o['train'].__setitem__('kd_optt', o['train'].pop('kd_opt')), 'train.kd_optt', '`kd_opt`'),
    (lambda o: o['train'].__setitem__('nonfinitee', 'skip'), 'train.nonfinitee', '`nonfinite`'),
    (lambda o: o['path'].__setitem__('pretrain_network_tt', 'x.pth'), 'path.pretrain_network_tt',
     '`pretrain_network_t`'),
    (lambda o: o['datasets']['train'].__setitem__('bad_imagess', 'skip'), 'datasets.train.bad_imagess',
     '`bad_images`'),
    (lambda o: o['datasets']['train']['upcycling'].__setitem__('zoomout', True), 'datasets.train.upcycling.zoomout',
     '`zoom_out`'),
    (lambda o: o['val']['metrics']['psnr'].__setitem__('test_y_chanel', True), 'val.metrics.psnr.test_y_chanel',
     '`test_y_channel`'),
    (lambda o: o['logger'].__setitem__('print_frequency', 10), 'logger.print_frequency', '`print_freq`'),
    (lambda o: o.__setitem__('dist_param', {}), 'dist_param', '`dist_params`'),
    (lambda o: o['datasets'].__setitem__('vall', o['datasets']['val']), 'datasets.vall', '`val`'),
])
def test_an_unknown_key_names_its_path_and_the_nearest_known_key(edit, where, hint):
    opt = _base()
    edit(opt)
    message = _problems(opt)
    assert 'my.yml' in message and f'{where}: unknown key; did you mean {hint}?' in message.replace(
        f'{where}: a dataset phase is named train[_N] / val[_N];', f'{where}: unknown key;')


@pytest.mark.parametrize('edit, where, got', [
    (lambda o: o['train']['dukd_opt'].__setitem__('zoom_out', 'false'), 'train.dukd_opt.zoom_out',
     "the string 'false' (a string, not a bool"),
    (lambda o: o['train']['dukd_opt']['zoom_in'].__setitem__('num_tiles', 1.7), 'train.dukd_opt.zoom_in.num_tiles',
     'float 1.7'),
    (lambda o: o['train']['dukd_opt'].__setitem__('label_consistency', True), 'train.dukd_opt.label_consistency',
     'the bool true'),
    (lambda o: o['train']['optim_g'].__setitem__('lr', '1e-4'), 'train.optim_g.lr', 'write 1.0e-4'),
    (lambda o: o['datasets']['train'].__setitem__('batch_size_per_gpu', 16.5), 'datasets.train.batch_size_per_gpu',
     'float 16.5'),
    (lambda o: o['val'].__setitem__('self_ensemble', 'yes'), 'val.self_ensemble', "the string 'yes'"),
    (lambda o: o['network_g'].__setitem__('upscale', '4'), 'network_g.upscale', "the string '4'"),
    (lambda o: o['train'].__setitem__('amp', 'fp8'), 'train.amp', "'fp8' is not supported"),
])
def test_a_value_of_the_wrong_type_is_an_error(edit, where, got):
    opt = _base()
    edit(opt)
    message = _problems(opt)
    assert f'{where}: ' in message and got in message


def test_whole_numbers_written_as_floats_still_count():
    opt = _base()
    opt['logger']['save_checkpoint_freq'] = 5e3  # `!!float 5e3` in the authors' files
    opt['train']['total_iter'] = 250000.0
    validate_options(opt)


def _merge(base, new):
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def test_the_readmes_option_reference_validates_as_written():
    readme = open(f'{REPO}/README.md').read()
    block = readme.split('## Option reference (new keys)', 1)[1].split('```yaml\n', 1)[1].split('```', 1)[0]
    ref = yaml.safe_load('\n'.join(line for line in block.splitlines() if not line.startswith('network_t:')))
    ref['path'].pop('pretrain_network_t')  # a placeholder path
    opt = _base()
    _merge(opt, ref)
    assert opt['datasets']['train']['dataroot_teacher'] is None and opt['train']['dukd_opt']['zoom_in']
    validate_options(opt)


def test_a_dataset_named_by_its_dukd_alias_is_checked_like_its_short_name():
    opt = _base()
    opt['datasets']['train']['type'] = 'dukd.UpcyclingPairedImageDataset'
    opt['datasets']['train']['dataroot_teacherr'] = 'labels/'  # would leave the live teacher on, silently
    assert 'datasets.train.dataroot_teacherr: unknown key; did you mean `dataroot_teacher`?' in _problems(opt)


@pytest.mark.parametrize('pixel_opt', [None, {}])
def test_a_run_without_any_loss_to_the_ground_truth_is_refused_before_building(pixel_opt):
    opt = _base()
    opt['train']['pixel_opt'] = pixel_opt
    assert 'train.pixel_opt: missing or off, and no perceptual loss' in _problems(opt)


def test_output_kd_reads_the_training_pair_keys_too():
    opt = _base()
    opt['model_type'] = 'BaseKD'
    del opt['train']['dukd_opt']
    opt['datasets']['train'].pop('upcycling', None)
    opt['datasets']['train'].update(type='TeacherLabelPairedImageDataset', dataroot_teacher=None,
                                    decoded_cache_mib=None, bad_images='skip')
    validate_options(opt)


def test_network_blocks_are_checked_against_the_constructor():
    opt = _base()
    opt['network_g']['num_blocks'] = 16
    del opt['network_g']['num_in_ch']
    opt['network_t']['type'] = 'EDSRR'
    message = _problems(opt)
    assert 'network_g.num_blocks: unknown key; did you mean `num_block`?' in message
    assert 'network_g.num_in_ch: missing: EDSR needs `num_in_ch`' in message
    assert "network_t.type: no architecture is registered as 'EDSRR'; did you mean `EDSR`?" in message
    assert message.startswith('my.yml: 3 problem(s)')


def test_an_unknown_type_lists_every_name_that_works():
    """BasicSR files SRVGGNetCompact only as `SRVGGNetCompact_basicsr`; the user types (and should read) the short
    name. spandrel's classes are added on first use, so the list names them as a family."""
    from basicsr.utils.registry import ARCH_REGISTRY
    from dukd_arch.registry import lookup, registered_names
    opt = _base()
    opt['network_t']['type'] = 'Nope'
    listed = _problems(opt).split("registered as 'Nope'; registered: ")[1].splitlines()[0].split(', ')
    assert 'SRVGGNetCompact' in listed and 'SRVGGNetCompact_basicsr' not in listed
    assert 'dukd.PAN' in listed
    assert all(lookup(ARCH_REGISTRY, name) is not None for name in listed if not name.startswith('spandrel.'))
    assert set(registered_names(ARCH_REGISTRY)) <= set(listed)


def test_a_swallowed_kwargs_does_not_hide_a_typo():
    """BasicSR's SwinIR takes **kwargs and ignores them: `window_sise: 8` would silently build window 7."""
    opt = yaml.safe_load(open(f'{REPO}/options/dukd_swinir_x4.yml'))
    opt['network_g']['window_sise'] = opt['network_g'].pop('window_size')
    assert 'network_g.window_sise: unknown key; did you mean `window_size`?' in _problems(opt)


def test_auto_teacher_block_is_checked_against_its_signature():
    opt = _base()
    opt['network_t'] = {'type': 'AutoTeacher', 'pth': 'teacher.pth', 'scale': 4}
    message = _problems(opt)
    assert 'network_t.pth: unknown key; did you mean `path`?' in message
    assert 'network_t.path: missing: AutoTeacher needs `path`' in message


def test_self_ensemble_under_a_model_type_that_ignores_it_is_an_error():
    """BasicSR's SRModel never reads val.self_ensemble: its scores were silently those of one pass."""
    opt = yaml.safe_load(open(f'{REPO}/options/test/test_dukd_edsr_x4.yml'))
    opt['val']['self_ensemble'] = True
    validate_options(opt, is_train=False)  # DUKDModel (KDModel.test) averages the 8 transforms
    for model_type in ('SRModel', 'SwinIRModel', 'ScratchRealESRNetModel'):
        opt['model_type'] = model_type
        message = _problems(opt, is_train=False)
        assert f'val.self_ensemble: true, but model_type {model_type} ignores it' in message
        assert 'model_type: DUKDModel or KDModel' in message and 'or remove the key' in message
    opt['val']['self_ensemble'] = False  # what SRModel does anyway
    validate_options(opt, is_train=False)


def test_a_y_channel_dataset_needs_a_one_channel_network():
    opt = _base()
    opt['datasets']['val']['color'] = 'y'
    message = _problems(opt)
    assert "datasets.val.color: 'y' feeds 1-channel (Y) images, but network_g.num_in_ch is 3" in message
    assert 'network_t' not in message  # the teacher never sees validation images
    opt['datasets']['train']['color'] = 'y'
    assert "datasets.train.color: 'y' feeds 1-channel (Y) images, but network_t.num_in_ch is 3" in _problems(opt)
    del opt['datasets']['train']['color']
    opt['network_g']['num_in_ch'] = opt['network_g']['num_out_ch'] = 1
    validate_options(opt)
    swin = yaml.safe_load(open(f'{REPO}/options/dukd_swinir_x4.yml'))
    swin['datasets']['val']['color'] = 'y'
    assert 'network_g.in_chans is 3' in _problems(swin)


def test_keys_the_model_type_does_not_read_are_errors():
    opt = _base()
    opt['model_type'] = 'KDModel'  # dukd_opt would be silently ignored by plain output KD
    message = _problems(opt)
    assert 'train.dukd_opt: read only by the DUKD model types' in message and 'model_type KDModel' in message
    opt['model_type'] = 'SRModel'
    assert 'network_t: read only by the KD model types' in _problems(opt)
    # SRModel adds a perceptual term; the KD / DUKD step does not, so a perceptual_opt there would train without it
    opt = _base()
    opt['train']['perceptual_opt'] = {'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1.0}}
    assert 'train.perceptual_opt: read only by' in _problems(opt) and 'model_type DUKDModel ignores it' in \
        _problems(opt)
    gan = yaml.safe_load(open(f'{REPO}/options/realworld/dukd_realesrgan_x4.yml'))
    assert gan['train']['perceptual_opt'] and validate_options(gan) is not None  # the GAN stage reads it


def test_cpu_prefetch_without_workers_is_refused_where_runs_must_be_reproducible():
    # BasicSR's prefetch thread would reseed the training process's random streams while the step draws from them
    opt = _base()
    opt['datasets']['train'].update(prefetch_mode='cpu', num_worker_per_gpu=0)
    assert "datasets.train.prefetch_mode: 'cpu' with num_worker_per_gpu 0" in _problems(opt)
    opt['datasets']['train']['num_worker_per_gpu'] = 2
    validate_options(opt)
    opt['datasets']['train']['num_worker_per_gpu'] = 0
    opt['train']['exact_resume'] = False  # no per-sample seeding: nothing to race
    validate_options(opt)


def test_an_unregistered_model_type_is_named_with_the_nearest_one():
    opt = _base()
    opt['model_type'] = 'DUKDModle'
    assert "model_type: no model is registered as 'DUKDModle'; did you mean `DUKDModel`?" in _problems(opt)


def test_allow_unknown_keys_is_the_escape_hatch_for_keys_of_your_own():
    opt = _base()
    opt['train']['my_loss_opt'] = {'anything': 1}
    opt['network_g']['my_flag'] = True
    assert 'train.my_loss_opt' in _problems(opt)
    opt['allow_unknown_keys'] = ['train.my_*', 'network_g.my_flag']
    validate_options(opt)


def test_force_yml_entries_are_validated_too(tmp_path):
    path = tmp_path / 'o.yml'
    path.write_text(yaml.safe_dump(_base()))
    with pytest.raises(OptionError, match=r'train\.kd_optt: unknown key; did you mean `kd_opt`'):
        check_option_file(str(path), force_yml=['train:kd_optt={type: L1Loss}'])
    with pytest.raises(OptionError, match=r'train\.dukd_opt\.zoom_out: .*got the string'):
        check_option_file(str(path), force_yml=['train:dukd_opt:zoom_out="false"'])


def test_train_py_refuses_a_bad_file_before_building_anything(tmp_path):
    opt = _base()
    opt['train']['kd_optt'] = opt['train'].pop('kd_opt')
    opt['train']['dukd_opt']['zoom_out'] = 'false'
    path = tmp_path / 'bad.yml'
    path.write_text(yaml.safe_dump(opt))
    env = {**os.environ, 'PYTHONPATH': REPO}
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'train.py'), '-opt', str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0
    assert f'{path}: 2 problem(s)' in proc.stderr
    assert 'train.kd_optt: unknown key; did you mean `kd_opt`?' in proc.stderr
    assert 'train.dukd_opt.zoom_out' in proc.stderr and 'Traceback' not in proc.stderr
    assert not (tmp_path / 'experiments').exists() and not os.path.isdir(os.path.join(REPO, 'experiments', opt['name']))


def test_the_cli_checks_files(tmp_path, capsys):
    from dukd_arch.options.__main__ import main
    good = f'{REPO}/options/kd_rcan_x4.yml'
    bad = tmp_path / 'bad.yml'
    opt = copy.deepcopy(_base())
    opt['train']['kd_optt'] = 1
    bad.write_text(yaml.safe_dump(opt))
    assert main([good]) == 0
    assert main([good, str(bad)]) == 1
    assert 'train.kd_optt' in capsys.readouterr().err
    # a test.py file (no train section) is checked as one, without --test; --train forces the training check
    test_file = f'{REPO}/options/test/test_dukd_rcan_x4.yml'
    assert main([test_file]) == 0 and 'ok (checked as test.py options)' in capsys.readouterr().out
    assert main(['--train', test_file]) == 1 and '\n  train: missing' in capsys.readouterr().err


def test_the_cli_names_data_and_checkpoints_it_cannot_find(tmp_path, capsys, monkeypatch):
    """A file written for another machine still passes (with a note per path); --require-paths makes them fail."""
    from dukd_arch.options.__main__ import main
    monkeypatch.chdir(tmp_path)
    opt = copy.deepcopy(_base())
    (tmp_path / 'hr').mkdir()
    (tmp_path / 'teacher.pth').write_bytes(b'')
    opt['datasets']['train'].update(dataroot_gt='hr', dataroot_lq='no_lr')
    opt['datasets']['val'].update(dataroot_gt='hr', dataroot_lq='hr')
    opt['path'].update(pretrain_network_t='teacher.pth', pretrain_network_g='~/../' + str(tmp_path / 'teacher.pth'))
    path = tmp_path / 'opt.yml'
    path.write_text(yaml.safe_dump(opt))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert f"note: from {tmp_path}: datasets.train.dataroot_lq (set 'DIV2K'): 'no_lr' does not exist" in out
    assert out.count('note: from') == 1
    assert main(['--require-paths', str(path)]) == 1
    assert f"{path}: 1 path(s) not found from {tmp_path}:\n  datasets.train.dataroot_lq (set 'DIV2K'): 'no_lr' " \
        in capsys.readouterr().err
    (tmp_path / 'no_lr').mkdir()
    assert main(['--require-paths', str(path)]) == 0


@pytest.mark.parametrize('script', ['train.py', 'test.py'])
def test_a_missing_data_root_stops_before_any_run_folder_is_made(script, tmp_path):
    """Each failed start used to leave experiments/<name> and tb_logger/<name> (results/<name> for test.py),
    archived as <name>_archived_<time> on the next try, with a traceback ending in the dataset's message."""
    opt = _base() if script == 'train.py' else yaml.safe_load(open(f'{REPO}/options/test/test_dukd_rcan_x4.yml'))
    opt['name'] = f'missing_root_{script[:-3]}_{os.getpid()}'
    (tmp_path / 'hr').mkdir()
    for dataset in opt['datasets'].values():
        dataset.update(dataroot_gt='hr', dataroot_lq='hr')
    last = list(opt['datasets'])[-1]
    opt['datasets'][last]['dataroot_lq'] = 'no_lr'
    path = tmp_path / 'opt.yml'
    path.write_text(yaml.safe_dump(opt))
    env = {**os.environ, 'PYTHONPATH': REPO}
    proc = subprocess.run([sys.executable, os.path.join(REPO, script), '-opt', str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr
    assert f"Error: datasets.{last}.dataroot_lq (set {opt['datasets'][last]['name']!r}): 'no_lr' does not exist" \
        in proc.stderr
    for folder in ('experiments', 'tb_logger', 'results'):
        assert not os.path.exists(os.path.join(REPO, folder, opt['name'])), folder


def test_a_missing_teacher_stops_before_any_run_folder_is_made_unless_resuming_replaces_it(tmp_path):
    """A missing pretrain_network_t is refused up front; a missing pretrain_network_g is not when --auto_resume may
    point it at the run's own models/ (BasicSR's check_resume), but the teacher's path is kept on resume, so is."""
    from dukd_arch.options import OptionError, check_sources
    (tmp_path / 'hr').mkdir()
    opt = _base()
    for dataset in opt['datasets'].values():
        dataset.update(dataroot_gt=str(tmp_path / 'hr'), dataroot_lq=str(tmp_path / 'hr'))
    teacher = tmp_path / 'teacher.pth'
    opt['path'].update(pretrain_network_t=str(teacher), pretrain_network_g=str(tmp_path / 'no_student.pth'))
    teacher.write_bytes(b'')
    with pytest.raises(OptionError, match=r"^path\.pretrain_network_g: checkpoint not found: '.*no_student\.pth'"):
        check_sources(opt, resuming=False)
    check_sources(opt, resuming=True)
    teacher.unlink()
    with pytest.raises(OptionError, match=r"^path\.pretrain_network_t: checkpoint not found: '.*teacher\.pth'"):
        check_sources(opt, resuming=True)
    opt['path']['pretrain_network_t'] = 'dukd:reference_teacher_x4.safetensors'  # shipped with the package
    check_sources(opt, resuming=True)
    opt['network_t'] = {'type': 'AutoTeacher', 'path': str(tmp_path / 'public.pth'), 'scale': 4}  # reads its own
    with pytest.raises(OptionError, match=r"^network_t\.path: checkpoint not found: '.*public\.pth'"):
        check_sources(opt, resuming=True)


@pytest.mark.parametrize('tool', ['card', 'export', 'quant_export'])
def test_the_tools_refuse_a_bad_option_file_with_train_pys_message(tool, tmp_path, monkeypatch, capsys):
    import importlib

    from dukd_arch.options import validated_parse_options
    opt = _base()
    opt['train']['kd_optt'] = opt['train'].pop('kd_opt')
    opt['network_g']['num_blocks'] = opt['network_g'].pop('num_block')
    path = str(tmp_path / 'bad.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', path])
    with pytest.raises(SystemExit) as train_py:  # what train.py prints
        validated_parse_options(str(tmp_path))
    expected = str(train_py.value.code)[len('Error: '):]
    assert 'train.kd_optt: unknown key' in expected and 'network_g.num_blocks: unknown key' in expected
    argv = ['-opt', path, '--checkpoint', str(tmp_path / 'never_read.pth'), '--out', str(tmp_path / 'out')]
    try:
        code = importlib.import_module(f'dukd_arch.{tool}').main(argv)
    except SystemExit as stop:
        code, message = 1, str(stop.code)
    else:
        message = capsys.readouterr().err
    assert code and expected in message
    assert not (tmp_path / 'out').exists()


def test_the_tools_read_a_test_option_file_as_test_py_does(tmp_path):
    from dukd_arch.options import load_checked_options
    path = tmp_path / 'test.yml'
    opt = yaml.safe_load(open(f'{REPO}/options/test/test_dukd_edsr_x4.yml'))
    path.write_text(yaml.safe_dump(opt))
    assert load_checked_options(str(path))['network_g'] == opt['network_g']  # no `train`: checked as a test file
    opt['network_g']['num_feats'] = 64
    path.write_text(yaml.safe_dump(opt))
    with pytest.raises(OptionError, match=r'network_g\.num_feats: unknown key'):
        load_checked_options(str(path))
    with pytest.raises(OptionError, match=r'missing\.yml: options file not found'):
        load_checked_options(str(tmp_path / 'missing.yml'))
