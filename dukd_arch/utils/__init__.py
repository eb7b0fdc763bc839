"""Generic helpers: safe checkpoints, teacher/student loading, options, precision, RNG, gradient sync, SR data.

Modules that moved out of ``utils/`` to where their concept lives still import under their old path
(``dukd_arch.utils.degradation`` and so on) as the very same module object, so user code and patches keep
working. No file is left at the old path, so git follows the renames.
"""
import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    'degradation': 'dukd_arch.data.degradation',
    'feature_taps': 'dukd_arch.losses.feature_taps',
    'rcan_convert': 'dukd_arch.io.rcan_convert',
    'quant_export': 'dukd_arch.archs.quant_export',
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import dukd_arch.utils.<old>`` gives the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition('.')
        if package == __name__ and name in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        # the import system returns whatever sys.modules holds under the name after exec_module
        sys.modules[module.__name__] = importlib.import_module(MOVED[module.__name__.rpartition('.')[2]])


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
