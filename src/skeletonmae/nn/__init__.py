"""Reusable layers: dense GIN / GCN / GAT over skeleton joints and multi-scale temporal convolution."""

from .gat import DenseGATConv
from .gcn import DenseGCNConv
from .gin import DenseGINConv
from .graph_net import BACKBONES, GraphNet, make_graph_layer
from .norm_act import ACTS, NORMS, NodeBatchNorm, NormAct, make_act, make_norm
from .temporal import MultiScaleTemporalConv

__all__ = [
    "ACTS", "BACKBONES", "NORMS", "DenseGATConv", "DenseGCNConv", "DenseGINConv", "GraphNet",
    "MultiScaleTemporalConv", "NodeBatchNorm", "NormAct", "make_act", "make_graph_layer", "make_norm",
]
