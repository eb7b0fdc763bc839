"""Read an options YAML file the way BasicSR does (ordered), with a clear error when it is missing."""
import os


def load_options(path: str) -> dict:
    """The mapping in ``path``; FileNotFoundError when it is not a file, ValueError (naming it) when it is not
    a YAML mapping."""
    import yaml
    from basicsr.utils.options import ordered_yaml
    if not os.path.isfile(path):
        raise FileNotFoundError(f'options file not found: {path!r}' + (' (that is a folder)' if os.path.isdir(path)
                                                                         else ''))
    try:
        with open(path) as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f'{path}: not valid YAML: {err}') from None
    if not isinstance(opt, dict):
        raise ValueError(f'{path}: the file does not hold a mapping of options (got '
                         f'{"an empty file" if opt is None else type(opt).__name__})')
    return opt
