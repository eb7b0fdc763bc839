from setuptools import find_packages, setup

setup(
    name='dukd',
    version='0.1.0',
    description='Data Upcycling Knowledge Distillation for image super-resolution (BasicSR extension)',
    packages=find_packages(include=['dukd_arch', 'dukd_arch.*']),
    package_data={'dukd_arch': ['weights/*.safetensors', 'weights/*.md']},  # the shipped reference teacher
    python_requires='>=3.9',
    install_requires=[
        'basicsr==1.4.2',
        'torch>=2.6',  # torch.load(weights_only=True) runs no code only from 2.6 on (CVE-2025-32434)
        'torchvision>=0.21',  # the release that pairs with torch 2.6
        'opencv-python-headless',
        'Pillow',  # image headers (EXIF orientation, sizes) in infer and the data tools
        'lmdb',
        'pyyaml',
        'tensorboard',
        'einops',
        'safetensors',
        'scipy',  # t-intervals of the gain study (benchmarks/gain_study.py)
        'tqdm',
    ],
    extras_require={
        'demo': ['scikit-image', 'matplotlib'],
        'test': ['pytest', 'scikit-image', 'matplotlib'],
        'teachers': ['spandrel'],
        'export': ['onnx', 'onnxruntime'],
    },
)
