"""Atomic saves: a checkpoint is written to a temporary file beside it, synced, then renamed over it, so a crash
or kill never leaves a half-written checkpoint under the real name (and files get the umask's mode)."""
import os
import re
import secrets
from typing import List, Tuple

import torch


# the names atomic_save writes (16 hex digits; 8 characters of [a-z0-9_] from earlier versions' mkstemp)
TEMPORARY = re.compile(r'^\..+\.(?:pth|state)\.[0-9a-z_]{8,16}\.tmp$')


def _create_temporary(path: str) -> Tuple[int, str]:
    """A new hidden ``.<name>.<random>.tmp`` next to ``path``, created like ``open(..., 'wb')`` does: mode
    0o666 minus the umask (tempfile.mkstemp would force 0600, unlike BasicSR's own checkpoints)."""
    folder, name = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(folder, f'.{name}.{secrets.token_hex(8)}.tmp')
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666), tmp
        except FileExistsError:
            continue


def remove_stale_temporaries(folder: str) -> List[str]:
    """Delete the temporary files that saves killed with SIGKILL left in ``folder``; returns their names.

    Only call it when no save to ``folder`` is running (at the start of training)."""
    removed = []
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if TEMPORARY.match(name):
                try:
                    os.remove(os.path.join(folder, name))
                    removed.append(name)
                except FileNotFoundError:
                    pass
    return removed


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write(path: str, write) -> None:
    """``write(binary file)`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
