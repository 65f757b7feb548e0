"""PyTorch reference for `boneage bench train`: the same cases as
crates/boneage-nn/src/bench.rs, one JSON line per case: {"case", "seconds"}.

Models, batches and optimizer match the Rust side: 3x3 convolutions without bias,
batch norm, ELU, 2x2 max pool; Adam at lr 1e-3; MAE loss; median of REPS timed
repetitions after 2 warm-up ones; 2 threads.

Usage: python bench/torch_ref.py REPS [ONLY]
"""

import json
import sys
import time

import torch
from torch import nn

torch.set_num_threads(2)
torch.manual_seed(1)


def block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ELU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ELU(),
        nn.MaxPool2d(2),
    )


def stack(widths):
    layers, cin = [], 1
    for w in widths:
        layers.append(block(cin, w))
        cin = w
    return nn.Sequential(*layers)


class SmallVgg(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = stack([32, 64, 128])
        self.fc = nn.Linear(128 * 16 * 16, 256)
        self.out = nn.Linear(256, 1)

    def forward(self, x):
        x = self.blocks(x).flatten(1)
        return self.out(nn.functional.elu(self.fc(x)))


class CpuAgeNet(nn.Module):
    """The cpu preset's bone-age net: widths 16..192, global average pool, dropout
    0.25 before each of FC 256, FC 256 and the output."""

    def __init__(self):
        super().__init__()
        self.blocks = stack([16, 32, 64, 64, 128, 192])
        self.fc = nn.ModuleList([nn.Linear(192, 256), nn.Linear(256, 256)])
        self.out = nn.Linear(256, 1)
        self.drop = nn.Dropout(0.25)

    def forward(self, x):
        x = self.blocks(x).mean(dim=(2, 3))
        for fc in self.fc:
            x = nn.functional.elu(fc(self.drop(x)))
        return self.out(self.drop(x))


def timed(reps, f):
    for _ in range(2):
        f()
    times = []
    for _ in range(max(reps, 1)):
        s = time.perf_counter()
        f()
        times.append(time.perf_counter() - s)
    times.sort()
    return times[len(times) // 2]


def train_case(model, shape, reps):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(shape)
    y = torch.rand(shape[0], 1)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = (model(x) - y).abs().mean()
        loss.backward()
        opt.step()
        loss.item()

    return timed(reps, step)


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    h, w = 256, 192
    cases = []
    if only in "small_vgg_step":
        cases.append(("small_vgg_step", lambda: train_case(SmallVgg(), (8, 1, 128, 128), reps)))
    if only in "age_step":
        cases.append(("age_step", lambda: train_case(CpuAgeNet(), (8, 1, h, w), reps)))
    if only in "age_infer":
        def infer():
            m = CpuAgeNet().eval()
            x = torch.rand(1, 1, h, w)
            with torch.inference_mode():
                return timed(reps * 2, lambda: m(x).item())
        cases.append(("age_infer", infer))
    for name, run in cases:
        print(json.dumps({"case": name, "seconds": run(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
