"""Fail the install if pip pulled CUDA packages onto a machine without a GPU (they are GBs)."""

import shutil
import sys
from importlib import metadata

if shutil.which("nvidia-smi") is None:
    cuda = sorted({d.metadata["Name"] for d in metadata.distributions()
                   if (d.metadata["Name"] or "").lower().startswith(("nvidia-", "cuda-", "triton"))})
    if cuda:
        sys.exit(f"CUDA packages were installed on a machine without a GPU: {', '.join(cuda)}. "
                 "Install the CPU torch wheel first (make install does).")
