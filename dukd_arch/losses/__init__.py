"""Imports every `*_loss.py` module here so their BasicSR registry decorators run."""
import importlib
from os import path as osp

from basicsr.utils import scandir

_folder = osp.dirname(osp.abspath(__file__))
_modules = sorted(osp.splitext(osp.basename(p))[0] for p in scandir(_folder) if p.endswith('_loss.py'))
_imported = [importlib.import_module(f'dukd_arch.losses.{name}') for name in _modules]
