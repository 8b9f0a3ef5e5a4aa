#!/usr/bin/env python3
"""Writes tests/reference/metrics.txt, the reference values for baypr/eval/metrics.hpp.

Run with Debian's Python (python3-sklearn, python3-scipy):
    /usr/bin/python3 tests/reference/generate_metrics.py

File format. Lines starting with '#' and blank lines are skipped. Numbers are written with repr()
(shortest round-trip, i.e. exact doubles); "inf" is +infinity. Two kinds of block, each closed by
a line "end", with one "key values..." line per key:

    case <name> <n>                      a scored, labelled sample of size n
      scores <n values>                  higher = more anomalous
      labels <n values>                  1 = anomalous (positive), 0 = normal
      auroc <1>                          sklearn.metrics.roc_auc_score
      average_precision <1>              sklearn.metrics.average_precision_score
      best_f1 <f1> <threshold> <precision> <recall>
                                         max over sklearn.metrics.precision_recall_curve's points
                                         of 2PR / (P + R); among exact ties (decided in rational
                                         arithmetic) the highest threshold
      roc_fpr <m>  roc_tpr <m>  roc_thresholds <m>
                                         optional (small cases): sklearn.metrics.roc_curve with
                                         drop_intermediate=False; sklearn 1.2 writes max + 1 as
                                         the first threshold, this file writes inf there
    end

    interval <name> <n> <level>          a Student-t interval for the mean of n values
      values <n values>
      mean <1>                           numpy.mean
      t <1>                              the t quantile: P(|T| <= t) = level, T ~ t(n - 1), in
                                         60-digit decimal arithmetic from the exact double level
                                         (closed-form t CDF for integer dof), rounded once
      t_scipy <1>                        scipy.stats.t.ppf((1 + level) / 2, n - 1)
      half_width <1>                     t * std(values, ddof=1) / sqrt(n)
    end

Why both t values: SciPy's t.ppf (Cephes stdtrit) is the independent implementation, but it is
only good to ~1e-8 here (t.ppf(0.75, 1) = 1.0000000000134 where the answer is exactly 1, and
t.ppf(0.9, 29) differs from t.isf(0.1, 29) by 5e-9), too coarse for the library's tolerances; so
the tests hold baypr to the 60-digit value and check SciPy's to within its own accuracy.

Deterministic: a fixed seed and fixed case lists. Every sklearn value is also recomputed here in
exact rational arithmetic (fractions.Fraction) from the definitions (Mann-Whitney U with ties
counted 1/2; AP = sum (R_k - R_{k-1}) P_k over distinct thresholds); the largest disagreements
are recorded in the file's header, as is SciPy's t.ppf and t.cdf against the
60-digit t quantile and CDF.
"""
import math
import os
import sys
from decimal import Decimal as D
from decimal import getcontext
from fractions import Fraction

import numpy as np
import scipy
import scipy.stats as st
import sklearn
import sklearn.metrics as skm

getcontext().prec = 60
rng = np.random.default_rng(20260214)
worst = {}


def note(check, value):
    worst[check] = max(worst.get(check, 0.0), value)


def rel(a, b):
    a, b = float(a), float(b)
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(b), sys.float_info.min)


def fmt(v):
    v = float(v)
    return "inf" if v == math.inf else repr(v)


def exact_curve(scores, labels):
    """Cumulative (threshold, tp, fp) per distinct score, descending, as integers."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    out, tp, fp, i = [], 0, 0, 0
    while i < len(order):
        thr = scores[order[i]]
        while i < len(order) and scores[order[i]] == thr:
            if labels[order[i]] == 1:
                tp += 1
            else:
                fp += 1
            i += 1
        out.append((thr, tp, fp))
    return out


def exact_metrics(scores, labels):
    P = sum(1 for y in labels if y == 1)
    N = len(labels) - P
    curve = exact_curve(scores, labels)
    two_u, ap, prev_tp, prev_fp = 0, Fraction(0), 0, 0
    best = None  # (f1, threshold, precision, recall), first maximum = highest threshold
    for thr, tp, fp in curve:
        dp, dn = tp - prev_tp, fp - prev_fp
        two_u += 2 * dp * (N - fp) + dp * dn
        ap += Fraction(dp, P) * Fraction(tp, tp + fp)
        f1 = Fraction(2 * tp, P + tp + fp)
        if best is None or f1 > best[0]:
            best = (f1, thr, Fraction(tp, tp + fp), Fraction(tp, P))
        prev_tp, prev_fp = tp, fp
    return Fraction(two_u, 2 * P * N), ap, best, curve


def sklearn_best_f1(scores, labels, exact_best):
    p, r, thr = skm.precision_recall_curve(labels, scores)
    p, r = p[:-1], r[:-1]  # the appended (P = 1, R = 0) point has no threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    # The index of the exact best threshold (sklearn's thresholds ascend).
    k = int(np.nonzero(thr == exact_best[1])[0][0])
    note("best_f1 max (sklearn vs exact argmax)", rel(f1.max(), f1[k]))
    return float(f1[k]), float(thr[k]), float(p[k]), float(r[k])


def write_case(out, name, scores, labels):
    scores = [float(s) for s in scores]
    labels = [int(y) for y in labels]
    n = len(scores)
    y, s = np.array(labels), np.array(scores)
    auroc = skm.roc_auc_score(y, s)
    ap = skm.average_precision_score(y, s)
    e_auroc, e_ap, e_best, curve = exact_metrics(scores, labels)
    note("auroc (sklearn vs exact)", rel(auroc, float(e_auroc)))
    note("average_precision (sklearn vs exact)", rel(ap, float(e_ap)))
    f1, thr, prec, rec = sklearn_best_f1(s, y, e_best)
    note("best_f1 (sklearn vs exact)", rel(f1, float(e_best[0])))
    assert thr == e_best[1]
    out.append(f"case {name} {n}")
    out.append("scores " + " ".join(fmt(v) for v in scores))
    out.append("labels " + " ".join(str(v) for v in labels))
    out.append(f"auroc {fmt(auroc)}")
    out.append(f"average_precision {fmt(ap)}")
    out.append(f"best_f1 {fmt(f1)} {fmt(thr)} {fmt(prec)} {fmt(rec)}")
    if len(curve) <= 400:
        fpr, tpr, thresholds = skm.roc_curve(y, s, drop_intermediate=False)
        assert len(fpr) == len(curve) + 1 and fpr[0] == 0 and tpr[0] == 0
        thresholds = thresholds.astype(float)
        thresholds[0] = math.inf
        P, N = sum(labels), n - sum(labels)
        for k, (t, tp, fp) in enumerate(curve, start=1):
            assert thresholds[k] == t
            note("roc fpr/tpr (sklearn vs exact)", max(rel(fpr[k], Fraction(fp, N)),
                                                       rel(tpr[k], Fraction(tp, P))))
        out.append("roc_fpr " + " ".join(fmt(v) for v in fpr))
        out.append("roc_tpr " + " ".join(fmt(v) for v in tpr))
        out.append("roc_thresholds " + " ".join(fmt(v) for v in thresholds))
    out.append("end")


def binormal(n, positive_fraction, shift, decimals):
    labels = (rng.random(n) < positive_fraction).astype(int)
    if labels.sum() == 0:
        labels[0] = 1
    if labels.sum() == n:
        labels[-1] = 0
    scores = rng.standard_normal(n) + shift * labels
    return np.round(scores, decimals), labels


def atan_hp(x):
    """arctan(x), x >= 0 Decimal: halve the angle until x <= 0.1, then the Taylor series."""
    doublings = 0
    while x > D("0.1"):
        x = x / (1 + (1 + x * x).sqrt())  # tan(a / 2) from tan(a)
        doublings += 1
    total, power, j, x2 = D(0), x, 0, x * x
    while True:
        term = power / (2 * j + 1)
        if term < D(10) ** -75:
            break
        total += -term if j % 2 else term
        power *= x2
        j += 1
    return total * 2 ** doublings


PI_HP = 4 * atan_hp(D(1))


def t_central_hp(t, nu):
    """P(|T| <= t), T ~ t(nu), integer nu: the finite sums of Abramowitz & Stegun 26.7.3-4 in
    theta = atan(t / sqrt(nu)), with cos^2 theta = nu / (nu + t^2)."""
    c2 = D(nu) / (nu + t * t)
    sin = t / (nu + t * t).sqrt()
    total, term = D(1), D(1)
    if nu % 2 == 0:
        for k in range(1, (nu - 2) // 2 + 1):
            term *= D(2 * k - 1) / (2 * k) * c2
            total += term
        return sin * total
    for k in range(1, (nu - 3) // 2 + 1):
        term *= D(2 * k) / (2 * k + 1) * c2
        total += term
    body = sin * c2.sqrt() * total if nu > 1 else D(0)
    return 2 * (atan_hp(t / D(nu).sqrt()) + body) / PI_HP


def t_quantile_hp(level, nu, guess):
    """The t with P(|T| <= t) = level (the exact double), by bisection in 60 digits from a
    bracket around SciPy's answer."""
    target = D(level)  # exact value of the double
    lo, hi = D(guess) * D("0.999"), D(guess) * D("1.001")
    assert t_central_hp(lo, nu) < target < t_central_hp(hi, nu)
    for _ in range(220):
        mid = (lo + hi) / 2
        if t_central_hp(mid, nu) < target:
            lo = mid
        else:
            hi = mid
    return float((lo + hi) / 2)


def write_interval(out, name, values, level):
    values = np.array([float(v) for v in values])
    n = len(values)
    mean = np.mean(values)
    t_scipy = st.t.ppf((1 + level) / 2, n - 1)
    t = t_quantile_hp(level, n - 1, t_scipy)
    note("t quantile (scipy t.ppf vs 60-digit)", rel(t_scipy, t))
    for x in [0.3, 1.0, t, 7.5]:  # the closed form against an independent CDF
        note("t central probability (scipy t.cdf vs 60-digit)",
             rel(2 * st.t.cdf(x, n - 1) - 1, float(t_central_hp(D(x), n - 1))))
    half = t * np.std(values, ddof=1) / math.sqrt(n)
    out.append(f"interval {name} {n} {fmt(level)}")
    out.append("values " + " ".join(fmt(v) for v in values))
    out.append(f"mean {fmt(mean)}")
    out.append(f"t {fmt(t)}")
    out.append(f"t_scipy {fmt(t_scipy)}")
    out.append(f"half_width {fmt(half)}")
    out.append("end")


def main():
    out = []
    # Hand-checkable cases.
    write_case(out, "hand_example", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    write_case(out, "n2_correct", [0.3, 0.7], [0, 1])
    write_case(out, "n2_inverted", [0.3, 0.7], [1, 0])
    write_case(out, "n2_tied", [0.5, 0.5], [1, 0])
    write_case(out, "all_tied", [2.0] * 7, [1, 0, 0, 1, 0, 0, 0])
    # Random continuous scores (ties improbable) over a range of sizes.
    for n in [3, 5, 10, 37, 100, 500, 5000]:
        s, y = binormal(n, 0.3, 1.0, 6)
        write_case(out, f"continuous_n{n}", s, y)
    # Integer-rounded scores: many ties.
    for n in [10, 100, 1000, 2000]:
        s, y = binormal(n, 0.4, 0.8, 6)
        write_case(out, f"ties_n{n}", np.round(3 * s), y)
    # Heavy imbalance: a single positive (or negative).
    for n in [3, 50, 1000]:
        s = np.round(rng.standard_normal(n), 6)
        y = np.zeros(n, dtype=int)
        y[rng.integers(n)] = 1
        write_case(out, f"one_positive_n{n}", s, y)
    s = np.round(rng.standard_normal(50), 6)
    y = np.ones(50, dtype=int)
    y[7] = 0
    write_case(out, "one_negative_n50", s, y)
    # Perfect and inverted separation.
    for n in [20, 300]:
        y = (rng.random(n) < 0.5).astype(int)
        y[0], y[1] = 0, 1
        s = np.round(rng.random(n) + 2.0 * y, 6)
        write_case(out, f"perfect_n{n}", s, y)
        write_case(out, f"inverted_n{n}", -s, y)

    # Student-t intervals of per-episode values.
    for n in [2, 3, 5, 10, 30, 200]:
        for level in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999]:
            values = np.round(0.7 + 0.1 * rng.standard_normal(n), 6)
            write_interval(out, f"n{n}_level{level}", values, level)

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics.txt")
    header = [
        "# Reference values for baypr/eval/metrics.hpp, written by",
        "# tests/reference/generate_metrics.py (format described there).",
        f"# scikit-learn {sklearn.__version__}, SciPy {scipy.__version__}, NumPy {np.__version__}."
        " Largest relative disagreements with exact arithmetic:",
    ]
    header += [f"#   {k}: {v:.2g}" for k, v in sorted(worst.items())]
    with open(path, "w") as f:
        f.write("\n".join(header + out) + "\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    for k, v in sorted(worst.items()):
        print(f"  {k}: {v:.2g}")


if __name__ == "__main__":
    main()
