"""BG/NBD against Fader, Hardie & Lee (2005) on the CDNOW sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microseg.errors import NotFittedError
from microseg.models.clv import BGNBD, ConvergenceError

pytestmark = pytest.mark.realdata

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def with_params(params: dict) -> BGNBD:
    model = BGNBD()
    model.params_ = pd.Series(params)
    return model


@pytest.fixture(scope="module")
def fitted(cdnow_summary) -> BGNBD:
    d = cdnow_summary
    return BGNBD().fit(d.x, d.t_x, d["T"])


def test_parameters_and_log_likelihood_match_the_paper(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, abs=5e-4), name
    assert fitted.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    summary = fitted.summary()
    assert list(summary.columns) == ["estimate", "se", "lower 95%", "upper 95%"]
    assert (summary.se > 0).all() and summary.attrs["n_customers"] == 2357


def test_customer_one_expects_1_226_purchases_in_39_weeks(fitted):
    assert fitted.predict_purchases(39, 2, 30.43, 38.86)[0] == pytest.approx(1.226, abs=5e-4)


def test_new_customer_expectations(fitted):
    published = with_params(PUBLISHED).expected_purchases_new([1, 3, 6])
    np.testing.assert_allclose(published, [0.0533, 0.1509, 0.2808], atol=5e-5)
    np.testing.assert_allclose(fitted.expected_purchases_new([1, 3, 6]), published, rtol=3e-3)


def test_probability_alive_is_one_for_one_time_buyers_and_falls_with_recency(fitted):
    p = fitted.probability_alive([0, 3, 3], [0, 38, 5], [38.86, 38.86, 38.86])
    assert p[0] == 1.0 and 0 < p[2] < p[1] < 1


def test_compressed_weights_give_the_same_fit(cdnow_summary, fitted):
    rows = cdnow_summary.groupby(["x", "t_x", "T"]).size().reset_index(name="n")
    model = BGNBD().fit(rows.x, rows.t_x, rows["T"], weights=rows.n)
    np.testing.assert_allclose(model.params_, fitted.params_, rtol=1e-6)
    merged = BGNBD().fit(rows.x, rows.t_x, rows["T"], weights=rows.n, distinct=True)
    np.testing.assert_allclose(merged.params_, fitted.params_, rtol=1e-6)


def test_bad_input_and_degenerate_data_fail_clearly():
    with pytest.raises(NotFittedError, match="call fit"):
        BGNBD().probability_alive([1], [1], [2])
    with pytest.raises(ValueError, match="recency vector are larger than T"):
        BGNBD().fit([1, 2], [5, 3], [4, 4])
    with pytest.raises(ValueError, match="frequency is 0|frequency 0"):
        BGNBD().fit([0, 0], [0, 0], [4, 5])
    with pytest.raises(ValueError, match="missing or infinite"):
        BGNBD().fit([1, np.nan], [1, 1], [4, 4])
    with pytest.raises(ValueError, match="parameter 'penalizer' must be >= 0"):
        BGNBD(penalizer=-1).fit([1], [1], [2])
    with pytest.raises(ValueError, match="needs customers with at least 12 different inputs; got 1"):
        BGNBD().fit([2, 2], [3.0, 3.0], [4.0, 4.0])
    with pytest.raises(ValueError, match="at least 12 different inputs; got 4"):
        BGNBD().fit([2, 0, 1, 5], [3.0, 0, 1, 4], [4.0, 4, 5, 6])


def test_data_without_dropout_is_reported_not_fitted_silently():
    """Customers who keep buying until the end: the dropout parameters grow without bound."""
    rng = np.random.default_rng(0)
    n = 3_000
    T = rng.uniform(20, 52, n).round(1)
    x = rng.poisson(rng.gamma(0.8, 1 / 6, n) * T * rng.uniform(0.2, 1.0, n))
    t_x = np.where(x > 0, (rng.uniform(0.3, 1.0, n) * T).round(1), 0.0)
    with pytest.raises(ConvergenceError, match="keep growing"):
        BGNBD().fit(x, t_x, T)
    penalized = BGNBD(penalizer=0.001).fit(x, t_x, T)  # the documented way out
    assert np.all(np.isfinite(penalized.params_)) and penalized.params_["b"] < 1e3


def test_analytic_derivatives_match_finite_differences(cdnow_summary):
    from microseg.models.clv.bgnbd import _Data

    d = cdnow_summary
    data = _Data.build(d.x.to_numpy(float), d.t_x.to_numpy(float), d["T"].to_numpy(float), np.ones(len(d)))
    for point in ([0.3, 4.0, 0.8, 2.5], [1.0, 10.0, 2.0, 5.0]):
        log_params = np.log(point)
        value, grad, hess = BGNBD._neg_log_likelihood_hessian(log_params, data)
        plain_value, plain_grad = BGNBD._neg_log_likelihood(log_params, data)
        assert value == pytest.approx(plain_value, rel=1e-12)
        np.testing.assert_allclose(grad, plain_grad, rtol=1e-9, atol=1e-9)
        step = 1e-6
        numeric = np.column_stack(
            [
                (
                    BGNBD._neg_log_likelihood(log_params + step * e, data)[1]
                    - BGNBD._neg_log_likelihood(log_params - step * e, data)[1]
                )
                / (2 * step)
                for e in np.eye(4)
            ]
        )
        np.testing.assert_allclose(hess, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())
