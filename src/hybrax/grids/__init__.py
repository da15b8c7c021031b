"""Periodic spectral grids shared by the fluid and climate solvers.

`Grid` holds the geometry (static point counts and domain lengths) and the real-FFT
operators: transforms, wavenumbers, derivatives, (inverse) Laplacian, the 2/3-rule
dealiasing mask and an exponential filter. `resample` coarse-grains or upsamples spectral
fields exactly between resolutions, `SpectralState` is the state record of spectral
solvers, and `cfl_time_step` / `courant_number` relate time steps to flow speeds.
"""

from ._cfl import cfl_time_step, courant_number
from ._coarse_grain import coarse_grain
from ._grid import Grid
from ._resample import resample
from ._staggered import StaggeredGrid
from ._state import SpectralState

__all__ = [
    "Grid",
    "SpectralState",
    "StaggeredGrid",
    "cfl_time_step",
    "coarse_grain",
    "courant_number",
    "resample",
]
