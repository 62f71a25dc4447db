"""unpu: reproducible benchmarks of quantized neural networks on microcontroller NPUs."""

import os as _os

__version__ = "0.1.0"


def config_dir() -> str:
    """The Hydra config directory: conf/ inside the package for a wheel, else the repository's."""
    here = _os.path.dirname(_os.path.abspath(__file__))
    packaged = _os.path.join(here, "conf")
    return packaged if _os.path.isdir(packaged) else _os.path.join(_os.path.dirname(here), "conf")

# Before anything imports TensorFlow: quiet its C++ logging, and fix oneDNN off, because oneDNN
# changes float round-off and with it the converted .tflite bytes (the cache key records it).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
