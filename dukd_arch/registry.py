"""Our names in BasicSR's registries: never a collision with a fork's names.

Every arch, dataset, loss and model defined in ``dukd_arch`` is registered under ``dukd.<Name>`` (always
ours, e.g. ``model_type: dukd.KDModel``) and under its short name ``<Name>`` only while that is free. A
short name the process registered before us stays the fork's; a fork that registers one of our short names
after us takes it over. Either way one log line names the taken names and the ``dukd.`` alias to use.
BasicSR's own ``Registry`` asserts on any taken name, so a fork that already has a ``KDModel`` could not
import us at all.
"""
import logging

from basicsr.utils.registry import Registry

PREFIX = 'dukd.'
_PACKAGE = __name__.split('.')[0]  # 'dukd_arch'
_basicsr_do_register = Registry._do_register

logger = logging.getLogger('basicsr')
_taken = []  # (registry, name) pairs a fork held before us, reported in one line by report_taken_names
_reported = False


def is_dukd_object(obj) -> bool:
    """Defined in this package (a fork's subclass of one of our classes is the fork's)."""
    module = getattr(obj, '__module__', None) or ''
    return module == _PACKAGE or module.startswith(_PACKAGE + '.')


def lookup(registry: Registry, name):
    """What ``registry.get(name)`` builds (with basicsr's ``<name>_basicsr`` fallback), or None; no print."""
    if not isinstance(name, str):
        return None
    found = registry._obj_map.get(name)
    return found if found is not None else registry._obj_map.get(f'{name}_basicsr')


def registered_names(registry: Registry):
    """Every name an option file can give ``registry`` (basicsr's ``<name>_basicsr`` entries answer to ``<name>``)."""
    return sorted({name.removesuffix('_basicsr') for name in registry._obj_map})


def registered_as(registry: Registry, name, cls) -> bool:
    """``name`` (short, ``dukd.`` or fork alias) builds ``cls`` or a subclass of it."""
    found = lookup(registry, name)
    return isinstance(found, type) and issubclass(found, cls)


def _do_register(self, name, obj, suffix=None):
    if isinstance(suffix, str):
        name = f'{name}_{suffix}'
    held = self._obj_map.get(name)
    if is_dukd_object(obj):
        _basicsr_do_register(self, PREFIX + name, obj)
        if held is None:
            self._obj_map[name] = obj
        elif held is not obj:
            _note_taken(self._name, name)
    elif held is not None and is_dukd_object(held) and not name.startswith(PREFIX):
        self._obj_map[name] = obj  # the fork's own name wins; ours stays under dukd.<name>
        owner = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__name__', name)}"
        logger.warning(f"dukd: {self._name} name '{name}' is now {owner}; dukd's stays available as "
                       f"'{PREFIX}{name}' (use that name in option files for ours).")
    else:
        _basicsr_do_register(self, name, obj)


def _note_taken(registry_name, name):
    _taken.append((registry_name, name))
    if _reported:  # registered after the package import (a lazily imported module): say it now
        report_taken_names()


def report_taken_names() -> None:
    """One log line for the short names other packages held when ours were registered."""
    global _reported
    _reported = True
    if not _taken:
        return
    names = ', '.join(f"{registry} '{name}' -> '{PREFIX}{name}'" for registry, name in _taken)
    logger.warning(f'dukd: names already registered by another package keep meaning theirs; use the dukd. '
                   f'alias for ours: {names}.')
    _taken.clear()


def install() -> None:
    Registry._do_register = _do_register
