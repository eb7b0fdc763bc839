"""Test with a BasicSR option file: ``python test.py -opt options/test/test_dukd_rcan_x4.yml``."""
from os import path as osp

import dukd_arch  # noqa: F401, I001  (first: registers archs, data, losses, models; patches basicsr)
import basicsr.test
from dukd_arch.compat import use_safe_loading
from dukd_arch.options import validated_parse_options

if __name__ == '__main__':
    # the whole option file is validated before BasicSR parses it (dukd_arch/options); called with is_train=False
    basicsr.test.parse_options = validated_parse_options
    use_safe_loading()  # BasicSR's own models too: checkpoints via weights_only / safetensors
    basicsr.test.test_pipeline(osp.abspath(osp.dirname(__file__)))
