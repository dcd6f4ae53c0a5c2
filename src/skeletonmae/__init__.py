"""SkeletonMAE: graph-based masked autoencoder for skeleton sequence pre-training.

An independent implementation of Yan et al., "SkeletonMAE: Graph-based Masked Autoencoder for Skeleton
Sequence Pre-training", ICCV 2023.
"""

__version__ = "0.1.0"
