"""Checkpoint I/O: the one place in dukd that reads a weights file (``tests/test_architecture.py`` enforces it).

* ``checkpoint.py``: the safe reader (safetensors, or ``torch.load(weights_only=True)`` after a CRC-32 check
  of the zip records), picking the weights out of BasicSR ``.pth`` files and bare state dicts, the checks
  that name the file (non-finite values, keys and shapes that do not fit).
* ``atomic.py``: crash-safe saves (a temporary file beside the target, synced, renamed over it).
* ``safetensors_file.py``: safetensors files that carry a SHA-256 of their tensors, checked on read.
* ``shipped.py``: the ``dukd:<file>`` weights shipped in ``dukd_arch/weights/``, each pinned by its SHA-256.
* ``edsr_pytorch_convert.py``: original RCAN and EDSR releases (EDSR-PyTorch key names) to BasicSR's keys.
* ``network.py``: a built network gets its weights: teachers, BasicSR's ``load_network`` and trained students.

Lower layer: imports torch and its own modules only, never the archs, models or options.
"""
