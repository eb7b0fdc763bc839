"""Write a CPU-sized copy of any option file, for a smoke run on your own machine.

    python scripts/smoke_options.py options/dukd_rcan_x4.yml datasets/demo      # -> experiments/smoke_options/
    python train.py -opt experiments/smoke_options/dukd_rcan_x4_smoke.yml

DATA_DIR has the layout of the demo set (``python scripts/make_demo_data.py`` builds ``datasets/demo``):
``train/HR``, ``train/LR_bicubic/X<s>``, ``val/HR``, ``val/LR_bicubic/X<s>``; an LR folder the scale needs and
DATA_DIR lacks is made with MATLAB bicubic, and a real-world (``RealESRGANDataset``) copy gets
``train/meta_info.txt`` (``scripts/make_meta_info.py``). The copy keeps the networks, losses and method
settings and changes only the size of the run:

* data roots -> DATA_DIR (disk backend, names matched one to one), every val set -> ``val/`` (named smoke_val);
* ``gt_size`` (the dataset's and the real-world models' top-level one) -> the smallest patch that works for the
  scale and window size (zoom-out input still a whole window), ``queue_size`` -> a multiple of the batch;
* batch (``--batch``, 4: RKD needs 3 or more), 0 loader workers, no prefetch, enlarge ratio 1;
* ``total_iter`` (``--iters``, 4) and validation / print / checkpoint frequencies = ``total_iter``;
* ``path.pretrain_network_g`` / ``resume_state`` removed (a test option file keeps its student);
  ``--teacher FILE`` replaces ``path.pretrain_network_t``; ``num_gpu: 0``; name ``<name>_smoke``; no loggers.

``options/demo/`` shows the same settings hand-written for the demo photos; start there for your own small run.
"""
import argparse
import copy
import os
import sys
from os import path as osp

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import dukd_arch  # noqa: E402,F401  (basicsr import shim)

TRAIN_DATASET_KEYS = ('meta_info_file', 'filename_tmpl')


def _windows(opt: dict) -> int:
    sizes = [int((opt.get(k) or {}).get('window_size') or 1) for k in ('network_g', 'network_t')]
    return max(sizes)


def smoke_gt_size(scale: int, window: int, original: int) -> int:
    """Smallest HR patch with room for a zoom-out input of one window (or 4 LR px) per side; never above the
    original."""
    lr = scale * max(window, 4)  # the LR patch zoomed out by 1/scale keeps max(window, 4) px
    return min(original, lr * scale)


def _pair_folders(data_dir: str, split: str, scale: int, created: list) -> (str, str):
    """(GT folder, LR folder) of a split for ``scale``; a missing LR scale is made with MATLAB bicubic (and the
    GT modcropped beside it when it is not a multiple of the scale)."""
    from dukd_arch.data.sr_data import bicubic_downsample, list_images, modcrop, read_image, write_image
    hr = osp.join(data_dir, split, 'HR')
    folder = osp.join(data_dir, split, 'LR_bicubic', f'X{scale}')
    gt_mod = osp.join(data_dir, split, f'HR_mod{scale}')
    if not osp.isdir(folder):
        names = list_images(hr)
        originals = [read_image(osp.join(hr, n)) for n in names]
        images = [modcrop(img, scale) for img in originals]
        if any(a.shape != b.shape for a, b in zip(originals, images)):
            for name, img in zip(names, images):
                write_image(osp.join(gt_mod, name), img)
            created.append(f'wrote {gt_mod} (GT cropped to a multiple of {scale})')
        for name, lr in zip(names, bicubic_downsample(images, scale)):
            write_image(osp.join(folder, name), lr)
        created.append(f'wrote {folder} (MATLAB bicubic)')
    return (gt_mod if osp.isdir(gt_mod) else hr), folder


def smoke_options(opt: dict, data_dir: str, iters: int = 4, batch: int = 4, teacher: str = None) -> (dict, list):
    """(the CPU-sized options, notes on what was created or needs attention)."""
    opt = copy.deepcopy(opt)
    notes = []
    scale = int(opt['scale'])
    data_dir = osp.abspath(data_dir)
    if not osp.isdir(osp.join(data_dir, 'train', 'HR')):
        raise FileNotFoundError(f'{data_dir}/train/HR does not exist: DATA_DIR needs the demo layout '
                                '(build it with `python scripts/make_demo_data.py --root DATA_DIR`)')
    window = _windows(opt)
    opt['name'] = f"{opt.get('name', 'run')}_smoke"
    opt['num_gpu'] = 0
    for key, ds in (opt.get('datasets') or {}).items():
        train = key.startswith('train')
        split = 'train' if train else 'val'
        ds['io_backend'] = {'type': 'disk'}
        ds['name'] = f'smoke_{split}'
        for k in TRAIN_DATASET_KEYS:
            ds.pop(k, None)
        ds['dataroot_gt'] = osp.join(data_dir, split, 'HR')
        if ds.get('type') == 'RealESRGANDataset':
            from dukd_arch.data.meta_info import write_meta_info
            ds['meta_info'] = osp.join(data_dir, 'train', 'meta_info.txt')
            if not osp.isfile(ds['meta_info']):
                write_meta_info(ds['dataroot_gt'], ds['meta_info'])
                notes.append(f"wrote {ds['meta_info']}")
        else:
            ds['dataroot_gt'], ds['dataroot_lq'] = _pair_folders(data_dir, split, scale, notes)
            ds['filename_tmpl'] = '{}'
        if train:
            ds['gt_size'] = smoke_gt_size(scale, window, int(ds.get('gt_size', 10**6)))
            ds.update(batch_size_per_gpu=batch, num_worker_per_gpu=0, dataset_enlarge_ratio=1, prefetch_mode=None)
    if 'gt_size' in opt:  # real-world models crop the synthesised pair themselves
        opt['gt_size'] = smoke_gt_size(scale, window, int(opt['gt_size']))
    if 'queue_size' in opt:
        opt['queue_size'] = 2 * batch
    train_opt = opt.get('train')
    path_opt = opt.setdefault('path', {})
    if train_opt:
        train_opt['total_iter'] = iters
        sched = train_opt.get('scheduler') or {}
        if 'milestones' in sched:
            sched['milestones'] = [iters * 10]
        if 'periods' in sched:
            sched['periods'] = [iters] * len(sched['periods'])
        if 'warmup_iter' in train_opt:
            train_opt['warmup_iter'] = -1
        for k in ('pretrain_network_g', 'resume_state'):
            path_opt.pop(k, None)
        if opt.get('val'):
            opt['val']['val_freq'] = iters
        logger = opt.setdefault('logger', {})
        logger.update(print_freq=1, save_checkpoint_freq=iters, use_tb_logger=False)
        logger.pop('wandb', None)
    if teacher is not None:
        path_opt['pretrain_network_t'] = teacher
    t_path = path_opt.get('pretrain_network_t')
    if t_path and not osp.isfile(t_path):
        notes.append(f'teacher {t_path} is not there: download it (docs/teachers.md) or pass --teacher FILE')
    if opt.get('val') and not train_opt and not osp.isfile(str(path_opt.get('pretrain_network_g'))):
        notes.append(f"student {path_opt.get('pretrain_network_g')} is not there: point path.pretrain_network_g at "
                     'a trained student')
    return opt, notes


def main(argv=None) -> int:
    from dukd_arch.options.file import load_options
    from basicsr.utils.options import ordered_yaml
    import yaml
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('options', help='any option file (train or test)')
    p.add_argument('data_dir', help='a folder with the demo layout (train/HR, train/LR_bicubic/X<s>, val/...)')
    p.add_argument('-o', '--out', default=None,
                   help='output file (default: experiments/smoke_options/<stem>_smoke.yml)')
    p.add_argument('--iters', type=int, default=4)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--teacher', default=None, help='teacher checkpoint replacing path.pretrain_network_t')
    args = p.parse_args(argv)
    try:
        opt, notes = smoke_options(load_options(args.options), args.data_dir, args.iters, args.batch, args.teacher)
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    stem = osp.splitext(osp.basename(args.options))[0]
    out = args.out or osp.join('experiments', 'smoke_options', f'{stem}_smoke.yml')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        f.write(f'# CPU-sized copy of {args.options} by scripts/smoke_options.py (data: {args.data_dir})\n')
        yaml.dump(opt, f, Dumper=ordered_yaml()[1], default_flow_style=None, sort_keys=False)
    for note in notes:
        print(note)
    print(f'wrote {out}; run: python train.py -opt {out}' if opt.get('train') else
          f'wrote {out}; run: python test.py -opt {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
