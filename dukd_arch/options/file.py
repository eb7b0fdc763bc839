"""Read an options YAML file the way BasicSR does (ordered), with a clear error when it is missing."""
import os


def load_options(path: str) -> dict:
    import yaml
    from basicsr.utils.options import ordered_yaml
    if not os.path.isfile(path):
        raise FileNotFoundError(f'options file not found: {path!r}')
    with open(path) as f:
        return yaml.load(f, Loader=ordered_yaml()[0])
