#!/usr/bin/python3
"""Reference values for baypr's NIW posterior and Student-t predictive, from NumPy and SciPy.

Writes tests/reference/niw_student_t.txt (format described in tests/support/fixtures.hpp).
Run with Debian's interpreter, which has python3-numpy and python3-scipy:

    /usr/bin/python3 tests/reference/generate_niw.py

Everything here is computed independently of the C++ library: the posterior with plain NumPy
(centred scatter, cross-checked against np.cov), the predictive density with
scipy.stats.multivariate_t, tail probabilities and thresholds with scipy.stats.f, and the log
marginal likelihood both in closed form (scipy.special.multigammaln) and by the chain rule of
Student-t predictives; the two must agree. Output is deterministic (seeded numpy Generator).

The cases "*_scaled_1e-100" / "*_scaled_1e+100" are an unscaled case with the data and mu0 times
s and Psi0 times s^2. Their expected values come from the unscaled case by exact rescaling
(mu_n * s, Psi_n * s^2, log pdf - d log s, log marginal - n d log s; kappa, nu, dof, mahalanobis,
tail and thresholds unchanged) rather than from float64 arithmetic on 1e+-200 numbers. The stored
inputs are fl(s * x), within half an ulp of s * x; the script measures how much that perturbs the
outputs and checks the rescaled values against a direct computation where that stays finite.
"""

import math
import os
import sys

import numpy as np
import scipy
import scipy.special
import scipy.stats

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "niw_student_t.txt")

rng = np.random.default_rng(20260601)

# Largest discrepancy seen by each agreement check, reported at the end.
checks = {}
direct_checked = []  # scaled cases whose direct float64 computation could be compared


def note(check, value):
    checks[check] = max(checks.get(check, 0.0), float(value))


def rel(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


# --------------------------------------------------------------------------------------------
# The model, straight from the definitions.

def centred_scatter(Z):
    n, d = Z.shape
    zbar = Z.mean(axis=0)
    C = Z - zbar
    S = C.T @ C
    if n > 1:  # np.cov(bias=True) is the biased covariance: scatter / n
        S_cov = np.atleast_2d(np.cov(Z, rowvar=False, bias=True)) * n
        note("centred scatter vs np.cov (rel, array-scaled)", rel(S_cov, S) if np.any(S) else 0.0)
    return zbar, S


def niw_posterior(Z, mu0, kappa0, nu0, Psi0):
    n, _ = Z.shape
    if n == 0:
        return kappa0, nu0, mu0.copy(), Psi0.copy()
    zbar, S = centred_scatter(Z)
    kappa_n = kappa0 + n
    nu_n = nu0 + n
    mu_n = (kappa0 * mu0 + n * zbar) / kappa_n
    diff = zbar - mu0
    Psi_n = Psi0 + S + (kappa0 * n / kappa_n) * np.outer(diff, diff)
    Psi_n = 0.5 * (Psi_n + Psi_n.T)
    return kappa_n, nu_n, mu_n, Psi_n


def predictive(kappa, nu, mu, Psi):
    d = mu.shape[0]
    v = nu - d + 1
    Sigma = Psi * (kappa + 1) / (kappa * v)
    return v, mu, Sigma


def log_pdf_scipy(X, v, mu, Sigma):
    lp = scipy.stats.multivariate_t(loc=mu, shape=Sigma, df=v).logpdf(X)
    return np.atleast_1d(np.asarray(lp, dtype=float)).reshape(X.shape[0])


def log_pdf_cholesky(X, v, mu, Sigma):
    """Second opinion on the density, via a Cholesky factor (not eigh as SciPy uses)."""
    d = mu.shape[0]
    L = np.linalg.cholesky(Sigma)
    W = np.linalg.solve(L, (X - mu).T)
    delta = np.sum(W * W, axis=0)
    logdet = 2.0 * np.sum(np.log(np.diag(L)))
    return (scipy.special.gammaln((v + d) / 2) - scipy.special.gammaln(v / 2)
            - 0.5 * d * math.log(v * math.pi) - 0.5 * logdet
            - 0.5 * (v + d) * np.log1p(delta / v))


def mahalanobis(X, mu, Sigma):
    R = (X - mu).T
    return np.sum(R * np.linalg.solve(Sigma, R), axis=0)


def log_marginal_closed(Z, mu0, kappa0, nu0, Psi0):
    n, d = Z.shape
    kappa_n, nu_n, _, Psi_n = niw_posterior(Z, mu0, kappa0, nu0, Psi0)
    s0, ld0 = np.linalg.slogdet(Psi0)
    sn, ldn = np.linalg.slogdet(Psi_n)
    assert s0 > 0 and sn > 0
    return (-0.5 * n * d * math.log(math.pi)
            + scipy.special.multigammaln(nu_n / 2, d) - scipy.special.multigammaln(nu0 / 2, d)
            + 0.5 * nu0 * ld0 - 0.5 * nu_n * ldn
            + 0.5 * d * (math.log(kappa0) - math.log(kappa_n)))


def log_marginal_chain(Z, mu0, kappa0, nu0, Psi0):
    total = 0.0
    for i in range(Z.shape[0]):
        post = niw_posterior(Z[:i], mu0, kappa0, nu0, Psi0)
        v, mu, Sigma = predictive(*post)
        total += float(log_pdf_scipy(Z[i:i + 1], v, mu, Sigma)[0])
    return total


# --------------------------------------------------------------------------------------------
# Case construction.

def random_spd(d, scale=1.0):
    A = rng.standard_normal((d, d))
    return scale * (A @ A.T / d + 0.2 * np.eye(d))


def make_prior(kind, d):
    if kind == "default":  # the method's defaults: isotropic Psi0, mu0 = 0, kappa0 0.01, nu0 d+2
        return np.zeros(d), 0.01, d + 2.0, np.eye(d)
    if kind == "isotropic":
        s = float(rng.uniform(0.3, 3.0))
        return np.zeros(d), 0.01, d + 2.0, s * np.eye(d)
    if kind == "random":
        return (rng.standard_normal(d), float(rng.uniform(0.1, 5.0)),
                float(rng.uniform(d - 1 + 0.05, d + 10)),
                random_spd(d, float(rng.uniform(0.5, 2.0))))
    if kind == "minimal_nu":  # nu0 = d - 0.5, the smallest value used (nu0 > d - 1 is required)
        return rng.standard_normal(d), float(rng.uniform(0.1, 5.0)), d - 0.5, random_spd(d)
    if kind == "diagonal":
        return (rng.standard_normal(d), float(rng.uniform(0.1, 5.0)),
                float(rng.uniform(d - 1 + 0.05, d + 10)), np.diag(rng.uniform(0.1, 10.0, d)))
    raise ValueError(kind)


def make_data(kind, n, d):
    offset = 2.0 * rng.standard_normal(d)
    B = rng.standard_normal((d, d)) / math.sqrt(d) + 0.3 * np.eye(d)
    if kind == "gaussian":
        return offset + rng.standard_normal((n, d)) @ B
    if kind == "near_duplicate":  # rows equal up to 1e-9 noise
        base = offset + rng.standard_normal(d) @ B
        return base + 1e-9 * rng.standard_normal((n, d))
    raise ValueError(kind)


def make_queries(v, mu, Sigma, Z):
    """Near the mean, a support row, typical draws, and far tails (mahalanobis 1e2, 1e4, 1e6)."""
    d = mu.shape[0]
    L = np.linalg.cholesky(Sigma)
    rows = [mu + L @ (1e-3 * rng.standard_normal(d)),   # very near the mean
            mu + L @ (0.5 * rng.standard_normal(d)),    # near the mean
            Z[0].copy(),                                  # a support point
            mu + L @ rng.standard_normal(d)]              # typical
    for target in (1e2, 1e4, 1e6):
        u = rng.standard_normal(d)
        rows.append(mu + math.sqrt(target) * (L @ (u / np.linalg.norm(u))))
    return np.array(rows)


def compute(Z, X, mu0, kappa0, nu0, Psi0):
    n, d = Z.shape
    kappa_n, nu_n, mu_n, Psi_n = niw_posterior(Z, mu0, kappa0, nu0, Psi0)
    v, _, Sigma = predictive(kappa_n, nu_n, mu_n, Psi_n)
    lp = log_pdf_scipy(X, v, mu_n, Sigma)
    note("log pdf: multivariate_t vs Cholesky formula (rel, per element)",
         np.max(np.abs(lp - log_pdf_cholesky(X, v, mu_n, Sigma)) / np.maximum(np.abs(lp), 1.0)))
    if d == 1:
        s = math.sqrt(Sigma[0, 0])
        lp1 = scipy.stats.t.logpdf((X[:, 0] - mu_n[0]) / s, v) - 0.5 * math.log(Sigma[0, 0])
        err = np.max(np.abs(lp - lp1) / np.maximum(np.abs(lp), 1.0))
        assert err < 1e-12, err
        note("d = 1: multivariate_t vs scipy.stats.t (rel, per element)", err)
    delta = mahalanobis(X, mu_n, Sigma)
    tail = scipy.stats.f.sf(delta / d, d, v)
    thr = {a: d * scipy.stats.f.isf(a, d, v) for a in (0.1, 0.01)}
    for a, t in thr.items():  # the threshold is where the tail probability equals alpha
        back = scipy.stats.f.sf(t / d, d, v)
        assert abs(back - a) < 1e-9 * a, (a, back)
        note("threshold round trip |f.sf(t/d) - alpha| / alpha", abs(back - a) / a)
    lm = log_marginal_closed(Z, mu0, kappa0, nu0, Psi0)
    lm_chain = log_marginal_chain(Z, mu0, kappa0, nu0, Psi0)
    err = abs(lm - lm_chain) / max(abs(lm), 1.0)
    assert err < 1e-9, (lm, lm_chain)
    note("log marginal: closed form vs chain rule (rel)", err)
    return dict(kappa_n=kappa_n, nu_n=nu_n, mu_n=mu_n, psi_n=Psi_n, dof=v, scale=Sigma,
                log_marginal=lm, log_pdf=lp, mahalanobis=delta, tail=tail,
                threshold_01=thr[0.1], threshold_001=thr[0.01])


def make_case(name, d, n, prior_kind, data_kind="gaussian"):
    mu0, kappa0, nu0, Psi0 = make_prior(prior_kind, d)
    assert nu0 > d - 1 and kappa0 > 0
    Z = make_data(data_kind, n, d)
    kappa_n, nu_n, mu_n, Psi_n = niw_posterior(Z, mu0, kappa0, nu0, Psi0)
    X = make_queries(*predictive(kappa_n, nu_n, mu_n, Psi_n), Z)
    case = dict(name=name, d=d, n=n, m=X.shape[0], kappa0=kappa0, nu0=nu0, mu0=mu0, psi0=Psi0,
                Z=Z, X=X)
    case.update(compute(Z, X, mu0, kappa0, nu0, Psi0))
    return case


def scaled_case(base, s, label):
    """The same problem with lengths times s, by exact rescaling of the unscaled results."""
    d, n = base["d"], base["n"]
    c = dict(base)
    c["name"] = base["name"] + "_scaled_" + label
    c["mu0"] = base["mu0"] * s
    c["psi0"] = base["psi0"] * (s * s)
    c["Z"] = base["Z"] * s
    c["X"] = base["X"] * s
    c["mu_n"] = base["mu_n"] * s
    c["psi_n"] = base["psi_n"] * (s * s)
    c["scale"] = base["scale"] * (s * s)
    c["log_pdf"] = base["log_pdf"] - d * math.log(s)
    c["log_marginal"] = base["log_marginal"] - n * d * math.log(s)

    # How much the rounding of the stored inputs (fl(s x) instead of s x) matters: recompute the
    # unscaled problem from the stored inputs divided back by s.
    back = compute(c["Z"] / s, c["X"] / s, c["mu0"] / s, base["kappa0"], base["nu0"],
                   c["psi0"] / (s * s))
    for key in ("mu_n", "psi_n", "scale", "log_pdf", "mahalanobis", "tail"):
        note("scaled cases: input rounding effect on " + key + " (rel, array-scaled)",
             rel(back[key], base[key]))
    # And a direct float64 computation at scale, which must agree where it stays finite.
    with np.errstate(all="ignore"):
        try:
            direct = compute(c["Z"], c["X"], c["mu0"], base["kappa0"], base["nu0"], c["psi0"])
        except (AssertionError, np.linalg.LinAlgError, ValueError):
            direct = None
    if direct is not None:
        direct_checked.append(c["name"])
        for key in ("mu_n", "psi_n", "scale", "log_pdf", "mahalanobis", "log_marginal"):
            if np.all(np.isfinite(direct[key])):
                note("scaled cases: direct float64 vs rescaled, " + key + " (rel, array-scaled)",
                     rel(direct[key], c[key]))
    return c


# --------------------------------------------------------------------------------------------

def build_cases():
    cases = []
    add = cases.append
    # d = 1
    add(make_case("d1_default_n5", 1, 5, "default"))
    add(make_case("d1_random_n1", 1, 1, "random"))
    add(make_case("d1_minnu_n2", 1, 2, "minimal_nu"))
    add(make_case("d1_diagonal_n40", 1, 40, "diagonal"))
    # d = 2
    add(make_case("d2_default_n10", 2, 10, "default"))
    add(make_case("d2_random_n1", 2, 1, "random"))
    add(make_case("d2_isotropic_n2", 2, 2, "isotropic"))
    add(make_case("d2_diagonal_n5", 2, 5, "diagonal"))
    # d = 3
    base3 = make_case("d3_random_n10", 3, 10, "random")
    add(base3)
    add(make_case("d3_minnu_n2", 3, 2, "minimal_nu"))
    add(make_case("d3_random_n40", 3, 40, "random"))
    add(make_case("d3_neardup_n5", 3, 5, "random", "near_duplicate"))
    # d = 5
    add(make_case("d5_default_n5", 5, 5, "default"))
    add(make_case("d5_random_n10", 5, 10, "random"))
    add(make_case("d5_diagonal_n2", 5, 2, "diagonal"))
    add(make_case("d5_neardup_n10", 5, 10, "default", "near_duplicate"))
    add(make_case("d5_minnu_n1", 5, 1, "minimal_nu"))
    # d = 16
    add(make_case("d16_default_n5", 16, 5, "default"))
    base16 = make_case("d16_random_n5", 16, 5, "random")
    add(base16)
    add(make_case("d16_minnu_n10", 16, 10, "minimal_nu"))
    add(make_case("d16_diagonal_n40", 16, 40, "diagonal"))
    # d = 64
    add(make_case("d64_default_n5", 64, 5, "default"))
    add(make_case("d64_random_n40", 64, 40, "random"))
    add(make_case("d64_minnu_n10", 64, 10, "minimal_nu"))
    # the same problems at extreme scales
    for base in (base3, base16):
        add(scaled_case(base, 1e-100, "1e-100"))
        add(scaled_case(base, 1e+100, "1e+100"))
    return cases


def fmt(values):
    return " ".join(repr(float(x)) for x in np.asarray(values, dtype=float).ravel())


def write(cases, path):
    lines = ["# niw_student_t.txt: NIW posterior / Student-t predictive reference values.",
             "# Generated by tests/reference/generate_niw.py with Python %s, NumPy %s, SciPy %s."
             % (sys.version.split()[0], np.__version__, scipy.__version__),
             "# Do not edit by hand; rerun the script. Format: tests/support/fixtures.hpp."]
    for c in cases:
        lines.append("case %s %d %d %d" % (c["name"], c["d"], c["n"], c["m"]))
        for key in ("kappa0", "nu0", "mu0", "psi0", "Z", "X", "kappa_n", "nu_n", "mu_n",
                    "psi_n", "dof", "scale", "log_marginal", "log_pdf", "mahalanobis", "tail"):
            lines.append("%s %s" % (key, fmt(c[key])))
        lines.append("threshold_0.1 %s" % fmt(c["threshold_01"]))
        lines.append("threshold_0.01 %s" % fmt(c["threshold_001"]))
        lines.append("end")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def check_mpmath(cases):
    try:
        import mpmath
    except ImportError:
        print("mpmath not installed: high-precision check of log pdf skipped")
        return
    mpmath.mp.dps = 50
    for c in cases[:6]:
        d, v = c["d"], c["dof"]
        S = mpmath.matrix(c["scale"].tolist())
        for j in range(c["m"]):
            r = mpmath.matrix((c["X"][j] - c["mu_n"]).tolist())
            delta = (r.T * mpmath.lu_solve(S, r))[0]
            lp = (mpmath.loggamma((v + d) / 2) - mpmath.loggamma(mpmath.mpf(v) / 2)
                  - mpmath.mpf(d) / 2 * mpmath.log(v * mpmath.pi) - mpmath.log(mpmath.det(S)) / 2
                  - (v + d) / 2 * mpmath.log1p(delta / v))
            note("log pdf vs mpmath (rel)", abs(float(lp) - c["log_pdf"][j]) / max(abs(float(lp)), 1.0))


def main():
    cases = build_cases()
    check_mpmath(cases)
    write(cases, OUT)
    print("wrote %s: %d cases, %d bytes" % (OUT, len(cases), os.path.getsize(OUT)))
    print("scaled cases also computed directly in float64: %s" % ", ".join(direct_checked))
    for k in sorted(checks):
        print("  %-75s %.3g" % (k, checks[k]))


if __name__ == "__main__":
    main()
