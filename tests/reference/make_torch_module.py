#!/usr/bin/env python3
"""Writes the TorchScript fixtures in tests/reference/torch/ for tests/meta_torch.test.cpp.

Run with Debian's Python (python3-torch, python3-numpy):
    /usr/bin/python3 tests/reference/make_torch_module.py

paper_head.pt      torch.jit.script of nn.Sequential(Linear(6, 4), ReLU(), LayerNorm(4)), float64,
                   seeded; LayerNorm's gamma and beta are randomised too so that their gradients
                   are told apart from the Linear ones.
paper_head_*.npy   parameters (flattened in module.parameters() order, each tensor in C order),
                   inputs X (5 x 6), outputs Z = module(X) (5 x 4), a fixed d_outputs dZ (5 x 4)
                   and gradient = d<Z, dZ>/dparameters by autograd, flattened like parameters.
conv.pt            Conv2d(1, 2, 3) - ReLU - Flatten - Linear(8, 3) on (1, 4, 4) images, float64,
conv_*.npy         to check the per-sample input shape; inputs are (3, 16) rows (the images in C
                   order), the same files as above.
Everything is float64 and written by numpy.save, so the C++ side compares with torch's own values.
"""
import os

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "torch")


def flat(tensors):
    return np.concatenate([t.detach().numpy().reshape(-1) for t in tensors])


def write(name, module, x, sample_shape):
    module = module.double().eval()
    scripted = torch.jit.script(module)
    scripted.save(os.path.join(OUT, name + ".pt"))
    params = list(module.parameters())
    xt = torch.from_numpy(x).reshape((x.shape[0],) + sample_shape)
    z = module(xt).reshape(x.shape[0], -1)
    rng = np.random.default_rng(7)
    dz = rng.uniform(-1.0, 1.0, size=z.shape)
    grads = torch.autograd.grad(z, params, grad_outputs=torch.from_numpy(dz))
    np.save(os.path.join(OUT, name + "_parameters.npy"), flat(params))
    np.save(os.path.join(OUT, name + "_inputs.npy"), x)
    np.save(os.path.join(OUT, name + "_outputs.npy"), z.detach().numpy())
    np.save(os.path.join(OUT, name + "_d_outputs.npy"), dz)
    np.save(os.path.join(OUT, name + "_gradient.npy"), flat(grads))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20240601)
    rng = np.random.default_rng(11)

    head = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.LayerNorm(4)).double()
    with torch.no_grad():
        head[2].weight.uniform_(0.5, 1.5)
        head[2].bias.uniform_(-0.5, 0.5)
    x = rng.normal(size=(5, 6))
    write("paper_head", head, x, (6,))

    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)).double()
    x = rng.normal(size=(3, 16))
    write("conv", conv, x, (1, 4, 4))
    print("torch", torch.__version__, "numpy", np.__version__)


if __name__ == "__main__":
    main()
