"""--device of the commands (infer, benchmark, card, teacher_labels): checked before anything is built."""
import pytest
import torch

from dukd_arch.devices import command_device


def test_a_device_name_torch_does_not_know_is_named_with_the_flag():
    with pytest.raises(ValueError, match=r"--device 'bogus': not a device name; e\.g\. cpu, cuda"):
        command_device('bogus')


def test_a_device_this_machine_lacks_is_refused_with_what_it_has(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ValueError, match='--device cuda: no CUDA device is visible to torch; use --device cpu'):
        command_device('cuda')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert command_device('cuda:1') == torch.device('cuda:1')
    with pytest.raises(ValueError, match=r'this machine has 2 CUDA device\(s\) \(cuda:0 \.\. cuda:1\)'):
        command_device('cuda:2')
    monkeypatch.setattr(torch.accelerator, 'is_available', lambda: False)
    with pytest.raises(ValueError, match='--device mps: no mps device here; use --device cpu.'):
        command_device('mps')


def test_the_default_is_the_accelerator_else_the_cpu(monkeypatch):
    assert command_device('cpu') == torch.device('cpu')
    monkeypatch.setattr(torch.accelerator, 'is_available', lambda: False)
    assert command_device(None) == torch.device('cpu')
