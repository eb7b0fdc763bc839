"""Weights shipped inside the package, each pinned by its SHA-256.

An option file names one as ``dukd:<file>`` (``path.pretrain_network_t: dukd:reference_teacher_x4.safetensors``),
which works from any working directory, or by its real path. Either way ``read_checkpoint`` checks the file's
hash before loading it: a changed or truncated copy is refused with the file and the expected hash named.
Each file has a model card beside it (``<stem>.md``) that says how it was trained and what it scores.
"""
import hashlib
from os import path as osp

# the files themselves stay in dukd_arch/weights/ (package data, each with its model card)
WEIGHTS_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'weights')
PREFIX = 'dukd:'
SHIPPED = {
    # options/gain/train_teacher.yml, 16000 iterations, EMA weights stored as fp16 (see reference_teacher_x4.md)
    'reference_teacher_x4.safetensors': '333bb2f0a8566c7528318d820235f8a2d76224cd83878150f1ed47e548cc0ea5',
}


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def resolve(path):
    """``dukd:<file>`` -> the shipped file's path; any other path unchanged."""
    if not (isinstance(path, str) and path.startswith(PREFIX)):
        return path
    name = path[len(PREFIX):]
    if name not in SHIPPED:
        raise FileNotFoundError(f'{path!r}: dukd ships no weights named {name!r}; shipped: '
                                f'{", ".join(PREFIX + n for n in SHIPPED)}.')
    return osp.join(WEIGHTS_DIR, name)


def verify(path: str) -> None:
    """Refuse a shipped weight file whose bytes are not the shipped ones (no-op for any other file)."""
    real = osp.realpath(path)
    name = osp.basename(real)
    if osp.dirname(real) != osp.realpath(WEIGHTS_DIR) or name not in SHIPPED:
        return
    expected = SHIPPED[name]
    actual = sha256_file(real)
    if actual != expected:
        raise ValueError(
            f'{path}: SHA-256 {actual} does not match the shipped {name} (expected {expected}); the file was '
            f'changed or truncated. Restore it (`git checkout -- dukd_arch/weights/{name}`, or reinstall dukd).')
