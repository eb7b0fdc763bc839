"""The package's layering, read from its source with ``ast`` (docs/architecture.md describes it).

* Every checkpoint read (``torch.load``, safetensors' ``load_file`` / ``safe_open`` / ``load``) sits in
  ``dukd_arch/io/``.
* The lower layers (ops, io, archs, losses, data, training) never import ``dukd_arch.models`` or
  ``dukd_arch.options``; ``ops`` imports nothing from BasicSR.
* No import circle among dukd_arch's modules, counting imports inside functions too.
"""
import ast
import os
import subprocess
import sys

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


@pytest.mark.parametrize('module, source, expected', [
    ('dukd_arch.models.kd_model', 'from ..options import schema', {'dukd_arch.options.schema'}),
    ('dukd_arch.models.kd_model', 'from ..options import OptionError', {'dukd_arch.options'}),
    ('dukd_arch.models.dukd_model', 'from .dukd_options import parse_dukd_options', {'dukd_arch.models.dukd_options'}),
    ('dukd_arch.io', 'from . import shipped', {'dukd_arch.io.shipped'}),
    ('dukd_arch.compat', 'def f():\n    import dukd_arch.models.kd_model', {'dukd_arch.models.kd_model'}),
])
def test_imports_resolve_to_the_modules_they_name(module, source, expected):
    assert imported_modules(module, source) == expected


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


def test_lower_layers_never_import_models_or_options():
    bad = []
    for module in sorted(MODULES):
        if module.split('.')[1:2] and module.split('.')[1] in LOWER_LAYERS:
            for name in imported_modules(module, read_source(module)):
                if any(name == upper or name.startswith(upper + '.') for upper in UPPER):
                    bad.append(f'{module} imports {name}')
    assert not bad, 'a lower layer (ops, io, archs, losses, data, training) imports upward:\n' + '\n'.join(bad)


def test_ops_has_no_basicsr_dependency():
    bad = [f'{m} imports {name}' for m in sorted(MODULES) if m.startswith(f'{PACKAGE}.ops')
           for name in imported_modules(m, read_source(m)) if name.split('.')[0] == 'basicsr']
    assert not bad, '\n'.join(bad)


def find_cycle(graph):
    """One cycle of ``graph`` (``{node: set of nodes}``) as a list of nodes, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None


def test_no_import_circle_among_the_package_modules():
    # an import names its module only: the parent packages it also runs are no arrow of their own
    graph = {m: {n for n in imported_modules(m, read_source(m)) if n in MODULES and n != m} for m in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, 'import circle: ' + ' -> '.join(cycle)


def test_models_import_the_option_schema_only_when_they_run():
    """The schema learns what each model reads from its ``option_families``, so importing a model never runs it."""
    bad = []
    for module in sorted(m for m in MODULES if m.startswith(f'{PACKAGE}.models')):
        tree = ast.parse(read_source(module))
        top_level = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))],
                               type_ignores=[])
        names = imported_modules(module, ast.unparse(top_level))
        bad += [f'{module} imports {n}' for n in names if n == UPPER[1] or n.startswith(UPPER[1] + '.')]
    assert not bad, '\n'.join(bad)


def test_the_gain_study_is_not_imported_by_the_package_or_training():
    """benchmarks/gain_study.py and gain_data.py are the study's: importing dukd_arch or train.py never runs them."""
    code = ('import runpy, sys; runpy.run_path("train.py", run_name="not_main"); '
            'print(sorted(m for m in sys.modules if m.split(".")[-1] in ("gain_study", "gain_data")))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == '[]'
    assert not [m for m in MODULES if m.split('.')[-1] in ('gain_study', 'gain_data')]
