"""Physics sub-grid closures for `TwoLayerQG`: Smagorinsky, Zanna–Bolton (2020) and
backscatter + biharmonic (Jansen & Held 2014), as in pyqg / pyqg-jax.

Each closure is a small equinox module ``closure(flow, model) -> S`` that fills the
``parameterization=`` slot of `TwoLayerQG` (the model adds ``S`` to the PV tendency), so its
coefficients are array leaves of the model: ``jax.grad`` reaches them and `hybrax.hybrid`'s
training can fit them exactly like a network.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

from hybrax.core import mul, parameter

from ._qg import QGFlow, TwoLayerQG, _constants, _times_i

__all__ = ["BackscatterBiharmonic", "Smagorinsky", "ZannaBolton2020"]


class _Spectral:
    """Forward-normalised transforms and ``i k`` derivatives of one model's grid."""

    def __init__(self, model: TwoLayerQG, real):
        self.grid = model.grid
        kx, ky, k2 = _constants(model.grid, np.dtype(real))[:3]
        self.kx, self.ky, self.k2 = kx, ky, k2
        self.dx = model.grid.spacing[1]

    def rfft(self, x: Array) -> Array:
        return self.grid.rfft(x, norm="forward")

    def irfft(self, x: Array) -> Array:
        return self.grid.irfft(x, norm="forward")

    def dx_hat(self, x: Array) -> Array:
        return _times_i(self.kx, x)

    def dy_hat(self, x: Array) -> Array:
        return _times_i(self.ky, x)

    def velocities_hat(self, flow: QGFlow) -> tuple[Array, Array]:
        """Eddy velocity coefficients ``(u_hat, v_hat)``, transformed from the grid values as
        pyqg-jax's ``uh``, ``vh`` (so that the Nyquist modes are those of a real field)."""
        u_hat, v_hat = self.rfft(jnp.stack([flow.u, flow.v]))
        return u_hat, v_hat

    def velocity_tendency_to_pv(self, du: Array, dv: Array) -> Array:
        """The PV tendency ``curl(du, dv)`` of a velocity tendency, spectrally, as pyqg adds
        a "uv parameterisation": ``-i k_y du_hat + i k_x dv_hat``."""
        du_hat, dv_hat = self.rfft(jnp.stack([du, dv]))
        return self.dx_hat(dv_hat) - self.dy_hat(du_hat)

    def strain(self, flow: QGFlow) -> tuple[Array, Array, Array]:
        """``S_xx = u_x``, ``S_yy = v_y``, ``S_xy = (u_y + v_x) / 2`` on the grid."""
        u_hat, v_hat = self.velocities_hat(flow)
        gradients = [
            self.dx_hat(u_hat),
            self.dy_hat(v_hat),
            self.dy_hat(u_hat) + self.dx_hat(v_hat),
        ]
        sxx, syy, twice_sxy = self.irfft(jnp.stack(gradients))
        return sxx, syy, 0.5 * twice_sxy

    def smagorinsky_viscosity(self, sxx: Array, syy: Array, sxy: Array, constant: Array) -> Array:
        """``nu = (C dx)^2 sqrt(2 (S_xx^2 + S_yy^2 + 2 S_xy^2))``, m^2/s."""
        length = constant * self.dx
        return length * length * jnp.sqrt(2 * (sxx * sxx + syy * syy + 2 * sxy * sxy))


class Smagorinsky(eqx.Module):
    """Smagorinsky (1963) eddy viscosity for `TwoLayerQG`, as pyqg's ``Smagorinsky``.

    A momentum closure from the resolved strain ``S_ij = (d_i u_j + d_j u_i) / 2`` of the
    eddy velocities in each layer:

    .. math::
        \\nu = (C_S \\Delta x)^2 \\sqrt{2 S_{ij} S_{ij}}, \\qquad
        \\dot u_i = 2\\, \\partial_j (\\nu S_{ij}), \\qquad
        S_q = \\partial_x \\dot v - \\partial_y \\dot u

    (pyqg's formula; ``Delta x`` is the grid spacing in x). The PV tendency ``S_q`` (1/s^2)
    is returned as spectral coefficients, the way pyqg adds a velocity parameterisation,
    so that `TwoLayerQG` with this closure reproduces pyqg-jax's
    ``smagorinsky.apply_parameterization`` to round-off. Dissipative: it removes kinetic
    energy near the grid scale.

    Parameters
    ----------
    constant
        The Smagorinsky constant ``C_S`` (dimensionless, default 0.1 as in pyqg; Ross et al.
        2023 use 0.08-0.15). A differentiable leaf.

    Examples
    --------
    >>> import hybrax
    >>> from hybrax.climate import Smagorinsky, TwoLayerQG
    >>> model = TwoLayerQG.eddy(32, parameterization=Smagorinsky(0.1))
    >>> final, ke = hybrax.rollout(model.pyqg_stepper(3600.0), model.initial_state(), 24,
    ...     save_every=24, observe=model.kinetic_energy)
    >>> ke.shape
    (1, 2)
    """

    constant: Float[Array, ""] = parameter(
        "constant", default=0.1, nonnegative=True, scalar=True, example="constant=0.1"
    )

    def __call__(self, flow: QGFlow, model: TwoLayerQG) -> Complex[Array, "2 ny nk"]:
        real = flow.q.dtype
        ops = _Spectral(model, real)
        sxx, syy, sxy = ops.strain(flow)
        nu = ops.smagorinsky_viscosity(sxx, syy, sxy, self.constant.astype(real))
        f_xx, f_xy, f_yy = ops.rfft(jnp.stack([nu * sxx, nu * sxy, nu * syy]))
        du, dv = ops.irfft(
            jnp.stack([ops.dx_hat(f_xx) + ops.dy_hat(f_xy), ops.dx_hat(f_xy) + ops.dy_hat(f_yy)])
        )
        return ops.velocity_tendency_to_pv(2 * du, 2 * dv)


class ZannaBolton2020(eqx.Module):
    """The equation-discovered momentum closure of Zanna & Bolton (2020), as pyqg's
    ``ZannaBolton2020``.

    With relative vorticity ``zeta = v_x - u_y``, shearing ``D = u_y + v_x`` and stretching
    ``D~ = u_x - v_y`` deformations of the resolved eddy flow,

    .. math::
        \\dot u = \\kappa_{BC} \\left[\\partial_x\\left(\\tfrac12(\\zeta^2 + D^2 + \\tilde D^2)
            - \\zeta D\\right) + \\partial_y(\\zeta \\tilde D)\\right], \\quad
        \\dot v = \\kappa_{BC} \\left[\\partial_y\\left(\\tfrac12(\\zeta^2 + D^2 + \\tilde D^2)
            + \\zeta D\\right) + \\partial_x(\\zeta \\tilde D)\\right]

    and ``S_q = d_x dv - d_y du`` (1/s^2, returned spectrally, as `Smagorinsky`). Mostly
    backscatter (it injects energy at large scales) for ``kappa_BC < 0``.

    Parameters
    ----------
    kappa_bc
        ``kappa_BC``, m^2 (default -46761284, pyqg's value, used by Ross et al. 2023 for
        the 64^2 eddy configuration). A differentiable leaf.

    Examples
    --------
    >>> import jax
    >>> from hybrax.climate import TwoLayerQG, ZannaBolton2020
    >>> model = TwoLayerQG.eddy(32)
    >>> closure = ZannaBolton2020()
    >>> tendency = jax.jit(lambda state: closure(model.flow(state), model))
    >>> tendency(model.initial_state()).shape
    (2, 32, 17)
    """

    kappa_bc: Float[Array, ""] = parameter(
        "kappa_bc", default=-46761284.0, scalar=True, example="kappa_bc=-46761284.0 (m^2)"
    )

    def __call__(self, flow: QGFlow, model: TwoLayerQG) -> Complex[Array, "2 ny nk"]:
        real = flow.q.dtype
        ops = _Spectral(model, real)
        u_hat, v_hat = ops.velocities_hat(flow)
        vx, vy, ux, uy = ops.irfft(
            jnp.stack([ops.dx_hat(v_hat), ops.dy_hat(v_hat), ops.dx_hat(u_hat), ops.dy_hat(u_hat)])
        )
        vorticity, shearing, stretching = vx - uy, vx + uy, ux - vy
        squares = vorticity * vorticity + shearing * shearing + stretching * stretching
        rv_stretch, rv_shear, sum_squares = ops.rfft(
            jnp.stack([vorticity * stretching, vorticity * shearing, squares])
        )
        sum_squares = 0.5 * sum_squares
        du, dv = ops.irfft(
            jnp.stack(
                [
                    ops.dx_hat(sum_squares - rv_shear) + ops.dy_hat(rv_stretch),
                    ops.dy_hat(sum_squares + rv_shear) + ops.dx_hat(rv_stretch),
                ]
            )
        )
        kappa = self.kappa_bc.astype(real)
        return ops.velocity_tendency_to_pv(kappa * du, kappa * dv)


class BackscatterBiharmonic(eqx.Module):
    """Energy-budget-based backscatter with biharmonic dissipation (Jansen & Held 2014;
    Jansen et al. 2015), as pyqg's ``BackscatterBiharmonic``.

    A PV closure: a biharmonic dissipation with a Smagorinsky-like viscosity ``nu``
    (`Smagorinsky`'s, with constant ``smag_constant``), and an anti-diffusive
    (negative-viscosity) backscatter ``-nabla^4 psi`` scaled to return the fraction
    ``back_constant`` of the dissipated energy to the resolved flow, every time step:

    .. math::
        D = -\\nabla^2(\\nu\\, \\Delta x^2 \\nabla^4 \\psi), \\qquad
        S_q = D - c_b\\, \\nabla^4\\psi\\,
        \\frac{\\sum_i H_i \\langle \\psi_i D_i\\rangle}
             {\\sum_i H_i \\langle \\psi_i \\nabla^4 \\psi_i\\rangle + \\epsilon}

    (``<.>`` the domain mean, ``H_i`` the layer depths). Returned on the grid (1/s^2).

    Parameters
    ----------
    smag_constant
        Smagorinsky constant of the dissipation (default 0.08). A leaf.
    back_constant
        Backscattered fraction ``c_b`` of the dissipated energy (default 0.99). A leaf.
    eps
        Guard added to the denominator (default 1e-32; static).

    Examples
    --------
    >>> from hybrax.climate import BackscatterBiharmonic, TwoLayerQG
    >>> model = TwoLayerQG.eddy(32)
    >>> BackscatterBiharmonic()(model.flow(model.initial_state()), model).shape
    (2, 32, 32)
    """

    smag_constant: Float[Array, ""] = parameter(
        "smag_constant", default=0.08, nonnegative=True, scalar=True, example="smag_constant=0.08"
    )
    back_constant: Float[Array, ""] = parameter(
        "back_constant", default=0.99, nonnegative=True, scalar=True, example="back_constant=0.99"
    )
    eps: float = eqx.field(static=True, default=1e-32)

    def __call__(self, flow: QGFlow, model: TwoLayerQG) -> Float[Array, "2 ny nx"]:
        real = flow.q.dtype
        ops = _Spectral(model, real)
        nu = ops.smagorinsky_viscosity(*ops.strain(flow), self.smag_constant.astype(real))
        psi, biharmonic_psi = ops.irfft(
            jnp.stack([flow.streamfunction_hat, mul(ops.k2 * ops.k2, flow.streamfunction_hat)])
        )
        damped = ops.rfft(biharmonic_psi * (ops.dx * ops.dx) * nu)
        dissipation = ops.irfft(mul(ops.k2, damped))  # -lap(...), lap = -|k|^2
        depths = model.layer_depths.astype(real)
        released = jnp.sum(depths * jnp.mean(psi * dissipation, axis=(-2, -1)))
        norm = jnp.sum(depths * jnp.mean(psi * biharmonic_psi, axis=(-2, -1)))
        ratio = released / (norm + jnp.asarray(self.eps, real))
        return dissipation - self.back_constant.astype(real) * biharmonic_psi * ratio
