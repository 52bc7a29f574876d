# Copyright 2026 The retrain.py authors. Licensed under the Apache License, Version 2.0.
"""Ships retrain.py and beam_bottlenecks.py to Apache Beam's remote workers.

  python beam_bottlenecks.py ... --runner DataflowRunner ... --setup_file ./setup.py

Beam builds a source package from this file on the launching machine, stages
it, and every worker installs it with pip, together with TensorFlow and
tensorflow-hub (Beam's worker images have Apache Beam already). The versions
are requirements.txt's. tf2_modules.py comes too: retrain.py imports it for a
TF2 SavedModel module. The workers export nothing, so tflite_export.py stays
behind.
"""

import setuptools

setuptools.setup(
    name='retrain-beam-bottlenecks',
    version='1.0.0',
    description="retrain.py's bottleneck cache, computed with Apache Beam",
    py_modules=['retrain', 'tf2_modules', 'beam_bottlenecks'],
    install_requires=[
        'tensorflow==2.21.0',
        'tensorflow-hub==0.16.1',
        # tensorflow-hub 0.16.1 imports pkg_resources, which setuptools 81 removed.
        'setuptools<81',
        'numpy>=2,<3',
    ],
    python_requires='>=3.10,<3.14',
)
