"""The device a command runs on (``--device``), checked before anything is built."""
from typing import Union

import torch


def command_device(value: Union[None, str, torch.device] = None, flag: str = '--device') -> torch.device:
    """``value`` as a torch device, or the machine's accelerator (CUDA, MPS, ...) when None, else the CPU.
    A name torch does not know, or a device this machine does not have, is a ValueError naming ``flag``."""
    if value is None:
        return torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device('cpu')
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f'{flag} {value!r}: not a device name; e.g. cpu, cuda, cuda:1, mps') from None
    if device.type == 'cpu' or device.type == 'meta':
        return device
    if device.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f'{flag} {value}: no CUDA device is visible to torch; use {flag} cpu.')
        if (device.index or 0) >= count:
            raise ValueError(f'{flag} {value}: this machine has {count} CUDA device(s) (cuda:0 .. cuda:{count - 1}).')
        return device
    accelerator = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None
    if accelerator is None or accelerator.type != device.type:
        raise ValueError(f'{flag} {value}: no {device.type} device here; use {flag} cpu'
                         + (f' or {accelerator.type}' if accelerator is not None else '') + '.')
    return device
