"""Every checkpoint load is safe and checked: student, resume, test.py, extras, CLIs; CRC, finiteness, file modes."""
import logging
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.archs.edsr_arch import EDSR

from basicsr.models import build_model
from basicsr.models.base_model import BaseModel
from conftest import SCALE, TINY_EDSR, make_opt, save_teacher, tool_options, write_pairs
from dukd_arch import compat
from dukd_arch.io.atomic import atomic_save
from dukd_arch.io.checkpoint import read_checkpoint
from dukd_arch.io.network import load_network_safely

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


class _Payload:
    """Unpickling this creates a folder: the proof that code in a checkpoint ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (self.marker, )


def _malicious(path, marker):
    torch.save({'params': _Payload(str(marker))}, str(path))
    return str(path)


def _tiny_student(upscale=SCALE, seed=0):
    torch.manual_seed(seed)
    return EDSR(**{**{k: v for k, v in TINY_EDSR.items() if k != 'type'}, 'upscale': upscale})


def _flip_bytes_of_a_record(path):
    """Flip 8 bytes inside the largest tensor record: same length, valid zip directory, wrong CRC."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(open(path, 'rb').read())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.file_size // 2
    for k in range(8):
        data[start + k] ^= 0xFF
    size = os.path.getsize(path)
    open(path, 'wb').write(bytes(data))
    assert os.path.getsize(path) == size


# ------------------------------------------------------------------------------------------ item 2: safe loads
def test_malicious_pretrain_network_g_is_refused_and_named(tmp_path):
    marker = tmp_path / 'code_ran'
    opt = make_opt(tmp_path)
    opt['path']['pretrain_network_g'] = _malicious(tmp_path / 'student.pth', marker)
    with pytest.raises(ValueError, match=r'student\.pth holds pickled Python objects'):
        build_model(opt)
    assert not marker.exists()


def test_basicsr_models_load_safely_under_our_entry_points(tmp_path, monkeypatch):
    """BasicSR's own SRModel (our demo / real-world test files use it) through use_safe_loading()."""
    monkeypatch.setattr(BaseModel, 'load_network', BaseModel.load_network)  # undone after the test
    compat.use_safe_loading()
    marker = tmp_path / 'code_ran'
    opt = make_opt(tmp_path, model_type='SRModel', is_train=False)
    opt['path'] = {'pretrain_network_g': _malicious(tmp_path / 'srmodel.pth', marker), 'param_key_g': 'params'}
    with pytest.raises(ValueError, match=r'srmodel\.pth holds pickled'):
        build_model(opt)
    assert not marker.exists()
    good = _tiny_student()
    torch.save({'params': good.state_dict()}, str(tmp_path / 'good.pth'))
    opt['path']['pretrain_network_g'] = str(tmp_path / 'good.pth')
    model = build_model(opt)
    assert all(torch.equal(v, good.state_dict()[k]) for k, v in model.net_g.state_dict().items())


def test_test_py_refuses_a_malicious_student_and_names_it(tmp_path):
    shutil.copy(os.path.join(REPO, 'test.py'), tmp_path / 'test.py')
    gt, lq = write_pairs(str(tmp_path / 'val'), n=1, size=16)
    marker = tmp_path / 'code_ran'
    opt = {'name': 'evil', 'model_type': 'SRModel', 'scale': SCALE, 'num_gpu': 0, 'network_g': TINY_EDSR,
           'datasets': {'test_1': {'name': 'v', 'type': 'PairedImageDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
                                   'io_backend': {'type': 'disk'}}},
           'path': {'pretrain_network_g': _malicious(tmp_path / 'evil.pth', marker), 'param_key_g': 'params'},
           'val': {'save_img': False, 'metrics': None}}
    (tmp_path / 'evil.yml').write_text(yaml.safe_dump(opt))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, 'test.py', '-opt', 'evil.yml'], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode != 0
    assert 'evil.pth holds pickled Python objects' in proc.stderr
    assert not marker.exists()


def test_malicious_resume_state_is_refused_and_named(tmp_path):
    marker = tmp_path / 'code_ran'
    torch.save({'iter': 4, 'epoch': 0, 'rng': _Payload(str(marker))}, str(tmp_path / '4.state'))
    opt = {'network_g': {}, 'path': {'experiments_root': str(tmp_path), 'resume_state': str(tmp_path / '4.state')}}
    with pytest.raises(ValueError, match=r'training state .*4\.state holds pickled'):
        compat.load_resume_state(opt)
    assert not marker.exists()


def test_malicious_resumed_adapter_is_refused(tmp_path, batch):
    """Feature-KD extras (FitNet adapters) reload on resume through the same reader."""
    marker = tmp_path / 'code_ran'
    opt = make_opt(tmp_path, model_type='FeatureKDModel',
                   train_extra={'feature_kd_opt': [{'type': 'FitNetLoss', 'num_pairs': 1, 'loss_weight': 0.1}]})
    opt['path']['pretrain_network_feature_kd_0'] = _malicious(tmp_path / 'adapter.pth', marker)
    with pytest.raises(ValueError, match=r'adapter\.pth holds pickled'):
        build_model(opt)
    assert not marker.exists()


@pytest.mark.parametrize('tool', ['card', 'export', 'convert', 'quant_export'])
def test_every_cli_refuses_a_malicious_checkpoint(tool, tmp_path, capsys):
    import importlib
    marker = tmp_path / 'code_ran'
    ckpt = _malicious(tmp_path / 'evil.pth', marker)
    opt_path = tmp_path / 'opt.yml'
    opt_path.write_text(yaml.safe_dump(tool_options()))
    argv = {'card': ['-opt', str(opt_path), '--checkpoint', ckpt, '--repeats', '1'],
            'export': ['-opt', str(opt_path), '--checkpoint', ckpt, '--out', str(tmp_path / 'out')],
            'convert': [ckpt, str(tmp_path / 'out.safetensors')],
            'quant_export': ['-opt', str(opt_path), ckpt, str(tmp_path / 'out.safetensors')]}[tool]
    main = importlib.import_module(f'dukd_arch.{tool}').main
    try:
        code = main(argv)
    except SystemExit as stop:
        code, message = 1, str(stop.code)
    else:
        message = capsys.readouterr().err
    assert code != 0 and 'evil.pth holds pickled Python objects' in message
    assert not marker.exists()


def test_load_network_keeps_basicsr_semantics(tmp_path, records):
    """Non-strict x2 -> x4 start (the authors' EDSR x4 students), param_key fallback, root loading."""
    x2 = _tiny_student(2, seed=1)
    torch.save({'params': x2.state_dict()}, str(tmp_path / 'x2.pth'))
    x4 = _tiny_student(4, seed=2)
    init = {k: v.clone() for k, v in x4.state_dict().items()}
    with pytest.raises(ValueError, match=r'(?s)x2\.pth does not fit.*missing in file'):
        load_network_safely(x4, str(tmp_path / 'x2.pth'), strict=True)
    load_network_safely(x4, str(tmp_path / 'x2.pth'), strict=False, param_key='params_ema')  # falls back to params
    for k, v in x4.state_dict().items():
        assert torch.equal(v, x2.state_dict()[k] if k in x2.state_dict() else init[k]), k
    assert any('missing in file' in m and 'upsample.2' in m for m in records)
    torch.save(x2.state_dict(), str(tmp_path / 'bare.pth'))
    other = _tiny_student(2, seed=3)
    load_network_safely(other, str(tmp_path / 'bare.pth'), param_key=None)
    assert all(torch.equal(v, x2.state_dict()[k]) for k, v in other.state_dict().items())


def test_non_strict_teacher_says_what_it_skips_and_refuses_to_load_nothing(tmp_path, records):
    # strict_load_t: false must not hide a teacher that is partly or wholly left at random init
    from dukd_arch.archs.teacher import build_teacher
    opt = make_opt(tmp_path)
    opt['path']['strict_load_t'] = False
    path = opt['path']['pretrain_network_t']
    state = torch.load(path, weights_only=True)['params']
    torch.save({'params': {k: v for k, v in state.items() if not k.startswith('body.1.')}}, path)
    build_teacher(opt, torch.device('cpu'))
    assert any('missing in file (kept at init)' in m and 'body.1.' in m for m in records)
    torch.save({'params': {f'model.{k}': v for k, v in state.items()}}, path)  # a prefix: no key matches
    with pytest.raises(ValueError, match=r'teacher\.pth: none of its \d+ tensors fits .*network_t.*key prefix'):
        build_teacher(opt, torch.device('cpu'))
    with pytest.raises(ValueError, match='none of its'):  # the student's non-strict init, the same rule
        load_network_safely(_tiny_student(), path, strict=False)


def test_auto_detected_teacher_key_says_when_an_ema_copy_was_passed_over(tmp_path, records):
    from dukd_arch.archs.teacher import build_teacher
    opt = make_opt(tmp_path)
    path = opt['path']['pretrain_network_t']
    state = torch.load(path, weights_only=True)['params']
    torch.save({'params': state, 'params_ema': {k: v * 0.5 for k, v in state.items()}}, path)
    opt['path']['param_key_t'] = None
    build_teacher(opt, torch.device('cpu'))
    assert any('holds both "params" and "params_ema"' in m for m in records)
    records.clear()
    opt['path']['param_key_t'] = 'params_ema'
    build_teacher(opt, torch.device('cpu'))
    assert not any('holds both' in m for m in records)


def test_old_torch_is_refused_for_pth_files(tmp_path, monkeypatch):
    torch.save({'params': {'w': torch.ones(1)}}, str(tmp_path / 'w.pth'))
    monkeypatch.setattr(torch, '__version__', '2.5.1')
    with pytest.raises(RuntimeError, match=r'w\.pth: torch 2\.5\.1 cannot load .pth files safely.*CVE-2025-32434'):
        read_checkpoint(str(tmp_path / 'w.pth'))


# ------------------------------------------------------------------------------------------ item 3: integrity
def test_teacher_with_flipped_bytes_is_refused_and_named(tmp_path):
    opt = make_opt(tmp_path)
    teacher = opt['path']['pretrain_network_t']
    _flip_bytes_of_a_record(teacher)
    assert torch.load(teacher, weights_only=True)  # torch itself loads it: garbage labels without the check
    with pytest.raises(ValueError, match=r'teacher\.pth is corrupt: record .* fails its CRC-32'):
        build_model(opt)


def test_teacher_with_nonfinite_weights_is_refused(tmp_path):
    net = save_teacher(str(tmp_path / 'teacher.pth'))
    state = net.state_dict()
    state['body.1.conv1.weight'][0, 0, 0, 0] = float('inf')
    torch.save({'params': state}, str(tmp_path / 'teacher.pth'))
    with pytest.raises(ValueError, match=r'teacher\.pth has non-finite values .*body\.1\.conv1\.weight'):
        build_model(make_opt(tmp_path))


def test_student_with_nonfinite_weights_is_refused(tmp_path):
    state = _tiny_student().state_dict()
    state['conv_first.bias'][0] = float('nan')
    torch.save({'params': state}, str(tmp_path / 'student.pth'))
    opt = make_opt(tmp_path)
    opt['path']['pretrain_network_g'] = str(tmp_path / 'student.pth')
    with pytest.raises(ValueError, match=r'student\.pth has non-finite values .*conv_first\.bias'):
        build_model(opt)


def _resumable_run(root, iters=(4, 8)):
    exp = root / 'experiments' / 'run'
    (exp / 'training_states').mkdir(parents=True)
    (exp / 'models').mkdir()
    for it in iters:
        atomic_save({'epoch': 1, 'iter': it, 'optimizers': [], 'schedulers': [], 'epoch_samples': 2},
                    str(exp / 'training_states' / f'{it}.state'))
        atomic_save({'params': _tiny_student(seed=it).state_dict()}, str(exp / 'models' / f'net_g_{it}.pth'))
    opt = {'auto_resume': True, 'model_type': 'DUKD', 'network_g': {}, 'path': {
        'experiments_root': str(exp), 'models': str(exp / 'models'), 'resume_state': None}}
    return exp, opt


@pytest.mark.parametrize('damage', ['flipped', 'truncated', 'extra_file_flipped'])
def test_auto_resume_falls_back_past_a_corrupt_net_file(damage, tmp_path, records):
    exp, opt = _resumable_run(tmp_path)
    net = exp / 'models' / 'net_g_8.pth'
    if damage == 'flipped':
        _flip_bytes_of_a_record(str(net))
    elif damage == 'truncated':
        net.write_bytes(net.read_bytes()[:net.stat().st_size // 2])
    else:  # an extra module saved with the state (e.g. a FitNet adapter)
        net = exp / 'models' / 'net_feature_kd_0_8.pth'
        atomic_save({'params': {'w': torch.ones(64)}}, str(net))
        _flip_bytes_of_a_record(str(net))
    state = compat.load_resume_state(opt)
    assert state['iter'] == 4 and opt['path']['resume_state'].endswith('4.state')
    # said in the run's log once BasicSR has opened it (it does so after reading the state)
    compat.flush_resume_warnings(logging.getLogger('basicsr'))
    assert any(m.startswith('Skipping training state') and '8.state' in m and net.name in m for m in records)


def test_stale_temporaries_are_removed_at_start(tmp_path, records):
    opt = make_opt(tmp_path)
    models, states = tmp_path / 'models', tmp_path / 'states'
    models.mkdir(), states.mkdir()
    stale = [models / '.net_g_4.pth.0123456789abcdef.tmp', models / '.net_g_8.pth.k2j_x9az.tmp',  # ours, old ours
             states / '.8.state.fedcba9876543210.tmp']
    kept = [models / 'net_g_4.pth', models / '.notes.tmp', models / 'mine.pth.tmp', states / '8.state']
    for path in stale + kept:
        path.write_bytes(b'x' * 10)
    build_model(opt)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert any('Removed 2 temporary file(s)' in m and str(models) in m for m in records)


@pytest.mark.parametrize('umask', [0o022, 0o002])
def test_checkpoints_get_the_umask_mode(umask, tmp_path):
    old = os.umask(umask)
    try:
        atomic_save({'w': torch.ones(1)}, str(tmp_path / 'net_g_1.pth'))
        with open(tmp_path / 'reference', 'wb'):  # what BasicSR's torch.save(path) gives
            pass
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / 'net_g_1.pth').st_mode & 0o777
    assert mode == 0o666 & ~umask == os.stat(tmp_path / 'reference').st_mode & 0o777


def test_auto_teacher_with_nonfinite_weights_is_refused(tmp_path):
    pytest.importorskip('spandrel')
    from basicsr.archs.srvgg_arch import SRVGGNetCompact
    from safetensors.torch import save_file

    from dukd_arch.archs.teacher import build_teacher
    state = SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=4).state_dict()
    state['body.0.weight'][0, 0, 0, 0] = float('nan')
    path = str(tmp_path / 'compact.safetensors')
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    opt = {'network_t': {'type': 'AutoTeacher', 'path': path, 'scale': 4}, 'path': {}}
    with pytest.raises(ValueError, match=r'compact\.safetensors has non-finite values'):
        build_teacher(opt, torch.device('cpu'))


def _export_student(tmp_path):
    """``python -m dukd_arch.export --safetensors`` of a tiny student: the exported file's path."""
    from dukd_arch.export import main as export_main
    torch.save({'params': _tiny_student().state_dict()}, str(tmp_path / 'net_g_1.pth'))
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(tool_options()))
    assert export_main(['-opt', str(tmp_path / 'opt.yml'), '--checkpoint', str(tmp_path / 'net_g_1.pth'),
                        '--out', str(tmp_path / 'export'), '--safetensors']) == 0
    return str(tmp_path / 'export' / 'student.safetensors')


def _flip_a_tensor_byte(path):
    """Flip one byte in the middle of the tensor data (the header, and so the file's structure, stay valid)."""
    data = bytearray(open(path, 'rb').read())
    header = 8 + int.from_bytes(data[:8], 'little')
    data[(header + len(data)) // 2] ^= 0x01
    open(path, 'wb').write(bytes(data))


def test_exported_safetensors_with_a_flipped_byte_is_refused_and_named(tmp_path):
    from safetensors.torch import load_file

    from dukd_arch.upsampler import load_student as load_exported
    path = _export_student(tmp_path)
    assert torch.equal(read_checkpoint(path)['conv_first.weight'], _tiny_student().state_dict()['conv_first.weight'])
    _flip_a_tensor_byte(path)
    assert all(torch.isfinite(v).all() for v in load_file(path).values())  # safetensors loads it: a wrong weight
    with pytest.raises(ValueError, match=r'student\.safetensors is corrupt: its tensors do not match the SHA-256'):
        read_checkpoint(path)
    with pytest.raises(ValueError, match=r'student\.safetensors is corrupt'):
        load_exported(path, device='cpu')


def test_convert_says_which_weights_it_left_and_never_replaces_its_input(tmp_path, capsys):
    from dukd_arch.convert import main as convert_main
    net = _tiny_student()
    ema = {k: v + 1 for k, v in net.state_dict().items()}
    torch.save({'params': net.state_dict(), 'params_ema': ema}, str(tmp_path / 'both.pth'))
    before = (tmp_path / 'both.pth').read_bytes()
    with pytest.raises(SystemExit):
        convert_main([str(tmp_path / 'both.pth'), str(tmp_path / 'both.pth')])
    assert 'OUT is IN' in capsys.readouterr().err and (tmp_path / 'both.pth').read_bytes() == before
    assert convert_main([str(tmp_path / 'both.pth'), str(tmp_path / 'c.safetensors')]) == 0
    assert 'not_converted: params_ema (pass --param-key params_ema for those weights)' in capsys.readouterr().out
    (tmp_path / 'text.pth').write_text('not a pickle')
    assert convert_main([str(tmp_path / 'text.pth'), str(tmp_path / 'd.pth'), '--unsafe-trust']) == 1
    assert 'text.pth is not a readable checkpoint' in capsys.readouterr().err


def test_quantized_and_converted_safetensors_carry_the_digest(tmp_path):
    from dukd_arch.archs.quant_export import load_quantized, save_quantized
    from dukd_arch.convert import main as convert_main
    from dukd_arch.io.safetensors_file import DIGEST_KEY
    torch.save({'params': _tiny_student().state_dict()}, str(tmp_path / 'net.pth'))
    assert convert_main([str(tmp_path / 'net.pth'), str(tmp_path / 'converted.safetensors')]) == 0
    quant = build_network({**TINY_EDSR, 'type': 'QuantEDSR', 'w_bits': 4, 'a_bits': 4}).train()
    quant(torch.rand(1, 3, 8, 8))
    save_quantized(quant, str(tmp_path / 'q.safetensors'))
    assert DIGEST_KEY in load_quantized(str(tmp_path / 'q.safetensors'))[1]
    _flip_a_tensor_byte(str(tmp_path / 'converted.safetensors'))
    _flip_a_tensor_byte(str(tmp_path / 'q.safetensors'))
    with pytest.raises(ValueError, match=r'converted\.safetensors is corrupt'):
        read_checkpoint(str(tmp_path / 'converted.safetensors'))
    with pytest.raises(ValueError, match=r'q\.safetensors is corrupt'):
        load_quantized(str(tmp_path / 'q.safetensors'))


def test_safetensors_from_elsewhere_load_as_before(tmp_path):
    """No digest (written by another tool): loaded; a NaN in it is still refused by the finiteness check."""
    from safetensors.torch import save_file
    state = _tiny_student().state_dict()
    save_file(state, str(tmp_path / 'theirs.safetensors'))
    assert all(torch.equal(v, state[k]) for k, v in read_checkpoint(str(tmp_path / 'theirs.safetensors')).items())
    state['conv_first.bias'][0] = float('nan')
    save_file(state, str(tmp_path / 'theirs.safetensors'))
    opt = make_opt(tmp_path)
    opt['path'].update(pretrain_network_g=str(tmp_path / 'theirs.safetensors'), param_key_g=None)
    with pytest.raises(ValueError, match=r'theirs\.safetensors has non-finite values .*conv_first\.bias'):
        build_model(opt)


def test_a_param_key_on_a_bare_state_dict_says_to_set_it_to_null(tmp_path):
    """A bare file's keys are tensor names: the fix is `param_key_g: ~`, not one of those names."""
    from safetensors.torch import save_file
    save_file(_tiny_student().state_dict(), str(tmp_path / 'bare.safetensors'))
    with pytest.raises(KeyError) as info:
        load_network_safely(_tiny_student(), str(tmp_path / 'bare.safetensors'), param_key='params_ema')
    message = str(info.value)
    assert 'holds a bare state dict' in message and '`param_key_g: ~`' in message
    assert 'conv_first' not in message  # no tensor name offered as a param key


@pytest.mark.parametrize('umask', [0o022, 0o002])
def test_exported_files_get_the_umask_mode(umask, tmp_path):
    from dukd_arch.archs.quant_export import save_quantized
    from dukd_arch.convert import main as convert_main
    quant = build_network({**TINY_EDSR, 'type': 'QuantEDSR', 'w_bits': 4, 'a_bits': 4}).train()
    quant(torch.rand(1, 3, 8, 8))
    old = os.umask(umask)
    try:
        written = [_export_student(tmp_path)]
        assert convert_main([str(tmp_path / 'net_g_1.pth'), str(tmp_path / 'c.safetensors')]) == 0
        save_quantized(quant, str(tmp_path / 'q.safetensors'))
    finally:
        os.umask(old)
    written += [str(tmp_path / 'c.safetensors'), str(tmp_path / 'q.safetensors')]
    assert [oct(os.stat(p).st_mode & 0o777) for p in written] == [oct(0o666 & ~umask)] * 3
