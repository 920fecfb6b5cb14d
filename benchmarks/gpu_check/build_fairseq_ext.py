"""Compile only the two Cython extensions fairseq needs at run time, in place in a fairseq source tree.

    python3 build_fairseq_ext.py SRC_DIR      # SRC_DIR holds fairseq/ and fairseq_cli/

fairseq's own setup.py also builds C++/CUDA extensions (libbleu, libnat, ngram-repeat-block, ...)
that take minutes and that translation/MoE training never import; this builds
``fairseq.data.data_utils_fast`` (batching, used by every fairseq-train/generate/interactive) and
``fairseq.data.token_block_utils_fast`` (language-model datasets) with the same flags as setup.py.
Needs Cython, numpy, setuptools, a C++ compiler and the Python headers. Exit status 0 when both built.
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    import numpy
    from Cython.Build import cythonize
    from setuptools import Extension, setup

    src = os.path.abspath(sys.argv[1])
    os.chdir(src)
    exts = [Extension(f"fairseq.data.{name}", [f"fairseq/data/{name}.pyx"], language="c++",
                      include_dirs=[numpy.get_include()], extra_compile_args=["-std=c++11", "-O3"])
            for name in ("data_utils_fast", "token_block_utils_fast")]
    setup(name="fairseq-cython-only", ext_modules=cythonize(exts, language_level=3, quiet=True),
          script_args=["build_ext", "--inplace", "--parallel", "2"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
