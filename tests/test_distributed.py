"""Multi-process training: torchrun on CPU (gloo), DDP on the student only, launcher argument spellings."""
import sys

import pytest
import torch

from dukd_arch import compat
from pipeline_opts import pipeline_options, run_two_cpu_ranks, write_options


# what each rank saves after training: both networks and whether each is wrapped in DDP
SAVED = ("{'g': m.get_bare_model(m.net_g).state_dict(), 't': m.net_t.state_dict(), 'g_ddp': isinstance(m.net_g, DDP), "
         "'t_ddp': isinstance(m.net_t, DDP), 'backend': torch.distributed.get_backend(), "
         "'world': torch.distributed.get_world_size()}")


def test_torchrun_two_cpu_ranks_keep_students_identical(tmp_path):
    opt = pipeline_options(str(tmp_path), name='ddp', total_iter=3, save_freq=3, n_images=8, batch=2)
    opt_file = write_options(opt, tmp_path / 'ddp.yml')
    r0, r1 = run_two_cpu_ranks(tmp_path, opt_file, SAVED)
    assert r0['backend'] == 'gloo' and r0['world'] == 2
    assert r0['g_ddp'] and r1['g_ddp'], 'the student must be wrapped in DDP'
    assert not r0['t_ddp'] and not r1['t_ddp'], 'the teacher must stay a plain module'
    for k in r0['g']:
        assert torch.equal(r0['g'][k], r1['g'][k]), f'student weights differ between ranks at {k}'
    teacher = torch.load(tmp_path / 'teacher.pth', weights_only=True)['params']
    assert all(torch.equal(teacher[k], r0['t'][k]) for k in teacher), 'the teacher changed'
    # rank 0 saved the student; the ranks trained on different halves of each batch yet agree
    saved = torch.load(tmp_path / 'experiments' / 'ddp' / 'models' / 'net_g_3.pth', weights_only=True)['params']
    assert all(torch.equal(saved[k], r0['g'][k]) for k in saved)


def test_both_local_rank_spellings_are_accepted():
    argv = ['train.py', '-opt', 'x.yml', '--local-rank=1', '--launcher', 'pytorch', '--local-rank', '0']
    assert compat.normalize_argv(argv) == ['train.py', '-opt', 'x.yml', '--local_rank=1', '--launcher', 'pytorch',
                                           '--local_rank', '0']
    assert compat.normalize_argv(['--local_rank=2']) == ['--local_rank=2']


def test_backend_follows_the_hardware():
    assert compat.default_backend() == ('nccl' if torch.cuda.is_available() else 'gloo')


def test_launcher_without_environment_explains_torchrun(monkeypatch):
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match='torchrun --nproc_per_node'):
        compat.init_dist('pytorch')


def test_launch_style_local_rank_reaches_basicsr_argparse(tmp_path, monkeypatch):
    opt_file = write_options(pipeline_options(str(tmp_path)), tmp_path / 'o.yml')
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', opt_file, '--local-rank=0'])
    opt, args = compat.parse_options(str(tmp_path), is_train=True)
    assert args.local_rank == 0 and opt['dist'] is False


class _FakeProcessGroup:
    """Records init_process_group calls; fails for the backends in ``failing``."""

    def __init__(self, failing=()):
        self.backends, self.failing = [], failing

    def __call__(self, backend, **kwargs):
        self.backends.append(backend)
        if backend in self.failing:
            raise RuntimeError('NCCL error: unhandled system error')


@pytest.fixture
def fake_dist(monkeypatch):
    """init_dist with torchrun's environment, no real process group, no change to the start method."""
    monkeypatch.setenv('RANK', '0'), monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1'), monkeypatch.setenv('MASTER_PORT', '29500')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(compat.dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(compat.mp, 'get_start_method', lambda allow_none=False: 'fork')
    monkeypatch.setattr(compat.torch.cuda, 'set_device', lambda device: None)

    def make(cuda, nccl=True, failing=()):
        group = _FakeProcessGroup(failing)
        monkeypatch.setattr(compat.torch.cuda, 'is_available', lambda: cuda)
        monkeypatch.setattr(compat.dist, 'is_nccl_available', lambda: nccl)
        monkeypatch.setattr(compat.dist, 'init_process_group', group)
        return group

    return make


def test_explicit_nccl_that_fails_on_a_cuda_machine_is_an_error(fake_dist):
    group = fake_dist(cuda=True, failing=('nccl', ))
    with pytest.raises(RuntimeError, match='NCCL backend could not start on this CUDA machine'):
        compat.init_dist('pytorch', backend='nccl')
    assert group.backends == ['nccl'], 'no silent retry with gloo'
    group = fake_dist(cuda=True, failing=('nccl', ))
    with pytest.raises(RuntimeError, match='could not start'):
        compat.init_dist('pytorch')  # the hardware default on a CUDA machine is nccl: same rule
    assert group.backends == ['nccl']


def test_nccl_missing_from_the_torch_build_on_a_cuda_machine_is_an_error(fake_dist):
    group = fake_dist(cuda=True, nccl=False)
    with pytest.raises(RuntimeError, match='has no NCCL'):
        compat.init_dist('pytorch', backend='nccl')
    assert group.backends == []


def test_nccl_on_a_cpu_only_machine_falls_back_to_gloo_with_a_warning(fake_dist, monkeypatch):
    warnings = []
    monkeypatch.setattr(compat.logger, 'warning', warnings.append)  # basicsr's logger may not propagate
    group = fake_dist(cuda=False)
    compat.init_dist('pytorch', backend='nccl')
    assert group.backends == ['gloo']
    assert len(warnings) == 1 and 'no CUDA device: using the gloo backend' in warnings[0]
    group = fake_dist(cuda=False)
    compat.init_dist('pytorch')  # nothing asked for: the hardware default, no warning
    assert group.backends == ['gloo'] and len(warnings) == 1
