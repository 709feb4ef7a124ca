"""Build script: the optional C kernels in csrc/.

The extension is optional: without a compiler the package installs and the Numba
kernels are used instead.
"""

import glob
import logging

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build C extensions, but do not fail the install when compiling fails."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure
            logging.warning("bnblip: C kernels not built (%s); using Numba kernels", exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            logging.warning("bnblip: %s not built (%s); using Numba kernels", ext.name, exc)


def _extensions():
    sources = sorted(glob.glob("csrc/*.c"))
    if not sources:
        return []
    import numpy

    return [Extension("bnblip._ckernels", sources=sources, include_dirs=[numpy.get_include()],
                      depends=sorted(glob.glob("csrc/*.h")),
                      extra_compile_args=["-O3", "-ffp-contract=off"])]


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
