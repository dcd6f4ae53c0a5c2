"""The peer: MMAction2's ST-GCN++ (PYSKL config ``stgcn++``, COCO-17), timed like ours in speed.py.

Runs in benchmarks/.venv-peer (bash benchmarks/setup_peer.sh), never in the main venv. speed.py starts it with
``--serve`` and the same threads and environment (so the same allocator): it prints one JSON line about the
model (parameters, FLOPs, versions, machine), then times blocks of steps on request (``train K``, ``infer1 K``,
``inferN K``; _common.serve_blocks), in turns with speed.py's own blocks, so both see the same machine load.

    benchmarks/.venv-peer/bin/python benchmarks/peer_stgcnpp.py --serve --batch 16 --clip-len 64 --threads 2
    benchmarks/.venv-peer/bin/python benchmarks/peer_stgcnpp.py --check   # builds it and takes one step

Model: backbone STGCN(graph_cfg=dict(layout='coco', mode='spatial'), gcn_adaptive='init', gcn_with_res=True,
tcn_type='mstcn') + GCNHead(num_classes=60, in_channels=256). A training step is forward on
[N, M, T, V, C] + cross-entropy + backward + SGD (momentum 0.9, Nesterov, weight decay 5e-4) step.
"""

from __future__ import annotations

import argparse
import json
import sys
import types

import torch
import torch.nn.functional as F
from _common import count_flops, machine_info, serve_blocks


def stub_missing_modules() -> None:
    """mmaction2 1.2.0's wheel lacks mmaction/models/localizers/drn, which localizers/__init__ imports."""
    name = "mmaction.models.localizers.drn"
    if name in sys.modules:
        return
    pkg, mod = types.ModuleType(name), types.ModuleType(name + ".drn")
    pkg.__path__ = []

    class DRN(torch.nn.Module):  # never used: only its name is imported
        pass

    mod.DRN = DRN
    pkg.drn = mod
    sys.modules[name], sys.modules[name + ".drn"] = pkg, mod


class STGCNPlusPlus(torch.nn.Module):
    def __init__(self, num_classes: int = 60, in_channels: int = 3):
        super().__init__()
        stub_missing_modules()
        from mmaction.models.backbones.stgcn import STGCN
        from mmaction.models.heads.gcn_head import GCNHead

        self.backbone = STGCN(graph_cfg=dict(layout="coco", mode="spatial"), in_channels=in_channels,
                              gcn_adaptive="init", gcn_with_res=True, tcn_type="mstcn")
        self.head = GCNHead(num_classes=num_classes, in_channels=256)
        self.backbone.init_weights()
        self.head.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, M, T, V, C] -> logits [N, classes]
        return self.head(self.backbone(x))


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("mmaction2", "mmengine", "mmcv-lite", "mmcv", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16, help="training batch")
    ap.add_argument("--clip-len", type=int, default=64)
    ap.add_argument("--persons", type=int, default=2)
    ap.add_argument("--channels", type=int, default=3, help="PYSKL 2D input: x, y, score")
    ap.add_argument("--num-classes", type=int, default=60)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--infer-batch", type=int, default=64, help="batch of the inferN block")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--serve", action="store_true", help="time blocks of steps asked for on stdin")
    mode.add_argument("--check", action="store_true", help="build and take one tiny step, then exit")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.check:
        args.batch, args.clip_len = 2, 16
    torch.manual_seed(0)

    model = STGCNPlusPlus(args.num_classes, args.channels).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    shape = (args.batch, args.persons, args.clip_len, 17, args.channels)
    x = torch.randn(shape)  # every person present in every frame
    y = torch.randint(0, args.num_classes, (args.batch,))

    def forward_backward() -> None:
        F.cross_entropy(model(x), y).backward()

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        forward_backward()
        opt.step()

    def inference(n: int):
        xi = torch.randn(n, *shape[1:])

        def step() -> None:
            model.eval()
            with torch.inference_mode():
                model(xi)
            model.train()

        return step

    train_step()
    if args.check:
        print(json.dumps({"check": "ok"}), flush=True)
        return
    info = {"model": "ST-GCN++ (MMAction2)", "params": sum(p.numel() for p in model.parameters()),
            "input_shape": list(shape), "versions": versions(), "machine": machine_info(),
            "train_flops_per_clip": count_flops(forward_backward) / args.batch}
    opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        info["forward_flops_per_clip"] = count_flops(lambda: model(x)) / args.batch
    model.train()
    serve_blocks({"train": train_step, "infer1": inference(1), "inferN": inference(args.infer_batch)}, info)


if __name__ == "__main__":
    main()
