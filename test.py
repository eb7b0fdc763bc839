"""Test with a BasicSR option file: ``python test.py -opt options/test/test_dukd_rcan_x4.yml``."""
from os import path as osp

import dukd_arch  # noqa: F401  (registers archs, data, losses, models; patches basicsr)
from basicsr.test import test_pipeline
from dukd_arch.compat import use_safe_loading

if __name__ == '__main__':
    use_safe_loading()  # BasicSR's own models too: checkpoints via weights_only / safetensors
    test_pipeline(osp.abspath(osp.dirname(__file__)))
