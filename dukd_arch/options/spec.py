"""The small vocabulary the option schema is written in: value types, sections, and the walker.

A ``Section`` knows its keys (each with a spec); a spec is a ``Type`` (a check on a leaf value), a
``Section`` (a mapping), a ``ListOf``, an ``Either`` of those, or a callable ``(value, path, ctx)`` for
checks that need the rest of the file (registered names, constructor signatures). Problems are collected
in ``ctx.errors`` as ``(path, message)``; nothing is raised here (``OptionError``, raised by the callers, lives here
so that every module of the package can import it).
"""
import difflib
import fnmatch
import inspect
import typing
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple


class OptionError(ValueError):
    """The option file has problems; the message lists each with its key path and the fix."""


@dataclass
class Context:
    opt: dict
    is_train: bool
    allow: Sequence[str] = ()
    errors: List[Tuple[str, str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def error(self, path: str, message: str):
        self.errors.append((path, message))

    def allowed(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.allow)


def _is_count(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def describe(v) -> str:
    if isinstance(v, str):
        hint = ''
        if v.strip().lower() in ('true', 'false', 'yes', 'no', 'on', 'off'):
            hint = ' (a string, not a bool: drop the quotes)'
        else:
            try:
                float(v)
                hint = ' (a string, not a number: PyYAML reads 1e-4 as text; write 1.0e-4 or !!float 1e-4)'
            except ValueError:
                pass
        return f'the string {v!r}{hint}'
    if isinstance(v, bool):
        return f'the bool {str(v).lower()}'
    if isinstance(v, dict):
        return 'a mapping'
    if isinstance(v, list):
        return 'a list'
    if v is None:
        return '~ (null)'
    return f'{type(v).__name__} {v!r}'


class Type:
    """A leaf check: ``Type('a bool', lambda v: ...)``."""

    def __init__(self, expected: str, check: Callable[[object], bool]):
        self.expected, self.check = expected, check

    def validate(self, value, path, ctx):
        if not self.check(value):
            ctx.error(path, f'expected {self.expected}, got {describe(value)}')

    def accepts(self, value) -> bool:
        return self.check(value)


BOOL = Type('a bool (true / false)', lambda v: isinstance(v, bool))
COUNT = Type('a whole number', _is_count)
NUMBER = Type('a number', _is_number)
STR = Type('a string', lambda v: isinstance(v, str))
NULL = Type('~ (null)', lambda v: v is None)
# ranges: a count or a rate outside them makes BasicSR or torch fail deep inside, or run something else
POSITIVE = Type('a whole number >= 1', lambda v: _is_count(v) and v >= 1)
NONNEGATIVE = Type('a whole number >= 0', lambda v: _is_count(v) and v >= 0)
PROBABILITY = Type('a number in [0, 1]', lambda v: _is_number(v) and 0 <= v <= 1)
RATE = Type('a number >= 0', lambda v: _is_number(v) and v >= 0)
ANY = Type('anything', lambda v: True)


def one_of(*choices) -> Type:
    return Type('one of ' + ', '.join(repr(c) for c in choices), lambda v: not isinstance(v, bool) and v in choices)


def optional(spec):
    return Either(spec, NULL)


class ListOf:

    def __init__(self, item, expected: Optional[str] = None):
        self.item = item
        self.expected = expected or 'a list'

    def accepts(self, value) -> bool:
        return isinstance(value, (list, tuple))

    def validate(self, value, path, ctx):
        if not self.accepts(value):
            ctx.error(path, f'expected {self.expected}, got {describe(value)}')
            return
        for i, item in enumerate(value):
            check(self.item, item, f'{path}[{i}]', ctx)


class Either:
    """The first alternative whose kind fits the value (a mapping goes to a Section, a list to a ListOf)."""

    def __init__(self, *alternatives):
        self.alternatives = alternatives

    def accepts(self, value) -> bool:
        return any(_accepts(a, value) for a in self.alternatives)

    def validate(self, value, path, ctx):
        for alt in self.alternatives:
            if _accepts(alt, value):
                check(alt, value, path, ctx)
                return
        expected = ' or '.join(_expected(a) for a in self.alternatives)
        ctx.error(path, f'expected {expected}, got {describe(value)}')


class Section:
    """A mapping with known keys. ``patterns`` map glob patterns of a key to a spec (e.g. ``val_*``);
    ``required`` keys are read without a default (BasicSR would stop on a ``KeyError`` deep inside)."""

    def __init__(self, keys: Dict[str, object], patterns: Optional[Dict[str, object]] = None, expected='a mapping',
                 required: Sequence[str] = ()):
        self.keys, self.patterns, self.expected, self.required = keys, patterns or {}, expected, required

    def accepts(self, value) -> bool:
        return isinstance(value, dict)

    def spec_for(self, key):
        if key in self.keys:
            return self.keys[key]
        for pattern, spec in self.patterns.items():
            if fnmatch.fnmatchcase(str(key), pattern):
                return spec
        return None

    def validate(self, value, path, ctx, extra_keys: Optional[Dict[str, object]] = None):
        if not isinstance(value, dict):
            ctx.error(path, f'expected {self.expected}, got {describe(value)}')
            return
        extra_keys = extra_keys or {}
        for key in self.required:
            if key not in value:
                ctx.error(f'{path}.{key}' if path else key, 'missing: it is read without a default')
        for key, item in value.items():
            where = f'{path}.{key}' if path else str(key)
            spec = extra_keys.get(key) or self.spec_for(key)
            if spec is None:
                if not ctx.allowed(where):
                    ctx.error(where, unknown_key_message(key, list(self.keys) + list(extra_keys)))
                continue
            if ctx.allowed(where):
                continue
            check(spec, item, where, ctx)


def suggestion(name, known: Sequence[str], what='known keys here') -> str:
    """'did you mean `kd_opt`?' for a near miss, else the list of what is known."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f'did you mean `{close[0]}`?' if close else f'{what}: {", ".join(sorted(map(str, known)))}'


OWN_KEYS_HINT = ' (a key of your own: list it in `allow_unknown_keys`)'


def unknown_key_message(key, known: Sequence[str]) -> str:
    return f'unknown key; {suggestion(key, known)}{OWN_KEYS_HINT}'


def _accepts(spec, value) -> bool:
    if hasattr(spec, 'accepts'):
        return spec.accepts(value)
    return True  # callables check everything themselves


def _expected(spec) -> str:
    return getattr(spec, 'expected', 'a valid value')


def check(spec, value, path, ctx):
    if hasattr(spec, 'validate'):
        spec.validate(value, path, ctx)
    else:
        spec(value, path, ctx)


# ------------------------------------------------------------------------------- constructor signatures
def signature_keys(obj, skip: Sequence[str] = ()) -> Tuple[Dict[str, object], List[str]]:
    """Keyword specs and required names of a constructor (or function), following ``**kwargs`` up the MRO
    while a class forwards them to its base. A ``**kwargs`` that nothing reads (SwinIR's) accepts nothing:
    a misspelt key there would otherwise be ignored silently."""
    specs, required = {}, []
    funcs = []
    if inspect.isclass(obj):
        for klass in obj.__mro__:
            if klass.__module__.startswith('torch.nn') or klass is object:
                break
            init = klass.__dict__.get('__init__')
            if init is None:
                continue
            funcs.append(init)
            if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
                break
    else:
        funcs.append(obj)
    for func in funcs:
        try:
            hints = typing.get_type_hints(func)
        except Exception:  # noqa: BLE001 (unresolvable annotations: fall back to defaults)
            hints = {}
        for name, p in inspect.signature(func).parameters.items():
            if name in ('self', *skip) or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or name in specs:
                continue
            specs[name] = _spec_from_parameter(p, hints.get(name))
            if p.default is p.empty and name not in required:
                required.append(name)
    return specs, required


def _spec_from_parameter(p, hint):
    base = {bool: BOOL, int: COUNT, float: NUMBER, str: STR}
    args = typing.get_args(hint)
    if hint in base:
        spec = base[hint]
        return optional(spec) if p.default is None else spec
    if args and type(None) in args and len(args) == 2:
        inner = next(a for a in args if a is not type(None))
        if inner in base:
            return optional(base[inner])
    d = p.default
    if d is p.empty or d is None:
        return ANY
    if isinstance(d, bool):
        return BOOL
    if isinstance(d, (int, float)):
        return NUMBER
    if isinstance(d, str):
        return STR
    if isinstance(d, (tuple, list)):
        return ListOf(ANY)
    return ANY
