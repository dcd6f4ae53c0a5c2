"""Dense graph layers (skeletonmae.nn): equivalence with torch_geometric's GINConv / GCNConv / GATConv on the
same weights, locality, and the GraphNet stack used as the SkeletonMAE encoder / decoder (paper §3.1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from skeletonmae.errors import ConfigError
from skeletonmae.nn import (
    BACKBONES,
    DenseGATConv,
    DenseGCNConv,
    DenseGINConv,
    GraphNet,
    NodeBatchNorm,
    make_act,
    make_graph_layer,
    make_norm,
)
from skeletonmae.skeleton import get_layout

pyg = pytest.importorskip("torch_geometric.nn")

B = 5  # graphs per batch (frames x persons)
COCO = torch.as_tensor(get_layout("coco17").adjacency())


def random_adjacency(v: int, p: float, seed: int, symmetric: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(v, v, generator=g) < p).float()
    if symmetric:
        a = torch.triu(a, 1)
        a = a + a.T
    return a.fill_diagonal_(0)


GRAPHS = {
    "coco17": COCO,
    "sym5": random_adjacency(5, 0.5, 0),
    "sym11": random_adjacency(11, 0.3, 1),
    "sym17": random_adjacency(17, 0.2, 2),
    "directed9": random_adjacency(9, 0.3, 3, symmetric=False),
    "empty4": torch.zeros(4, 4),
}


def edge_index(adjacency: torch.Tensor, batch: int) -> torch.Tensor:
    """Block-diagonal edge_index [2, E·batch] of ``batch`` copies; A[i, j] = 1 is the edge j -> i."""
    v = adjacency.shape[0]
    dst, src = adjacency.nonzero(as_tuple=True)
    offsets = (torch.arange(batch) * v).repeat_interleave(len(src))
    return torch.stack([src.repeat(batch) + offsets, dst.repeat(batch) + offsets])


def inputs(adjacency: torch.Tensor, dim: int, seed: int = 0):
    x = torch.randn(B, adjacency.shape[0], dim, generator=torch.Generator().manual_seed(seed))
    return x, x.reshape(-1, dim), edge_index(adjacency, B)


def close(dense: torch.Tensor, sparse: torch.Tensor) -> None:
    torch.testing.assert_close(dense.reshape(sparse.shape), sparse, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("tail", [("none", "none", True), ("batchnorm", "prelu", False)])
def test_gin_matches_pyg(graph, tail):
    norm, act, last = tail
    a = GRAPHS[graph]
    torch.manual_seed(0)
    layer = DenseGINConv(6, 8, a, hidden_dim=7, eps=0.3, norm=norm, act=act, last=last)
    ref = pyg.GINConv(nn.Sequential(layer.mlp, layer.tail), train_eps=True)  # the same MLP and tail
    with torch.no_grad():
        ref.eps.copy_(layer.eps)
    x, flat, ei = inputs(a, 6)
    close(layer(x), ref(flat, ei))
    # eps learns as PyG's does
    (eps,) = torch.autograd.grad(layer(x).square().sum(), layer.eps)
    (eps_ref,) = torch.autograd.grad(ref(flat, ei).square().sum(), ref.eps)
    torch.testing.assert_close(eps, eps_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("graph", GRAPHS)
def test_gcn_matches_pyg(graph):
    a = GRAPHS[graph]
    torch.manual_seed(0)
    layer = DenseGCNConv(6, 8, a, norm="none", act="none", last=True)
    ref = pyg.GCNConv(6, 8)
    with torch.no_grad():
        layer.bias.normal_()
        ref.lin.weight.copy_(layer.linear.weight)
        ref.bias.copy_(layer.bias)
    x, flat, ei = inputs(a, 6)
    close(layer(x), ref(flat, ei))


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("heads,concat", [(1, True), (4, True), (4, False)])
def test_gat_matches_pyg(graph, heads, concat):
    a = GRAPHS[graph]
    torch.manual_seed(0)
    layer = DenseGATConv(6, 8, a, heads=heads, concat=concat, negative_slope=0.2, norm="none", act="none",
                         last=True)
    ref = pyg.GATConv(6, layer.head_dim, heads=heads, concat=concat, negative_slope=0.2)
    with torch.no_grad():
        layer.bias.normal_()
        ref.lin.weight.copy_(layer.linear.weight)
        ref.att_src.copy_(layer.att_src.view_as(ref.att_src))
        ref.att_dst.copy_(layer.att_dst.view_as(ref.att_dst))
        ref.bias.copy_(layer.bias)
    x, flat, ei = inputs(a, 6)
    close(layer(x), ref(flat, ei))


def test_node_batchnorm_normalises_each_feature_over_all_nodes():
    x = torch.randn(B, 17, 4) * 3 + 2
    y = NodeBatchNorm(4)(x)
    flat = y.reshape(-1, 4)
    torch.testing.assert_close(flat.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(0, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_one_layer_only_mixes_neighbours(backbone):
    """Changing joint j changes the output of j and its neighbours only (A is respected, batches don't mix)."""
    torch.manual_seed(0)
    layer = make_graph_layer(backbone, 4, 8, COCO, norm="batchnorm", act="prelu").eval()
    x = torch.randn(B, 17, 4)
    j = 5  # left shoulder
    x2 = x.clone()
    x2[1, j] += 1.0
    changed = (layer(x2) - layer(x)).abs().amax(-1) > 1e-6  # [B, V]
    expected = torch.zeros(B, 17, dtype=torch.bool)
    expected[1] = COCO[:, j].bool()
    expected[1, j] = True
    assert torch.equal(changed, expected)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_graph_net_shapes_and_gradients(backbone):
    torch.manual_seed(0)
    net = GraphNet(backbone, 3, 16, 8, 3, COCO, dropout=0.1)
    assert len(net.layers) == 3
    x = torch.randn(2 * 4, 17, 3, requires_grad=True)  # persons x frames batched
    y = net(x)
    assert y.shape == (8, 17, 8)
    (y * torch.randn_like(y)).sum().backward()  # a random projection: sum(y**2) is flat after BatchNorm
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("backbone", BACKBONES)
def test_decoder_last_layer_is_plain(backbone):
    """``last`` drops Norm-Act on the final layer only; a decoder may have any output width (even for GAT)."""
    torch.manual_seed(0)
    dec = GraphNet(backbone, 16, 16, 3, 2, COCO, last=True)
    assert [len(layer.tail) for layer in dec.layers] == [2, 0]
    assert isinstance(dec.layers[0].tail[0], NodeBatchNorm) and isinstance(dec.layers[0].tail[1], nn.PReLU)
    enc = GraphNet(backbone, 16, 16, 16, 2, COCO)
    assert [len(layer.tail) for layer in enc.layers] == [2, 2]
    x = torch.randn(B, 17, 16)
    assert dec(x).shape == (B, 17, 3)


def test_gin_last_output_is_the_raw_mlp():
    torch.manual_seed(0)
    layer = DenseGINConv(4, 6, COCO, last=True)
    x = torch.randn(B, 17, 4)
    torch.testing.assert_close(layer(x), layer.mlp(x + COCO @ x))  # eps = 0 at init


def test_gin_eps_fixed_or_learnt():
    assert isinstance(DenseGINConv(4, 4, COCO, train_eps=True).eps, nn.Parameter)
    fixed = DenseGINConv(4, 4, COCO, eps=0.5, train_eps=False)
    assert "eps" not in dict(fixed.named_parameters()) and float(fixed.eps) == 0.5


@pytest.mark.parametrize("backbone", BACKBONES)
def test_state_dict_round_trip_without_adjacency(backbone):
    torch.manual_seed(0)
    a = GraphNet(backbone, 3, 8, 8, 2, COCO).eval()
    b = GraphNet(backbone, 3, 8, 8, 2, get_layout("coco17").adjacency()).eval()  # numpy adjacency works too
    state = a.state_dict()
    assert not any(k.endswith(("adjacency", "propagation", "blocked")) for k in state)
    b.load_state_dict(state)
    x = torch.randn(B, 17, 3)
    torch.testing.assert_close(a(x), b(x))


@pytest.mark.parametrize("backbone", BACKBONES)
def test_follows_module_dtype(backbone):
    net = GraphNet(backbone, 3, 8, 8, 2, COCO).double()
    assert net(torch.randn(B, 17, 3, dtype=torch.float64)).dtype == torch.float64


def test_unknown_backbone_lists_known_ones():
    with pytest.raises(ConfigError, match="gin, gcn, gat"):
        GraphNet("sage", 3, 8, 8, 2, COCO)
    with pytest.raises(ConfigError, match="gin, gcn, gat"):
        make_graph_layer("sage", 3, 8, COCO)


def test_config_errors():
    with pytest.raises(ConfigError, match="norm"):
        make_norm("groupnorm", 8)
    with pytest.raises(ConfigError, match="prelu"):
        make_act("swish", 8)
    with pytest.raises(ConfigError, match="divisible"):
        DenseGATConv(3, 10, COCO, heads=4)
    with pytest.raises(ConfigError, match="num_layers"):
        GraphNet("gin", 3, 8, 8, 0, COCO)
    with pytest.raises(ConfigError, match="square"):
        DenseGCNConv(3, 8, torch.zeros(3, 4))


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm", "none"])
@pytest.mark.parametrize("act", ["prelu", "relu", "elu", "gelu", "none"])
def test_every_norm_and_act(norm, act):
    y = GraphNet("gin", 3, 8, 8, 2, COCO, norm=norm, act=act)(torch.randn(B, 17, 3))
    assert y.shape == (B, 17, 8) and torch.isfinite(y).all()


# -- per-graph adjacency [B, V, V] (augmented views of contrastive pre-training) ----------------------------------

def edit_edges(adjacency: torch.Tensor, remove=(), add=()) -> torch.Tensor:
    """A copy of a symmetric adjacency with the undirected edges ``remove`` cut and ``add`` added."""
    a = adjacency.clone()
    for value, edges in ((0.0, remove), (1.0, add)):
        for i, j in edges:
            a[i, j] = a[j, i] = value
    return a


@pytest.mark.parametrize("backbone", BACKBONES)
def test_batched_adjacency_equal_to_the_fixed_one_changes_nothing(backbone):
    torch.manual_seed(0)
    net = GraphNet(backbone, 4, 8, 8, 2, COCO)
    x = torch.randn(B, 17, 4)
    for mode in (net.train, net.eval):  # BatchNorm with batch statistics and with running ones
        mode()
        torch.testing.assert_close(net(x, COCO.expand(B, 17, 17)), net(x))
        torch.testing.assert_close(net(x, COCO.bool().expand(B, 17, 17)), net(x))  # 0/1 as bool works too


@pytest.mark.parametrize("backbone", BACKBONES)
def test_each_graph_uses_its_own_adjacency(backbone):
    """Graph b of a batched call equals a network built on graph b's adjacency, with the same weights."""
    torch.manual_seed(0)
    adjacency = torch.stack([COCO, edit_edges(COCO, remove=[(5, 7)]),
                             edit_edges(COCO, remove=[(0, 5), (0, 6), (11, 13)]),
                             edit_edges(COCO, remove=[(5, 6)], add=[(9, 10), (15, 16)]), torch.zeros(17, 17)])
    net = GraphNet(backbone, 4, 8, 8, 2, COCO).eval()
    x = torch.randn(len(adjacency), 17, 4)
    out = net(x, adjacency)
    for b in range(len(adjacency)):
        own = GraphNet(backbone, 4, 8, 8, 2, adjacency[b]).eval()
        own.load_state_dict(net.state_dict())
        torch.testing.assert_close(out[b:b + 1], own(x[b:b + 1]), msg=f"graph {b}")


@pytest.mark.parametrize("backbone", BACKBONES)
def test_removing_an_edge_changes_only_the_graph_and_joints_it_touches(backbone):
    """One layer: cutting the edge i-j in graph 1 changes graph 1's joints i and j only (GIN, GAT), and for
    GCN also their neighbours, whose normalisation 1 / sqrt(d_i d_k) involves the changed degrees."""
    torch.manual_seed(0)
    layer = make_graph_layer(backbone, 4, 8, COCO).eval()
    x = torch.randn(B, 17, 4)
    i, j = 7, 9  # left elbow - left wrist
    adjacency = COCO.repeat(B, 1, 1)
    adjacency[1] = edit_edges(COCO, remove=[(i, j)])
    changed = (layer(x, adjacency) - layer(x)).abs().amax(-1) > 1e-6  # [B, V]
    expected = torch.zeros(B, 17, dtype=torch.bool)
    expected[1, [i, j]] = True
    if backbone == "gcn":
        expected[1] |= (COCO[i] + COCO[j]).bool()
    assert torch.equal(changed, expected)
