"""The ``meta_info`` file BasicSR's ``RealESRGANDataset`` reads: one GT image path per line, relative to
``dataroot_gt`` (it takes the first space-separated field of each line)."""
import os
from typing import List

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff')


def gt_image_paths(gt_folder: str) -> List[str]:
    """Image files under ``gt_folder`` (recursive, sorted, '/'-separated, relative to it)."""
    if not os.path.isdir(gt_folder):
        raise FileNotFoundError(f'GT folder not found: {gt_folder!r}')
    found = []
    for root, dirs, files in os.walk(gt_folder):
        dirs.sort()
        rel = os.path.relpath(root, gt_folder)
        for name in files:
            if name.lower().endswith(IMAGE_EXTS) and ' ' not in name:
                found.append(name if rel == '.' else f"{rel.replace(os.sep, '/')}/{name}")
    if not found:
        raise FileNotFoundError(f'{gt_folder} holds no images ({", ".join(IMAGE_EXTS)})')
    return sorted(found)


def write_meta_info(gt_folder: str, out: str) -> int:
    """Write the meta_info file for ``gt_folder``; returns the number of images listed."""
    paths = gt_image_paths(gt_folder)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        f.write(''.join(f'{p}\n' for p in paths))
    return len(paths)
