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


LITE0_STAGES = [  # repeats, kernel, stride, expand, channels
    (1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320),
]
# Lite1: Lite0 deeper by 1.1, its first and last stage kept (efficientnet.rs, LITE1_STAGES).
LITE1_STAGES = [
    (1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 40), (4, 3, 2, 6, 80),
    (4, 5, 1, 6, 112), (5, 5, 2, 6, 192), (1, 3, 1, 6, 320),
]


def conv_bn(cin, cout, k, s=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class MbConv(nn.Module):
    def __init__(self, cin, cout, k, s, e):
        super().__init__()
        h = cin * e
        self.expand = conv_bn(cin, h, 1) if e != 1 else nn.Identity()
        self.depthwise = conv_bn(h, h, k, s, groups=h)
        self.project = conv_bn(h, cout, 1, act=False)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        h = self.project(self.depthwise(self.expand(x)))
        return h + x if self.residual else h


class Lite0AgeNet(nn.Module):
    """crates/boneage-nn/src/efficientnet.rs with Preset::lite_age: EfficientNet-Lite0
    on one channel, global average pool, sex, dropout 0.2, FC 256 (ELU), output
    (`stages=LITE1_STAGES`: the same on EfficientNet-Lite1)."""

    def __init__(self, stages=LITE0_STAGES):
        super().__init__()
        blocks, cin = [conv_bn(1, 32, 3, 2)], 32
        for r, k, s, e, c in stages:
            for i in range(r):
                blocks.append(MbConv(cin, c, k, s if i == 0 else 1, e))
                cin = c
        blocks.append(conv_bn(cin, 1280, 1))
        self.backbone = nn.Sequential(*blocks)
        self.fc = nn.Linear(1281, 256)
        self.out = nn.Linear(256, 1)
        self.drop = nn.Dropout(0.2)

    def forward(self, x, sex):
        x = torch.cat([self.backbone(x).mean(dim=(2, 3)), sex], 1)
        x = nn.functional.elu(self.fc(self.drop(x)))
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


def train_case(model, shape, reps, sex=False):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(shape)
    y = torch.rand(shape[0], 1)
    args = (x, torch.rand(shape[0], 1)) if sex else (x,)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = (model(*args) - y).abs().mean()
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
    if only in "lite0_step":
        cases.append(("lite0_step", lambda: train_case(Lite0AgeNet(), (16, 1, h, w), reps, sex=True)))
    if only in "lite0_infer":
        def infer_lite():
            m = Lite0AgeNet().eval()
            x, s = torch.rand(1, 1, h, w), torch.ones(1, 1)
            with torch.inference_mode():
                return timed(reps * 2, lambda: m(x, s).item())
        cases.append(("lite0_infer", infer_lite))
    for name, run in cases:
        print(json.dumps({"case": name, "seconds": run(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
