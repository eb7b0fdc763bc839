"""dukd: Data Upcycling Knowledge Distillation for image super-resolution, as a BasicSR extension.

Importing the package registers its archs, datasets, losses and models in BasicSR's registries.
"""
from . import compat  # noqa: F401  (must come first: patches basicsr before its first use)
from . import archs, data, losses, models  # noqa: F401, E402

from .utils.upsampler import StudentUpsampler, load_student  # noqa: F401, E402

__version__ = '0.1.0'
