"""Ross et al. (2023) online metrics for QG runs: agreement with the paper's definitions
(pyqg's grid, inversion and ``calc_ispec`` and pyqg-parameterization-benchmarks'
``diagnostic_differences``, transcribed in NumPy, and scipy's Wasserstein distance), exact
cases and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import hybrax
from hybrax.climate import TwoLayerQG, qg_distances, qg_similarities, wasserstein_distance
from hybrax.grids import SpectralState


def _trajectory(random_qg_pv, model, runs, steps, seed):
    """A SpectralState 'trajectory' of random PV fields, field_hat (runs, time, 2, n, nk)."""
    n = model.grid.shape[0]
    q = np.stack(
        [
            np.stack([random_qg_pv(n, seed + 100 * r + t, peak=8.0) for t in range(steps)])
            for r in range(runs)
        ]
    )
    q_hat = np.fft.rfftn(q, axes=(-2, -1), norm="forward")
    return SpectralState(jnp.asarray(q_hat), jnp.zeros((runs, steps)))


def test_wasserstein_distance_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = jnp.asarray(rng.normal(size=300)), jnp.asarray(0.5 + 2 * rng.normal(size=(7, 11)))
    expected = stats.wasserstein_distance(np.asarray(a), np.asarray(b).ravel())
    assert float(wasserstein_distance(a, b)) == pytest.approx(expected, rel=1e-12)
    assert float(wasserstein_distance(a, a)) == 0.0


# ------------------------------------------------------- the paper's definitions in NumPy
def _calc_ispec(m, var_dens):
    """pyqg 0.7.2's ``diagnostic_tools.calc_ispec`` (averaging=True, truncate=True)."""
    var_dens = np.copy(var_dens)
    var_dens[..., 0] /= 2
    var_dens[..., -1] /= 2
    kmax = np.minimum(np.abs(m["ll"]).max(), np.abs(m["kk"]).max())
    dkr = np.sqrt(m["dk"] ** 2 + m["dl"] ** 2)
    kr = np.arange(0, kmax, dkr)
    phr = np.zeros(kr.size)
    for i in range(kr.size):
        if i == kr.size - 1:
            fkr = (m["wv"] >= kr[i]) & (m["wv"] <= kr[i] + dkr)
        else:
            fkr = (m["wv"] >= kr[i]) & (m["wv"] < kr[i + 1])
        phr[i] = var_dens[fkr].mean() * (kr[i] + dkr / 2) * np.pi / (m["dk"] * m["dl"])
        phr[i] *= 2
    return kr + dkr / 2, phr


def _pyqg_grid(n, length=1e6):
    """pyqg 0.7.2's ``Model._initialize_grid`` and ``filtr`` (NumPy): the rounding of ``wv``
    decides the ring of the modes on ring edges, so the paper's numbers need pyqg's own."""
    dk = dl = 2.0 * np.pi / length
    ll = dl * np.append(np.arange(0.0, n / 2), np.arange(-n / 2, 0.0))
    kk = dk * np.arange(0.0, n // 2 + 1)
    k, l = np.meshgrid(kk, ll)
    dx = length / n
    wvx = np.sqrt((k * dx) ** 2 + (l * dx) ** 2)
    filtr = np.exp(-23.6 * (wvx - 0.65 * np.pi) ** 4)
    filtr[wvx <= 0.65 * np.pi] = 1.0
    wv = np.sqrt(k**2 + l**2)
    return {"ll": ll, "kk": kk, "dk": dk, "dl": dl, "wv": wv, "k": k, "l": l, "filtr": filtr}


def _pyqg_fields(n, field_hat, model):
    """pyqg's grid constants and, in NumPy, the fields pyqg would hold for a trajectory:
    ``q``, ``ph`` (the 2x2 inversion, unnormalised FFT) and the eddy ``u``, ``v``."""
    m = _pyqg_grid(n)
    qh = np.asarray(field_hat) * n * n
    k2 = m["wv"] ** 2
    rd, delta = float(model.deformation_radius), float(model.layer_ratio)
    f1 = 1 / (rd**2 * (1 + delta))
    f2 = delta * f1
    det = np.where(k2 > 0, k2 * (k2 + f1 + f2), 1.0)
    q1, q2 = qh[..., 0, :, :], qh[..., 1, :, :]
    ph = np.stack([-((k2 + f2) * q1 + f1 * q2) / det, -(f2 * q1 + (k2 + f1) * q2) / det], -3)
    ph = np.where(k2 > 0, ph, 0)
    ik, il = 1j * m["k"], 1j * m["l"]
    irfft = lambda x: np.fft.irfftn(x, axes=(-2, -1))  # noqa: E731
    m["_ik"], m["_il"] = ik, il
    m["Ubg"] = np.array([float(model.upper_velocity), float(model.lower_velocity)])
    return m, irfft(qh), ph, irfft(-il * ph), irfft(ik * ph)


def _reference_differences(model1, traj1, model2, traj2, num_ending):
    """pyqg_parameterization_benchmarks.online_metrics.diagnostic_differences (the
    distribution and KEspec/Ensspec parts) on two trajectories."""
    m1, q1, ph1, u1, v1 = _pyqg_fields(model1.grid.shape[0], traj1, model1)
    m2, q2, ph2, u2, v2 = _pyqg_fields(model2.grid.shape[0], traj2, model2)

    def features(m, q, u, v):
        ik, il = m["_ik"], m["_il"]
        ufull = u + m["Ubg"][:, None, None]
        vfull = v
        ddx = lambda f: np.fft.irfftn(ik * np.fft.rfftn(f, axes=(-2, -1)), axes=(-2, -1))  # noqa: E731
        ddy = lambda f: np.fft.irfftn(il * np.fft.rfftn(f, axes=(-2, -1)), axes=(-2, -1))  # noqa: E731
        return {
            "q": q,
            "u": ufull,
            "v": vfull,
            "KE": ufull**2 + vfull**2,
            "Ens": (ddx(vfull) - ddy(ufull)) ** 2,
        }

    f1, f2 = features(m1, q1, u1, v1), features(m2, q2, u2, v2)
    out = {}
    for label in ("q", "u", "v", "KE", "Ens"):
        for z in (0, 1):
            a = f1[label][..., -num_ending:, z, :, :].ravel()
            b = f2[label][..., -num_ending:, z, :, :].ravel()
            out[f"distrib_diff_{label}{z + 1}"] = stats.wasserstein_distance(a, b)

    def twothirds_nyquist(m):
        return m["k"][0][np.argwhere(m["filtr"][0] < 1)[0, 0]]

    def spectra(m, q, ph):
        n = q.shape[-1]
        ke = (m["wv"] ** 2 * np.abs(ph) ** 2 / (n * n) ** 2).reshape(-1, *ph.shape[-3:])
        ens = (np.abs(np.fft.rfftn(q, axes=(-2, -1))) ** 2 / (n * n) ** 2).reshape(ke.shape)
        return {"KEspec": ke.mean(axis=0), "Ensspec": ens.mean(axis=0)}

    s1, s2 = spectra(m1, q1, ph1), spectra(m2, q2, ph2)
    kmax = min(twothirds_nyquist(m1), twothirds_nyquist(m2))
    for name in ("KEspec", "Ensspec"):
        for z in (0, 1):
            kr1, ispec1 = _calc_ispec(m1, s1[name][z])
            _, ispec2 = _calc_ispec(m2, s2[name][z])
            nk = (kr1 < kmax).sum()
            rmse = np.sqrt(np.mean((ispec1[:nk] - ispec2[:nk]) ** 2))
            out[f"spectral_diff_{name}{z + 1}"] = rmse
    return out


def test_distances_match_the_papers_definitions_across_resolutions(random_qg_pv):
    coarse, fine = TwoLayerQG.eddy(32), TwoLayerQG.eddy(64)
    ours_states = _trajectory(random_qg_pv, coarse, runs=2, steps=3, seed=0)
    reference_states = _trajectory(random_qg_pv, fine, runs=1, steps=3, seed=50)
    ours = qg_distances(coarse, ours_states, fine, reference_states, num_ending_steps=2)
    expected = _reference_differences(
        coarse, ours_states.field_hat, fine, reference_states.field_hat, 2
    )
    for key, value in expected.items():
        assert float(ours[key]) == pytest.approx(value, rel=1e-10), key
        assert value > 0


def test_energy_metrics_and_similarities_on_exact_cases(random_qg_pv):
    model = TwoLayerQG.eddy(32)
    states = _trajectory(random_qg_pv, model, runs=1, steps=3, seed=7)
    louder = SpectralState(1.1 * states.field_hat, states.time)
    distances = qg_distances(model, louder, model, states)
    # KE is quadratic in q: 21% more everywhere
    assert float(distances["relative_diff_KE"]) == pytest.approx(0.21, rel=1e-12)
    ke = jax.vmap(lambda f: model.kinetic_energy(SpectralState(f, 0.0)))(states.field_hat[0])
    rms = jnp.sqrt(jnp.mean(ke * ke, axis=0))
    assert float(distances["timeseries_diff_KE1"]) == pytest.approx(0.21 * float(rms[0]), rel=1e-12)
    same = qg_distances(model, states, model, states)
    assert all(float(same[k]) <= 1e-12 * float(v) for k, v in distances.items())
    # a model halfway to the target scores between the baseline (0) and perfect (1)
    halfway = SpectralState(1.05 * states.field_hat, states.time)
    scores = qg_similarities(qg_distances(model, halfway, model, states), distances)
    assert 0.3 < float(scores["spectral_diff_KEspec1"]) < 0.7
    assert 0.3 < float(scores["distrib_diff_q1"]) < 0.7


def test_bad_trajectories_are_reported(random_qg_pv):
    model = TwoLayerQG.eddy(32)
    snapshot = model.initial_state()
    with pytest.raises(hybrax.ConfigurationError, match="time"):
        qg_distances(model, snapshot, model, snapshot)
    states = _trajectory(random_qg_pv, model, runs=1, steps=2, seed=0)
    longer = _trajectory(random_qg_pv, model, runs=1, steps=3, seed=0)
    with pytest.raises(hybrax.ConfigurationError, match="same number of snapshots"):
        qg_distances(model, states, model, longer)
    with pytest.raises(hybrax.ConfigurationError, match="num_ending_steps"):
        qg_distances(model, states, model, states, num_ending_steps=0)
    with pytest.raises(hybrax.ConfigurationError, match="lacks"):
        qg_similarities({"a": 1.0}, {"b": 1.0})
