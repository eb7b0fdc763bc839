"""The folders, LMDBs and meta_info files of a paired dataset, checked before BasicSR lists them.

BasicSR's ``PairedImageDataset`` stops on an ``AssertionError`` ("lq and gt datasets have different number
of images: 3, 4"), a ``FileNotFoundError`` from ``scandir`` or an ``lmdb.Error`` at the first image, none
naming the option or the file to fix. Here each problem is refused when the dataset is built, with the
option key and the path.
"""
import os


def dataset_option(opt: dict, key: str = '') -> str:
    """Where an option of this dataset lives, for messages: BasicSR passes the dataset only its section's phase
    ('train'; 'val' for val, val_1, ...) and the set's ``name``, so both are given."""
    path = '.'.join(['datasets'] + [p for p in (opt.get('phase'), key) if p])
    return f"{path} (set {opt['name']!r})" if opt.get('name') else path


def check_pair_sources(opt: dict) -> None:
    """Raise ``FileNotFoundError`` / ``ValueError`` naming the key and path of a missing or unusable source."""
    lmdb = (opt.get('io_backend') or {}).get('type') == 'lmdb'
    for key in ('dataroot_gt', 'dataroot_lq'):
        root = opt[key]
        if not os.path.isdir(root):
            raise FileNotFoundError(f'{dataset_option(opt, key)}: {root!r} does not exist. Prepare the data as '
                                    'in datasets/README.md or fix the path.')
        for needed in ('data.mdb', 'meta_info.txt') if lmdb else ():
            if not os.path.isfile(os.path.join(root, needed)):
                raise FileNotFoundError(f'{dataset_option(opt, key)}: {root} is not a BasicSR LMDB (no {needed}); '
                                        'make one with `python scripts/prepare_sr_data.py lmdb` or use io_backend: '
                                        'disk.')
    meta = opt.get('meta_info_file')
    if meta and not lmdb:
        if not os.path.isfile(meta):
            raise FileNotFoundError(f"{dataset_option(opt, 'meta_info_file')}: {meta!r} does not exist.")
        with open(meta) as f:
            for number, line in enumerate(f, 1):
                if not line.strip().split(' ')[0]:
                    raise ValueError(f"{dataset_option(opt, 'meta_info_file')}: line {number} of {meta} names no "
                                     'image (one image file name per line, optionally followed by its shape).')


def listing_named(opt: dict, list_pairs):
    """``list_pairs()`` (BasicSR's listing of the pairs), its errors naming both sources."""
    try:
        return list_pairs()
    except (AssertionError, ValueError, OSError) as err:
        sources = f"dataroot_gt {opt['dataroot_gt']} / dataroot_lq {opt['dataroot_lq']}"
        if (opt.get('io_backend') or {}).get('type') == 'lmdb':
            sources += ' (their meta_info.txt files list the keys)'
        elif opt.get('meta_info_file'):
            sources += f" (listed by meta_info_file {opt['meta_info_file']})"
        raise ValueError(f"{dataset_option(opt)}: the LR and HR images do not pair up: {err} ({sources}). "
                         'Every HR image needs its LR image under the same name (filename_tmpl).') from err
