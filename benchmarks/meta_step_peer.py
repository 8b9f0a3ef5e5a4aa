#!/usr/bin/python3
"""benchmarks/meta_step_peer.py: the PyTorch peer of benchmarks/meta.bench.cpp.

The same meta-training step as baypr::meta::meta_step, written in PyTorch (float64, one thread):
embedding f_theta, NIW posterior of the support embeddings Z (prior mu0 0, kappa0 0.01, nu0 d + 2,
Psi0 I), posterior predictive Student-t by dense Cholesky,
  inner  L_in  = -(1/n) sum_i log t(z_i | Z),   theta' = theta - alpha grad L_in  (one step, 5e-4)
  outer  L_out = sum_j w_j [softplus(a_j) - y_j a_j],  a_j = s_j (calibration rho = beta = 0),
         s_j = log p_a(q_j) - log t(q_j | Z'),  w_j = 1 / (2 m_{y_j}),  p_a = t(0, 100 I, 2)
(baypr's default, discriminative objective) with Z', q_j the embeddings at theta'; the
meta-gradient d L_out / d theta, first order (the inner gradient detached) or exact second order
(create_graph=True through the inner gradient).
Embeddings (parameters held as separate tensors, as in an nn.Module; converted from and to baypr's
flat theta layout for the check):
  mlp   Linear(784, 64) - ReLU - LayerNorm(64, eps 1e-5)            (Mlp::paper_head)
  conv  Conv3x3(1->16, s2, p1) - ReLU - Conv3x3(16->32, s2, p1) - ReLU - mean - Linear(32, 64)
Episode: 5 support rows, 12 normal + 4 anomalous queries, 28 x 28 uniform [0, 1) inputs.

  meta_step_peer.py                      time each (embedding, order): JSON lines with episodes/s
                                         per CPU second (median of --repeats runs after warm-up)
  meta_step_peer.py --check DIR          compare with baypr's values from `meta.bench --export DIR`
  meta_step_peer.py --compare EXE        alternate --rounds times: this peer, then EXE (meta.bench)
                                         with JSON output; print baypr / PyTorch ratios per case

Debian's python3-torch takes its BLAS from libblas.so.3, by default the unoptimised reference
BLAS; the JSON line names the one loaded (`blas`), see the report for OpenBLAS.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

SIDE, DIM = 28, 64
SUPPORT, NORMAL, ANOMALOUS = 5, 12, 4
ALPHA = 5e-4
KAPPA0 = 0.01
ANOMALY_SCALE, ANOMALY_DOF = 100.0, 2.0


class Mlp:
    """Linear(784, d) - ReLU - LayerNorm(d); flat theta: W (d x 784, column-major), b, gamma, beta."""

    def __init__(self, inp=SIDE * SIDE, out=DIM):
        self.inp, self.out = inp, out
        self.count = out * inp + 3 * out

    def unflatten(self, theta):
        """Separate parameter tensors in PyTorch's shapes, as an nn.Module would hold them."""
        i, o = self.inp, self.out
        w = theta[: o * i].view(i, o).t().contiguous()  # column-major out x in
        return [w, theta[o * i: o * i + o].clone(), theta[o * i + o: o * i + 2 * o].clone(),
                theta[o * i + 2 * o:].clone()]

    def flatten(self, grads):
        """Gradients of unflatten's tensors in baypr's flat layout."""
        w, b, gamma, beta = grads
        return torch.cat([w.t().reshape(-1), b, gamma, beta])

    def forward(self, params, x):
        w, b, gamma, beta = params
        return F.layer_norm(F.relu(F.linear(x, w, b)), (self.out,), gamma, beta, eps=1e-5)


class Conv:
    """baypr::meta::Conv with channels {1, 16, 32}, strides {2, 2}, output 64 (conv.hpp layout)."""

    def __init__(self, channels=(1, 16, 32), strides=(2, 2), out=DIM):
        self.channels, self.strides, self.out = channels, strides, out
        self.layers = []
        off = 0
        for l, s in enumerate(strides):
            ci, co = channels[l], channels[l + 1]
            self.layers.append((off, ci, co, s))
            off += co * 9 * ci + co
        self.head = off
        self.count = off + out * channels[-1] + out

    def unflatten(self, theta):
        params = []
        for off, ci, co, _ in self.layers:
            # K: co x (9 ci) column-major, column ci * 9 + ky * 3 + kx = PyTorch's (co, ci, 3, 3).
            params.append(theta[off: off + co * 9 * ci].view(9 * ci, co).t().reshape(co, ci, 3, 3).contiguous())
            params.append(theta[off + co * 9 * ci: off + co * 9 * ci + co].clone())
        c = self.channels[-1]
        params.append(theta[self.head: self.head + self.out * c].view(c, self.out).t().contiguous())
        params.append(theta[self.head + self.out * c:].clone())
        return params

    def flatten(self, grads):
        parts = []
        for (_, ci, co, _), k, b in zip(self.layers, grads[0::2], grads[1::2]):
            parts += [k.reshape(co, 9 * ci).t().reshape(-1), b]
        parts += [grads[-2].t().reshape(-1), grads[-1]]
        return torch.cat(parts)

    def forward(self, params, x):
        h = x.view(x.shape[0], self.channels[0], SIDE, SIDE)
        for (_, _, _, s), k, b in zip(self.layers, params[0::2], params[1::2]):
            h = F.relu(F.conv2d(h, k, b, stride=s, padding=1))
        return F.linear(h.mean(dim=(2, 3)), params[-2], params[-1])


def predictive(z):
    """Location, Cholesky factor of Sigma, dof and the constant of the NIW posterior predictive."""
    n, d = z.shape
    nu0 = d + 2.0
    zbar = z.mean(dim=0)
    c = z - zbar
    kappa_n, nu_n = KAPPA0 + n, nu0 + n
    mu = n * zbar / kappa_n  # mu0 = 0
    psi = torch.eye(d) + c.t() @ c + (KAPPA0 * n / kappa_n) * torch.outer(zbar, zbar)
    v = nu_n - d + 1.0
    sigma = psi * ((kappa_n + 1.0) / (kappa_n * v))
    chol = torch.linalg.cholesky(sigma)
    const = math.lgamma((v + d) / 2) - math.lgamma(v / 2) - d / 2 * math.log(v * math.pi)
    return mu, chol, v, const


def log_t(x, mu, chol, v, const):
    d = x.shape[1]
    y = torch.linalg.solve_triangular(chol, (x - mu).t(), upper=False)
    delta = (y * y).sum(dim=0)
    half_logdet = torch.log(torch.diagonal(chol)).sum()
    return const - half_logdet - (v + d) / 2 * torch.log1p(delta / v)


def log_anomaly(q):
    d = q.shape[1]
    v, s = ANOMALY_DOF, ANOMALY_SCALE
    c = math.lgamma((v + d) / 2) - math.lgamma(v / 2) - d / 2 * math.log(v * math.pi * s)
    return c - (v + d) / 2 * torch.log1p((q * q).sum(dim=1) / (s * v))


def meta_step(emb, params0, support, queries, labels, second_order):
    """(outer loss, inner loss, meta-gradient: one tensor per parameter) of one episode."""
    params = [p.detach().requires_grad_(True) for p in params0]
    z = emb.forward(params, support)
    inner = -log_t(z, *predictive(z)).mean()
    grads = torch.autograd.grad(inner, params, create_graph=second_order)
    if not second_order:
        grads = [g.detach() for g in grads]
    adapted = [p - ALPHA * g for p, g in zip(params, grads)]
    z2 = emb.forward(adapted, support)
    q = emb.forward(adapted, queries)
    ln = log_t(q, *predictive(z2))
    la = log_anomaly(q)
    a = la - ln  # calibration rho = beta = 0: alpha = 1, no shift, no L2 term
    m1 = labels.sum()
    w = torch.where(labels > 0, 0.5 / m1, 0.5 / (labels.numel() - m1))
    outer = (w * (F.softplus(a) - labels * a)).sum()
    meta_grads = torch.autograd.grad(outer, params)
    return outer.detach(), inner.detach(), meta_grads


def embeddings():
    return {"mlp": Mlp(), "conv": Conv()}


def episode(seed=11):
    gen = torch.Generator().manual_seed(seed)
    support = torch.rand(SUPPORT, SIDE * SIDE, generator=gen)
    queries = torch.rand(NORMAL + ANOMALOUS, SIDE * SIDE, generator=gen)
    labels = torch.cat([torch.zeros(NORMAL), torch.ones(ANOMALOUS)])
    return support, queries, labels


def initial_theta(emb, seed=7):
    # PyTorch-default-like ranges; for timing only (the check uses baypr's exported parameters).
    gen = torch.Generator().manual_seed(seed)
    theta = (torch.rand(emb.count, generator=gen) * 2 - 1) * 0.05
    if isinstance(emb, Mlp):
        o, i = emb.out, emb.inp
        theta[o * i + o: o * i + 2 * o] = 1.0
        theta[o * i + 2 * o:] = 0.0
    return theta


def blas_name():
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower()}
        return ",".join(sorted(os.path.basename(p) if "openblas" in p else p for p in libs)) or "unknown"
    except OSError:
        return "unknown"


def time_cases(repeats, min_time):
    support, queries, labels = episode()
    results = []
    for name, emb in embeddings().items():
        theta = emb.unflatten(initial_theta(emb))
        for order in ("first", "second"):
            second = order == "second"
            for _ in range(3):  # warm-up
                meta_step(emb, theta, support, queries, labels, second)
            # Episodes per timed run: about min_time seconds' worth.
            t0 = time.process_time()
            meta_step(emb, theta, support, queries, labels, second)
            per = max(time.process_time() - t0, 1e-6)
            count = max(1, int(min_time / per))
            rates = []  # CPU time, as Google Benchmark's items_per_second (fair on a loaded machine)
            for _ in range(repeats):
                t0 = time.process_time()
                for _ in range(count):
                    meta_step(emb, theta, support, queries, labels, second)
                rates.append(count / (time.process_time() - t0))
            line = {"case": f"{name}/{order}", "episodes_per_s": statistics.median(rates),
                    "runs": [round(r, 2) for r in rates], "episodes_per_run": count,
                    "threads": torch.get_num_threads(), "torch": torch.__version__, "blas": blas_name()}
            print(json.dumps(line), flush=True)
            results.append(line)
    return results


def check(directory, tol):
    """Compare PyTorch's step with baypr's exported one (both orders, both baypr paths)."""
    ok = True
    for name, emb in embeddings().items():
        d = os.path.join(directory, name)
        load = lambda f: torch.from_numpy(np.load(os.path.join(d, f)).astype(np.float64))
        theta = load("theta.npy").reshape(-1)
        support, queries = load("support.npy"), load("queries.npy")
        labels = load("labels.npy").reshape(-1)
        assert theta.numel() == emb.count, (name, theta.numel(), emb.count)
        mine = {}
        for order in ("first", "second"):
            o, i, g = meta_step(emb, emb.unflatten(theta), support, queries, labels, order == "second")
            mine[order] = (o, i, emb.flatten(g))
            for path in ("automatic", "dense"):
                tag = f"{order}_{path}"
                outer = float(load(f"outer_loss_{tag}.npy").reshape(()))
                inner = float(load(f"inner_loss_{tag}.npy").reshape(()))
                grad = load(f"gradient_{tag}.npy").reshape(-1)
                o, i, g = mine[order]
                e_out = abs(float(o) - outer) / abs(outer)
                e_in = abs(float(i) - inner) / abs(inner)
                e_grad = float((g - grad).abs().max() / grad.abs().max())
                good = max(e_out, e_in, e_grad) <= tol
                ok &= good
                print(json.dumps({"case": f"{name}/{tag}", "outer_loss": outer, "rel_err_outer": e_out,
                                  "rel_err_inner": e_in, "rel_err_gradient_maxnorm": e_grad,
                                  "ok": good}))
            if order == "second":
                # The second-order term alone (g2 - g1) is small next to g: check it separately.
                for path in ("automatic", "dense"):
                    b2 = load(f"gradient_second_{path}.npy").reshape(-1)
                    b1 = load(f"gradient_first_{path}.npy").reshape(-1)
                    t2, t1 = mine["second"][2], mine["first"][2]
                    db, dt = b2 - b1, t2 - t1
                    e = float((dt - db).abs().max() / db.abs().max())
                    print(json.dumps({"case": f"{name}/second_order_term_{path}",
                                      "term_over_gradient": float(db.abs().max() / b2.abs().max()),
                                      "rel_err_term_maxnorm": e}))
    print(json.dumps({"check": "pass" if ok else "FAIL", "tolerance": tol}))
    return ok


def compare(exe, rounds, repeats, min_time):
    """Alternate peer and baypr runs; per case, baypr / PyTorch episodes/s of each round."""
    table = {}
    for r in range(rounds):
        for line in time_cases(repeats, min_time):
            table.setdefault(line["case"], {}).setdefault("torch", []).append(line["episodes_per_s"])
        out = subprocess.run([exe, "--benchmark_format=json", f"--benchmark_min_time={min_time}",
                              f"--benchmark_repetitions={repeats}", "--benchmark_report_aggregates_only=true"],
                             check=True, capture_output=True, text=True).stdout
        for b in json.loads(out)["benchmarks"]:
            if b.get("aggregate_name") != "median" or not b["run_name"].startswith("BM_MetaStep/"):
                continue  # BM_MetaStepFresh: baypr's allocating variant, not compared
            parts = b["run_name"].split("/")  # BM_MetaStep/<emb>/<order>[/dense]
            case = f"{parts[1]}/{parts[2]}"
            key = "baypr_dense" if len(parts) > 3 else "baypr"
            table.setdefault(case, {}).setdefault(key, []).append(b["items_per_second"])
        print(json.dumps({"round": r + 1, "done": True}), file=sys.stderr, flush=True)
    for case, v in table.items():
        ratios = [b / t for b, t in zip(v["baypr"], v["torch"])]
        dense = [b / t for b, t in zip(v["baypr_dense"], v["torch"])]
        print(json.dumps({"case": case, "torch_eps": v["torch"], "baypr_eps": v["baypr"],
                          "baypr_dense_eps": v["baypr_dense"],
                          "ratio_baypr_over_torch": [round(x, 2) for x in ratios],
                          "ratio_baypr_dense_over_torch": [round(x, 2) for x in dense],
                          "median_ratio": round(statistics.median(ratios), 2),
                          "median_ratio_dense": round(statistics.median(dense), 2),
                          "target_5x": "met" if statistics.median(dense) >= 5 else "MISSED (dense)"}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", metavar="DIR")
    p.add_argument("--tolerance", type=float, default=1e-8)
    p.add_argument("--compare", metavar="EXE")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5)
    a = p.parse_args()
    if a.check:
        sys.exit(0 if check(a.check, a.tolerance) else 1)
    if a.compare:
        compare(a.compare, a.rounds, a.repeats, a.min_time)
    else:
        time_cases(a.repeats, a.min_time)


if __name__ == "__main__":
    main()
