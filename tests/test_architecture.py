"""The package's layering, read from its source with ``ast`` (docs/architecture.md describes it).

* Every checkpoint read (``torch.load``, safetensors' ``load_file`` / ``safe_open`` / ``load``) sits in
  ``dukd_arch/io/``.
* The lower layers (ops, io, archs, losses, data, training) never import ``dukd_arch.models`` or
  ``dukd_arch.options``; ``ops`` imports nothing from BasicSR.
* No import circle among dukd_arch's modules, counting imports inside functions too.
"""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'dukd_arch'
LOWER_LAYERS = ('ops', 'io', 'archs', 'losses', 'data', 'training')
UPPER = ('dukd_arch.models', 'dukd_arch.options')


def package_modules():
    """``{module name: path}`` for every .py file of the package."""
    modules = {}
    for folder, _, files in os.walk(os.path.join(REPO, PACKAGE)):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                if parts[-1] == '__init__':
                    parts = parts[:-1]
                modules['.'.join(parts)] = path
    return modules


MODULES = package_modules()


def _is_package(module):
    return MODULES[module].endswith('__init__.py')


def imported_modules(module, source):
    """The absolute names of what ``module`` imports (``from a import b`` gives ``a.b`` when that is a module)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = module.split('.') if _is_package(module) else module.split('.')[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            submodules = {f'{base}.{alias.name}' for alias in node.names} & set(MODULES)
            out.update(submodules)
            if len(submodules) < len(node.names):  # a name defined in ``base`` itself
                out.add(base)
    return {name for name in out if name}


def checkpoint_reads(source):
    """``(line, what)`` for each call in ``source`` that reads a checkpoint file."""
    tree = ast.parse(source)
    safetensors_names, torch_names, found = set(), {'torch'}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if node.module.startswith('safetensors') and not alias.name.startswith('save'):
                    found.append((node.lineno, f'from {node.module} import {alias.name}'))
                if node.module.split('.')[0] == 'torch' and alias.name == 'load':
                    found.append((node.lineno, f'from {node.module} import load'))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('safetensors'):
                    safetensors_names.add((alias.asname or alias.name).split('.')[0])
                elif alias.name.split('.')[0] == 'torch':
                    torch_names.add((alias.asname or alias.name).split('.')[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if not isinstance(root, ast.Name):
                continue
            if root.id in torch_names and node.attr == 'load':
                found.append((node.lineno, ast.unparse(node)))
            elif root.id in safetensors_names and node.attr in ('load', 'load_file', 'safe_open'):
                found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def read_source(module):
    with open(MODULES[module], encoding='utf-8') as f:
        return f.read()


@pytest.mark.parametrize('source, expected', [
    ('import torch\nx = torch.load("a.pth")', ['torch.load']),
    ('import torch as T\nT.serialization.load("a.pth")', ['T.serialization.load']),
    ('from torch import load', ['from torch import load']),
    ('from safetensors.torch import load_file', ['from safetensors.torch import load_file']),
    ('from safetensors import safe_open', ['from safetensors import safe_open']),
    ('import safetensors.torch\nsafetensors.torch.load_file("a")', ['safetensors.torch.load_file']),
    ('from safetensors.torch import save_file\nimport torch\ntorch.save({}, "a")', []),
])
def test_the_checkpoint_read_finder_sees_each_way_of_reading(source, expected):
    assert [what for _, what in checkpoint_reads(source)] == expected


def test_every_checkpoint_read_goes_through_the_io_family():
    outside = [f'{MODULES[m]}:{line}: {what}' for m in sorted(MODULES) if not m.startswith(f'{PACKAGE}.io')
               for line, what in checkpoint_reads(read_source(m))]
    assert not outside, 'checkpoint files are read only in dukd_arch/io/ (use its reader):\n' + '\n'.join(outside)
    assert checkpoint_reads(read_source(f'{PACKAGE}.io.checkpoint')), 'the io family itself reads checkpoints'
