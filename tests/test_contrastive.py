"""GraphCL / JOAO pre-training of the SkeletonMAE encoder (models/contrastive.py, paper Tab. 4b): augmentations
checked by hand, the NT-Xent against its formula, JOAO's step on p, and real runs that fine-tune and resume."""

from __future__ import annotations

import json
import math
from collections import deque

import pytest
import torch
from conftest import shared_pickle

from skeletonmae.cli import main
from skeletonmae.config import ContrastConfig, EncoderConfig, MAEConfig, load_config
from skeletonmae.models.build import build_classifier, build_pretrain_model, load_checkpoint, load_pretrained
from skeletonmae.models.contrastive import (
    AUGMENTATIONS,
    GraphContrast,
    nt_xent,
    project_to_simplex,
)
from skeletonmae.models.skeletonmae import SkeletonMAE
from skeletonmae.skeleton import get_layout

SKELETON = torch.as_tensor(get_layout("coco17").adjacency()).bool()
PENN_ABSENT = [1, 2, 3, 4]  # eyes and ears: absent in Penn Action mapped to COCO-17


def present_patterns() -> torch.Tensor:
    """Graphs [4, 17] of present joints: all 17, Penn Action's 13, 13 minus a wrist and an ankle, 10."""
    present = torch.ones(4, 17, dtype=torch.bool)
    present[1:, PENN_ABSENT] = False
    present[2, [10, 16]] = False
    present[3, [10, 15, 16]] = False
    return present


def augment(name: str, present: torch.Tensor, ratio: float = 0.2, seed: int = 0):
    model = GraphContrast(EncoderConfig(dim=8, layers=1), ContrastConfig(aug_ratio=ratio), 2)
    which = torch.full((len(present),), AUGMENTATIONS.index(name))
    return model.augment(present, which, torch.Generator().manual_seed(seed))


def edges(adjacency: torch.Tensor) -> set[tuple[int, int]]:
    return {(i, j) for i, j in adjacency.nonzero().tolist() if i < j}


def connected(joints: set[int]) -> bool:
    start = next(iter(joints))
    seen, todo = {start}, deque([start])
    while todo:
        for j in SKELETON[todo.popleft()].nonzero().flatten().tolist():
            if j in joints and j not in seen:
                seen.add(j)
                todo.append(j)
    return seen == joints


# -- model -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["graphcl", "joao"])
def test_shapes_gradients_and_the_same_encoder_as_skeletonmae(method):
    torch.manual_seed(0)
    model = GraphContrast(EncoderConfig(dim=16, layers=2), ContrastConfig(), 2, method=method)
    x = torch.randn(3, 2, 8, 17, 2)
    x[0, 1] = 0  # the second person of clip 0 is absent: its frames are skipped
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out["losses"].shape == out["pairs"].shape == out["clips"].shape == (5 * 4,)
    assert out["clips"].tolist() == [0] * 4 + [1] * 8 + [2] * 8
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.epoch_count.sum() == 20  # the losses were recorded per pair
    mae = SkeletonMAE(EncoderConfig(dim=16, layers=2), MAEConfig(), 2)
    ours, theirs = model.encoder_state(), mae.encoder_state()
    assert ours.keys() == theirs.keys() and all(ours[k].shape == theirs[k].shape for k in ours)
    clf = build_classifier(load_config(None, ["data.clip_len=8", "encoder.dim=16", "encoder.layers=2"]), 2, 5)
    clf.load_pretrained(ours)  # strict: fine-tuning takes it as it takes SkeletonMAE's
    assert model.encode(x).shape == (3, 2, 8, 17, 16)


def test_graphcl_draws_real_augmentations_and_joao_the_whole_pool():
    graphcl = GraphContrast(EncoderConfig(), ContrastConfig(), 2, "graphcl")
    joao = GraphContrast(EncoderConfig(), ContrastConfig(), 2, "joao")
    assert graphcl.pair_prob[0].sum() == 0 and graphcl.pair_prob[:, 0].sum() == 0  # no identity in GraphCL's pool
    torch.testing.assert_close(graphcl.pair_prob[1:, 1:], torch.full((4, 4), 1 / 16))
    torch.testing.assert_close(joao.pair_prob, torch.full((5, 5), 1 / 25))


def test_frames_are_spread_over_the_clip():
    """One frame per quarter of the clip, the same frames for both persons; absent persons' frames skipped."""
    model = GraphContrast(EncoderConfig(), ContrastConfig(frames_per_clip=4), 2)
    t = 20
    frame_id = torch.arange(1, t + 1).float().view(1, t, 1, 1)
    x = torch.cat([frame_id, -frame_id]).expand(3, 2, t, 17, 2).clone()  # person 0: frame + 1, person 1: -(frame + 1)
    x[:, 1, 10:] = 0  # person 1 leaves at frame 10
    s, clips = model.sample_graphs(x, torch.Generator().manual_seed(0))
    value = s[:, 0, 0]
    for n in range(3):
        first = value[(clips == n) & (value > 0)].long() - 1
        second = -value[(clips == n) & (value < 0)].long() - 1
        assert (first // 5).tolist() == [0, 1, 2, 3]  # one frame in each quarter of the clip
        assert second.tolist() == [f for f in first.tolist() if f < 10]


# -- augmentations, by hand -----------------------------------------------------------------------------------

def test_node_dropping_removes_int_ratio_of_present_joints_and_their_edges():
    present = present_patterns()
    dropped, masked, adjacency = augment("node_drop", present)
    assert dropped.sum(1).tolist() == [3, 2, 2, 2]  # int(0.2 · 17), int(0.2 · 13), int(0.2 · 11), int(0.2 · 10)
    assert not (dropped & ~present).any() and not masked.any()
    keep = ~dropped
    assert torch.equal(adjacency, SKELETON & keep[:, :, None] & keep[:, None, :])  # the others' edges stay


def test_edge_perturbation_flips_int_ratio_of_edges_symmetrically():
    present = present_patterns()
    for seed in range(5):
        dropped, masked, adjacency = augment("edge_perturb", present, ratio=0.3, seed=seed)
        assert not dropped.any() and not masked.any()
        assert torch.equal(adjacency, adjacency.transpose(1, 2)) and not adjacency.diagonal(dim1=1, dim2=2).any()
        for b in range(len(present)):
            live = present[b].nonzero().flatten().tolist()
            old, new = ({e for e in edges(a) if e[0] in live and e[1] in live} for a in (SKELETON, adjacency[b]))
            k = int(0.3 * len(old))
            assert len(old - new) == k and len(new - old) == k  # k removed, k added: the edge count stays
            assert edges(adjacency[b]) ^ edges(SKELETON) == old ^ new  # edges at absent joints untouched


def test_subgraph_is_connected_of_the_expected_size():
    present = present_patterns()[:2].repeat(10, 1)  # all joints, Penn Action's 13: both connected
    dropped, masked, adjacency = augment("subgraph", present, ratio=0.3)
    kept = present & ~dropped
    n = present.sum(1)
    assert torch.equal(kept.sum(1), n - (n * 0.3).long())  # 17 - 5 = 12, 13 - 3 = 10
    assert all(connected(set(row.nonzero().flatten().tolist())) for row in kept)
    assert len({tuple(row.tolist()) for row in kept}) > 5  # random start and expansion
    assert not masked.any()
    keep = ~dropped
    assert torch.equal(adjacency, SKELETON & keep[:, :, None] & keep[:, None, :])


def test_attribute_masking_marks_int_ratio_of_present_joints():
    present = present_patterns()
    dropped, masked, adjacency = augment("attr_mask", present)
    assert masked.sum(1).tolist() == [3, 2, 2, 2] and not (masked & ~present).any() and not dropped.any()
    assert torch.equal(adjacency, SKELETON.expand_as(adjacency))
    dropped, masked, adjacency = augment("identity", present)
    assert not dropped.any() and not masked.any() and torch.equal(adjacency, SKELETON.expand_as(adjacency))


@pytest.mark.parametrize("name", ["node_drop", "subgraph", "attr_mask", "identity"])
def test_hidden_joints_do_not_reach_the_embedding(name):
    """Dropped and masked joints' coordinates never reach z; with the identity every joint does."""
    torch.manual_seed(0)
    model = GraphContrast(EncoderConfig(dim=16, layers=2), ContrastConfig(), 2).eval()
    s = torch.randn(6, 17, 2)
    which = torch.full((6,), AUGMENTATIONS.index(name))
    dropped, masked, _ = model.augment(torch.ones(6, 17, dtype=torch.bool), which, torch.Generator().manual_seed(1))
    hidden = dropped | masked if name != "identity" else torch.ones(6, 17, dtype=torch.bool)
    moved = s + 3.0 * hidden.unsqueeze(-1)
    z = model.view(s, which, torch.Generator().manual_seed(1))
    z_moved = model.view(moved, which, torch.Generator().manual_seed(1))
    if name == "identity":
        assert not torch.allclose(z, z_moved)
    else:
        torch.testing.assert_close(z, z_moved)


# -- NT-Xent -------------------------------------------------------------------------------------------------

def test_nt_xent_matches_the_formula_and_leaves_same_clip_frames_out():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    z2 = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # lengths do not matter: cosines
    tau = 0.5
    # cos(z1_i, z2_j): row 0 [1, 1, 0], row 1 [0, 0, 1], row 2 [1/√2, 1/√2, 1/√2]; logits = cos / tau
    e, r = math.e, math.exp(math.sqrt(2))
    expected = [-math.log(e**2 / (e**2 + e**2 + 1)), -math.log(1 / (1 + 1 + e**2)), -math.log(r / (3 * r))]
    torch.testing.assert_close(nt_xent(z1, z2, torch.tensor([0, 1, 2]), tau), torch.tensor(expected))
    # graphs 0 and 1 are frames of one clip: neither is the other's negative; graph 2 keeps both
    expected = [-math.log(e**2 / (e**2 + 1)), -math.log(1 / (1 + e**2)), math.log(3)]
    torch.testing.assert_close(nt_xent(z1, z2, torch.tensor([7, 7, 9]), tau), torch.tensor(expected))
    assert nt_xent(z1, z2, torch.tensor([0, 0, 0]), tau).abs().max() == 0  # one clip: no negatives, no loss


# -- JOAO ----------------------------------------------------------------------------------------------------

def test_simplex_projection():
    torch.testing.assert_close(project_to_simplex(torch.tensor([2.0, 0.0])), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(project_to_simplex(torch.tensor([0.3, 0.7])), torch.tensor([0.3, 0.7]))
    v = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    p = project_to_simplex(v)
    assert p.shape == v.shape and (p >= 0).all() and abs(float(p.sum()) - 1) < 1e-6
    theta = (v - p)[p > 0]  # KKT: p = max(v - theta, 0) for one theta
    torch.testing.assert_close(theta, theta[:1].expand_as(theta))
    assert (v[p == 0] <= theta[0] + 1e-6).all()


def test_joao_moves_p_towards_the_hardest_pair_and_stays_on_the_simplex():
    model = GraphContrast(EncoderConfig(), ContrastConfig(joao_gamma=0.1), 2, method="joao")
    loss = torch.full((5, 5), 1.0)
    loss[2, 3] = 1.3  # edge perturbation then subgraph: the hardest pair
    model.epoch_loss_sum.copy_(loss * 4)
    model.epoch_count.fill_(4)
    before = model.pair_prob.clone()
    model.end_epoch()
    p = model.pair_prob
    assert (p >= 0).all() and abs(float(p.sum()) - 1) < 1e-6
    assert p[2, 3] > before[2, 3] and p[2, 3] == p.max()
    torch.testing.assert_close(model.pair_loss, loss)
    assert model.epoch_count.sum() == 0 and model.epoch_loss_sum.sum() == 0  # the next epoch starts afresh
    model.epoch_loss_sum[0, 0], model.epoch_count[0, 0] = 0.5, 1.0  # only (identity, identity) drawn
    model.end_epoch()
    assert model.pair_loss[0, 0] == 0.5 and model.pair_loss[2, 3] == pytest.approx(1.3)  # others keep L

    graphcl = GraphContrast(EncoderConfig(), ContrastConfig(), 2, method="graphcl")
    graphcl.epoch_loss_sum.copy_(loss)
    graphcl.epoch_count.fill_(1)
    before = graphcl.pair_prob.clone()
    graphcl.end_epoch()
    assert torch.equal(graphcl.pair_prob, before)  # GraphCL's p is fixed


def test_config_selects_the_method_and_names_the_choices():
    from skeletonmae.errors import ConfigError

    cfg = load_config(None, ["pretrain.method=joao", "contrast.temperature=0.5", "contrast.frames_per_clip=2"])
    model = build_pretrain_model(cfg, 2)
    assert isinstance(model, GraphContrast) and model.method == "joao" and model.config.temperature == 0.5
    assert isinstance(build_pretrain_model(load_config(None, []), 2), SkeletonMAE)
    with pytest.raises(ConfigError, match="'pretrain.method' is 'simclr'; choose one of 'skeletonmae', 'graphcl'"):
        load_config(None, ["pretrain.method=simclr"])
    with pytest.raises(ConfigError, match="contrast.aug_ratio"):
        load_config(None, ["contrast.aug_ratio=1.0"])
    with pytest.raises(ConfigError, match="contrast.temperature"):
        load_config(None, ["contrast.temperature=0"])


# -- real data -----------------------------------------------------------------------------------------------

def _pretrain_args(data, out, method, epochs=1):
    return ["pretrain", "--config", "penn_action", "--out", str(out), f"data.path={data}", "data.clip_len=8",
            "data.num_workers=0", "encoder.dim=16", "encoder.layers=2", "pretrain.batch_size=16",
            f"pretrain.epochs={epochs}", f"pretrain.method={method}", "trainer.limit_train_batches=3",
            "trainer.progress=false", "trainer.seed=3"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["graphcl", "joao"])
def test_pretrain_on_real_data_then_finetune(tmp_path, method):
    data = shared_pickle("penn_action")
    pre = tmp_path / "pre"
    assert main(_pretrain_args(data, pre, method)) == 0
    ckpt = pre / "checkpoints" / "last.ckpt"
    model, cfg = load_pretrained(ckpt)
    assert isinstance(model, GraphContrast) and cfg.pretrain.method == method
    initial = build_pretrain_model(cfg, model.in_channels).pair_prob
    assert torch.equal(model.pair_prob, initial) == (method == "graphcl")  # JOAO's p moved after the epoch
    ft = tmp_path / "ft"
    assert main(["finetune", "--config", "penn_action", "--out", str(ft), "--pretrained", str(ckpt),
                 f"data.path={data}", "data.clip_len=8", "data.test_clips=1", "data.num_workers=0", "encoder.dim=16",
                 "encoder.layers=2", "classifier.strl_layers=1", "finetune.epochs=1", "finetune.batch_size=16",
                 "finetune.warmup_epochs=0", "trainer.limit_train_batches=2", "trainer.progress=false"]) == 0
    assert 0 <= json.loads((ft / "metrics.json").read_text())["top1"] <= 1


@pytest.mark.slow
def test_joao_resume_gives_the_same_p(tmp_path):
    data = shared_pickle("penn_action")
    assert main(_pretrain_args(data, tmp_path / "straight", "joao", epochs=2)) == 0
    assert main(_pretrain_args(data, tmp_path / "resumed", "joao", epochs=1)) == 0
    first = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["state_dict"]["model.pair_prob"]
    assert main([*_pretrain_args(data, tmp_path / "resumed", "joao", epochs=2), "--resume"]) == 0
    straight, resumed = (load_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt")["state_dict"]
                         for run in ("straight", "resumed"))
    assert not torch.equal(first, resumed["model.pair_prob"])  # the second epoch stepped p again
    torch.testing.assert_close(straight["model.pair_prob"], resumed["model.pair_prob"])
    torch.testing.assert_close(straight["model.pair_loss"], resumed["model.pair_loss"])
