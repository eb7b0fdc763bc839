"""dukd: Data Upcycling Knowledge Distillation for image super-resolution, as a BasicSR extension.

Importing the package registers its archs, datasets, losses and models in BasicSR's registries (each also as
``dukd.<Name>``; see ``registry.py``) and applies the crash-only BasicSR fixes of ``compat.py``; it changes
nothing a run of a model that is not ours computes.
"""
from . import compat  # noqa: F401  (must come first: patches basicsr before its first use)
from . import archs, data, losses, models, registry  # noqa: F401, E402

registry.report_taken_names()

from .upsampler import StudentUpsampler, load_student  # noqa: F401, E402

__version__ = '0.1.0'
