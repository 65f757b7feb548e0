"""One gradient of the VGG age net in PyTorch and in boneage, from the same weights on the
same batch (docs/parity/vgg-A.md): the engines' arithmetic compared tensor by tensor,
with nothing random in between (no augmentation, no dropout).

    python bench/torch_age_grad.py WEIGHTS CROPS LABELS HOLDOUT [--n 8] [--seed 1]
        [--example target/release/examples/age_grad] [--work DIR] [--jitter S]

WEIGHTS: a VGG age net's safetensors beside its manifest (a run's model.safetensors, or
initial weights written by `bench/torch_ref_train.py --save-init` with a run's
model.json copied beside them). CROPS, LABELS, HOLDOUT as for bench/torch_ref_train.py:
the batch is N training films (outside HOLDOUT) drawn with SEED, read and windowed as
there. boneage's side is the example `age_grad` (cargo build --release -p boneage-nn
--example age_grad): one forward and backward in training mode, its gradient read back
from one SGD step. Prints both losses and, per tensor, the relative difference of the
gradients (|g_boneage − g_torch| / |g_torch|, Euclidean norms) and their cosine.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref_train import (  # noqa: E402
    AgeNet, boneage_names, from_boneage, load, read_ids, read_labels, read_safetensors, tensor)

LR_SCALE = 1000.0  # the example's SGD learning rate (examples/age_grad.rs)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights")
    p.add_argument("crops")
    p.add_argument("labels")
    p.add_argument("holdout")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--example", default="target/release/examples/age_grad")
    p.add_argument("--work", help="keep the batch and boneage's stepped weights here")
    p.add_argument("--adam", type=int, default=0, metavar="K",
                   help="instead of one gradient, K steps of Adam (eps 1e-8, --lr) on the batch in both "
                        "engines and in float64: the weights' changes compared")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--jitter", type=float, default=0.0,
                   help="add this much Gaussian noise to the pixels (scaled units), so that flat black "
                        "borders give no tied maxima in a max pool: a tie is broken by rounding, "
                        "differently in each engine and in float64")
    a = p.parse_args()
    manifest_path = os.path.splitext(a.weights)[0] + ".json"
    with open(manifest_path) as f:
        manifest = json.load(f)
    cfg = manifest["config"]
    if cfg.get("backbone") is not None or cfg["head"] != "Regression":
        sys.exit(f"{manifest_path}: a VGG regression net is compared here")
    h, w = manifest["input"]

    labels, held = read_labels(a.labels), read_ids(a.holdout)
    region = manifest.get("region", "A")
    ids = sorted(i for i in labels if i not in held and os.path.isfile(os.path.join(a.crops, f"{i}_{region}.png")))
    if len(ids) < a.n:
        sys.exit(f"{a.crops}: only {len(ids)} training crops of region {region}")
    ids = [ids[k] for k in np.random.default_rng(a.seed).choice(len(ids), a.n, replace=False)]
    x = tensor(load(a.crops, ids, region, h, w))
    if a.jitter > 0:
        x = x + a.jitter * torch.from_numpy(np.random.default_rng(a.seed).standard_normal(x.shape).astype(np.float32))
    male = torch.tensor([[labels[i][1]] for i in ids], dtype=torch.float32)
    scaled = torch.tensor([[labels[i][0] / 120.0 - 1.0] for i in ids], dtype=torch.float32)

    work = a.work or tempfile.mkdtemp(prefix="age-grad-")
    os.makedirs(work, exist_ok=True)
    batch = os.path.join(work, "batch.f32")
    np.concatenate([x.numpy().ravel(), male.numpy().ravel(), scaled.numpy().ravel()]).astype("<f4").tofile(batch)
    # The same weights with dropout 0 in the manifest: nothing random in boneage's step.
    start = os.path.join(work, "start.safetensors")
    with open(a.weights, "rb") as src, open(start, "wb") as dst:
        dst.write(src.read())
    manifest["config"]["dropout"] = 0.0
    with open(os.path.join(work, "start.json"), "w") as f:
        json.dump(manifest, f)
    stepped = os.path.join(work, "stepped.safetensors")
    steps = [str(a.adam), str(a.lr)] if a.adam else []
    run = subprocess.run([a.example, start, batch, stepped, *steps], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{a.example} failed:\n{run.stdout}{run.stderr}")
    losses_boneage = [float(l.split()[1]) for l in run.stdout.splitlines() if l.startswith("loss ")]
    loss_boneage = losses_boneage[0]
    if a.adam:
        compare_adam(a, cfg, x, male, scaled, read_safetensors(a.weights), read_safetensors(stepped), losses_boneage, ids)
        return

    widths, hidden = cfg["features"], cfg["hidden"]
    model = AgeNet(1, widths, hidden)
    weights = read_safetensors(a.weights)
    model.load_state_dict(from_boneage(weights, model))
    model.drop.p = 0.0
    model.train()
    loss = ((model(x, male) / 120.0 - 1.0) - scaled).abs().mean()
    loss.backward()
    params = dict(model.named_parameters())
    # The same in float64: the reference both float32 engines are measured against.
    exact = AgeNet(1, widths, hidden).double()
    exact.load_state_dict({k: v.double() for k, v in from_boneage(weights, exact).items()})
    exact.drop.p = 0.0
    exact.train()
    ((exact(x.double(), male.double()) / 120.0 - 1.0) - scaled.double()).abs().mean().backward()
    exact_params = dict(exact.named_parameters())
    after = read_safetensors(stepped)
    print(f"batch: {a.n} training films of {a.crops} (seed {a.seed}): {', '.join(ids)}")
    print(f"loss: boneage {loss_boneage:.8f}, PyTorch {loss.item():.8f}")
    print("per tensor: |g| (float64), then each float32 gradient's relative difference from the float64 one")
    print(f"{'tensor':<40} {'|g|':>11} {'boneage':>9} {'PyTorch':>9} {'cosine b/t':>11}")
    worst = [0.0, 0.0]
    for theirs, ours in boneage_names(model).items():
        if theirs not in params:
            continue  # running statistics: buffers, not parameters
        g_t = params[theirs].grad.detach()
        g_t = g_t.t().contiguous() if g_t.dim() == 2 else g_t
        g_e = exact_params[theirs].grad.detach()
        g_e = (g_e.t().contiguous() if g_e.dim() == 2 else g_e).float()
        g_b = (weights[ours] - after[ours]) / LR_SCALE
        ne = g_e.norm().item()
        if ne == 0.0:
            print(f"{ours:<40} {ne:>11.3e}  (no gradient: a bias under a batch norm or a constant)")
            continue
        rel = [(g - g_e).norm().item() / ne for g in (g_b, g_t)]
        cos = torch.nn.functional.cosine_similarity(g_b.flatten(), g_t.flatten(), dim=0).item()
        worst = [max(a, b) for a, b in zip(worst, rel)]
        print(f"{ours:<40} {ne:>11.3e} {rel[0]:>9.2e} {rel[1]:>9.2e} {cos:>11.6f}")
    print(f"largest relative difference from float64: boneage {worst[0]:.2e}, PyTorch {worst[1]:.2e}")


def compare_adam(a, cfg, x, male, scaled, weights, after, losses_boneage, ids):
    """K Adam steps on one batch in PyTorch (float32 and float64) against boneage's."""
    runs = {}
    for name, dtype in (("PyTorch", torch.float32), ("float64", torch.float64)):
        model = AgeNet(1, cfg["features"], cfg["hidden"]).to(dtype)
        model.load_state_dict({k: v.to(dtype) for k, v in from_boneage(weights, model).items()})
        model.drop.p = 0.0
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, eps=1e-8)
        losses = []
        for _ in range(a.adam):
            opt.zero_grad(set_to_none=True)
            loss = ((model(x.to(dtype), male.to(dtype)) / 120.0 - 1.0) - scaled.to(dtype)).abs().mean()
            losses.append(loss.item())
            loss.backward()
            opt.step()
        runs[name] = (model, losses)
    print(f"batch: {a.n} training films of {a.crops} (seed {a.seed}): {', '.join(ids)}")
    print(f"{a.adam} Adam steps, learning rate {a.lr}, eps 1e-8; loss before each step:")
    print("  boneage  " + " ".join(f"{v:.6f}" for v in losses_boneage))
    for name, (_, losses) in runs.items():
        print(f"  {name:<8} " + " ".join(f"{v:.6f}" for v in losses))
    print("per tensor: |change of the weights| (float64), then each float32 run's relative difference from it")
    print(f"{'tensor':<40} {'|dW|':>11} {'boneage':>9} {'PyTorch':>9}")
    params = {n: dict(m.named_parameters()) for n, (m, _) in runs.items()}
    worst = [0.0, 0.0]
    for theirs, ours in boneage_names(runs["PyTorch"][0]).items():
        if theirs not in params["PyTorch"]:
            continue
        def delta(t):
            t = t.detach().float()
            return (t.t().contiguous() if t.dim() == 2 else t) - weights[ours]
        d_e, d_t = delta(params["float64"][theirs]), delta(params["PyTorch"][theirs])
        d_b = after[ours] - weights[ours]
        ne = d_e.norm().item()
        if ne == 0.0:
            continue
        rel = [(d - d_e).norm().item() / ne for d in (d_b, d_t)]
        worst = [max(p, q) for p, q in zip(worst, rel)]
        print(f"{ours:<40} {ne:>11.3e} {rel[0]:>9.2e} {rel[1]:>9.2e}")
    print(f"largest relative difference from float64: boneage {worst[0]:.2e}, PyTorch {worst[1]:.2e}")


if __name__ == "__main__":
    main()
