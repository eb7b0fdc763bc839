"""Training support the models use, torch only: mixed precision and ``torch.compile`` options
(``precision.py``), the random-number-generator states a training state saves (``rng.py``) and gradient
averaging for modules outside DDP (``grad_sync.py``). Lower layer: never imports models or options."""
