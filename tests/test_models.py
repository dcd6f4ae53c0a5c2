import math

import numpy as np
import pytest
import torch

from skeletonmae.config import EncoderConfig, MAEConfig, load_config
from skeletonmae.models.build import build_classifier
from skeletonmae.models.masking import JointMasker
from skeletonmae.models.rce import rce_loss
from skeletonmae.models.skeletonmae import SkeletonMAE, centred, window_target
from skeletonmae.nn.pooling import pool_per_joint
from skeletonmae.skeleton import get_layout


def test_region_mask_fixed_regions_cover_exactly_those_joints():
    m = JointMasker("coco17", regions=[3, 5])(num_clips=4, num_frames=3)
    assert m.shape == (4, 3, 17)
    expected = torch.zeros(17, dtype=torch.bool)
    expected[[8, 10, 14, 16]] = True  # right arm {8, 10}, right leg {14, 16}
    assert (m == expected).all()


def test_random_regions_are_whole_regions_never_all_six():
    torch.manual_seed(0)
    layout = get_layout("coco17")
    masker = JointMasker(layout, num_regions=(1, 5))
    m = masker(num_clips=500, num_frames=2)
    assert (m[:, 0] == m[:, 1]).all()  # one mask per clip by default
    region = torch.as_tensor(layout.region_of_joint())
    counts = torch.stack([m[:, 0, region == r].float().mean(1) for r in range(6)], 1)  # [n, 6]
    assert ((counts == 0) | (counts == 1)).all()  # regions are masked whole
    k = counts.sum(1)
    assert k.min() == 1 and k.max() == 5
    assert (counts.mean(0) > 0.3).all()  # every region gets drawn


def test_per_frame_masks_differ_between_frames():
    torch.manual_seed(0)
    m = JointMasker("coco17", per_frame=True)(num_clips=2, num_frames=50)
    assert not (m[:, :1] == m).all()


def test_random_joint_mask_ratio():
    torch.manual_seed(0)
    m = JointMasker("coco17", mode="joints", ratio=0.5)(num_clips=10, num_frames=4)
    assert (m.sum(-1) == 8).all()  # round(0.5 * 17) = 8 (Python rounds half to even)


def test_rce_matches_hand_computed_value():
    pred = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    # cos = 1 and 1/sqrt(2) on the two masked joints; (1 - cos)^2 = 0 and (1 - 1/sqrt(2))^2
    e = (1 - 1 / math.sqrt(2)) ** 2
    assert rce_loss(pred, target, mask, beta=2).item() == pytest.approx(e / 2)
    # Eq. 2 as printed: sum_i (1/|V| - cos_i/|V|)^beta = |V|^-2 * sum (1 - cos)^2
    assert rce_loss(pred, target, mask, beta=2, form="eq2").item() == pytest.approx(e / 4)
    assert rce_loss(pred, target, mask, beta=1).item() == pytest.approx((1 - 1 / math.sqrt(2)) / 2)
    assert rce_loss(pred, target, torch.zeros_like(mask)).item() == 0


def test_centred_and_window_targets():
    x = torch.zeros(1, 3, 2, 2)
    x[0, :, 0] = torch.tensor([[1.0, 1], [2, 1], [3, 1]])
    x[0, :, 1] = torch.tensor([[1.0, 3], [2, 3], [3, 3]])
    c = centred(x)
    assert torch.allclose(c[0, :, 0], torch.tensor([0.0, -1])) and torch.allclose(c[0, :, 1], torch.tensor([0.0, 1]))
    w = window_target(x, 1)  # [1, T, V, (2w + 2) C]
    assert w.shape == (1, 3, 2, 8)
    # joint 0 at t = 1: positions at t = 0, 1, 2 relative to the centroid at t = 1 (2, 2), then velocity (1, 0)
    assert w[0, 1, 0].tolist() == [-1, -1, 0, -1, 1, -1, 1, 0]
    # at the clip's end the window repeats the last frame; an absent joint (all zero) gives zeros
    assert w[0, 2, 0].tolist() == [-1, -1, 0, -1, 0, -1, 0.5, 0]
    x[0, 1, 1] = 0
    assert window_target(x, 1)[0, 1, 1].abs().sum() == 0


@pytest.mark.parametrize("target", ["window", "coords", "embedding"])
@pytest.mark.parametrize("backbone", ["gin", "gcn", "gat"])
def test_skeletonmae_trains_on_masked_joints_only(target, backbone):
    torch.manual_seed(0)
    model = SkeletonMAE(EncoderConfig(backbone=backbone), MAEConfig(target=target), 2)
    x = torch.randn(3, 2, 8, 17, 2)
    x[:, 1] = 0  # second person absent
    out = model(x)
    assert out["pred"].shape[0] == 3 * 8  # absent person's frames are dropped
    assert out["mask"].any() and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0
    # the loss is scored on exactly the masked joints of the frames that hold a person
    mask = model.masker(6, 8)
    out = model(x, mask=mask)
    assert torch.equal(out["mask"], mask.reshape(-1, 17)[out["frames"]])


def test_masked_input_does_not_leak():
    """The encoder never sees the masked joints' coordinates."""
    torch.manual_seed(0)
    model = SkeletonMAE(EncoderConfig(), MAEConfig(target="coords"), 2).eval()
    x = torch.randn(2, 1, 4, 17, 2)
    mask = JointMasker("coco17", regions=[2])(2, 4)
    y = x.clone()
    y[..., [7, 9], :] += 5.0  # move the masked left arm only
    pa, pb = model(x, mask=mask)["pred"], model(y, mask=mask)["pred"]
    assert torch.allclose(pa, pb, atol=1e-6)


def test_ssl_loads_pretrained_encoder_weights():
    cfg = load_config(None, ["data.clip_len=16"])
    mae = SkeletonMAE(EncoderConfig(), MAEConfig(), 2)
    for p in mae.parameters():
        torch.nn.init.normal_(p)
    clf = build_classifier(cfg, 2, 5)
    clf.load_pretrained(mae.encoder_state())
    ref = mae.encoder.graph.state_dict()
    assert len(clf.layer_graphs()) == 3
    for graph in clf.layer_graphs():
        for k, v in graph.state_dict().items():
            assert torch.equal(v, ref[k]), k
    assert torch.equal(clf.encoder.embed.weight, mae.encoder.embed.weight)
    assert torch.equal(clf.encoder.joint_embed, mae.encoder.joint_embed)
    first = build_classifier(cfg, 2, 5)
    before = first.layer_graphs()[1].state_dict()
    first.load_pretrained(mae.encoder_state(), layers="first")
    assert all(torch.equal(v, ref[k]) for k, v in first.layer_graphs()[0].state_dict().items())
    assert all(torch.equal(v, before[k]) for k, v in first.layer_graphs()[1].state_dict().items())


def test_ssl_absent_person_does_not_change_prediction():
    torch.manual_seed(0)
    cfg = load_config(None, ["data.clip_len=16"])
    clf = build_classifier(cfg, 2, 5).eval()
    one = torch.randn(2, 1, 16, 17, 2)
    two = torch.cat([one, torch.zeros_like(one)], dim=1)
    assert torch.allclose(clf(one), clf(two), atol=1e-5)


def test_ssl_persons_interact_with_mean_fusion():
    torch.manual_seed(0)
    cfg = load_config(None, ["data.clip_len=16"])
    clf = build_classifier(cfg, 2, 5).eval()
    x = torch.randn(1, 2, 16, 17, 2)
    y = x.clone()
    y[:, 1] += 1.0
    f, g = clf.layers[0].sm, clf.encoder.graph
    present = torch.ones(1, 2, 16, dtype=torch.bool)
    h = torch.randn(1, 2, 16, 17, 64)
    h2 = h.clone()
    h2[:, 1] += 1
    # person 0's output depends on person 1 under 'mean' fusion
    assert not torch.allclose(f(h, present, g)[:, 0], f(h2, present, g)[:, 0])
    f.person_fusion = "none"
    assert torch.allclose(f(h, present, g)[:, 0], f(h2, present, g)[:, 0])
    assert clf(x).shape == (1, 5)


def test_strl_spatial_is_eq_3_and_4_as_written():
    """The folded product of STRLayer.spatial equals SM(H) W + H W_res with SM(H) = Repeat(SP(G_E(A, H)); V) + H."""
    torch.manual_seed(0)
    cfg = load_config(None, ["data.clip_len=16"])
    clf = build_classifier(cfg, 2, 5).double()
    layer, graph = clf.layers[0], clf.encoder.graph
    h = torch.randn(2, 2, 16, 17, 64, dtype=torch.float64, requires_grad=True)
    present = torch.ones(2, 2, 16, dtype=torch.bool)
    present[1, 1] = False
    sm = layer.sm(h, present, graph).unsqueeze(3) + h  # Eq. 3
    reference = layer.w(sm) + layer.residual(h)  # Eq. 4 before the ReLU
    folded = layer.spatial(h, present, graph)
    torch.testing.assert_close(folded, reference)
    g_ref = torch.autograd.grad(reference.square().sum(), [h, layer.w.weight, layer.residual.weight])
    g_new = torch.autograd.grad(folded.square().sum(), [h, layer.w.weight, layer.residual.weight])
    for a, b in zip(g_new, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_ssl_output_shape_with_strides():
    cfg = load_config(None, ["data.clip_len=33", "classifier.strl_layers=4"])
    clf = build_classifier(cfg, 3, 7)
    assert clf(torch.randn(2, 2, 33, 17, 3)).shape == (2, 7)
    assert np.isfinite(clf(torch.zeros(1, 2, 33, 17, 3)).detach().numpy()).all()


def test_pool_per_joint_by_hand():
    h = torch.zeros(1, 2, 3, 2, 1)
    h[0, 0, :, 0, 0] = torch.tensor([1.0, 3.0, 100.0])  # frame 2 of person 0 is absent
    h[0, 1, :, 1, 0] = torch.tensor([2.0, 2.0, 2.0])
    present = torch.tensor([[[True, True, False], [False, False, False]]])  # person 1 absent throughout
    out = pool_per_joint(h, present)
    # joint 0: mean 2, std 1 over the two present frames; joint 1: 0, 0; person 1 does not count
    assert torch.allclose(out, torch.tensor([[2.0, 1.0, 0.0, 0.0]]), atol=1e-5)
    h.requires_grad_(True)
    pool_per_joint(h, present).sum().backward()
    assert torch.isfinite(h.grad).all()  # also where a joint never moves


def test_ssl_joint_stats_pool_shape_and_absent_person():
    torch.manual_seed(0)
    cfg = load_config(None, ["data.clip_len=16", "classifier.pool=joint_stats"])
    clf = build_classifier(cfg, 2, 5).eval()
    x = torch.randn(3, 2, 16, 17, 2)
    x[0, 1] = 0  # clip 0 has one person
    assert clf.forward_features(x).shape == (3, 2 * 17 * 64)
    assert clf(x).shape == (3, 5)
    one = x[:1, :1]
    assert torch.allclose(clf(one), clf(x[:1]), atol=1e-5)  # the absent second person changes nothing


def test_ssl_without_strl_layers_pools_the_embedding():
    cfg = load_config(None, ["data.clip_len=16", "classifier.strl_layers=0", "classifier.pool=joint_stats"])
    clf = build_classifier(cfg, 2, 5)
    x = torch.randn(3, 1, 16, 17, 2)
    h0 = clf.encoder.embed(x) + clf.encoder.joint_embed + clf.time_embed[:, None]
    assert torch.allclose(clf.forward_features(x), pool_per_joint(h0, torch.ones(3, 1, 16, dtype=torch.bool)))


def test_ssl_linear_head():
    cfg = load_config(None, ["data.clip_len=16", "classifier.pool=joint_stats", "classifier.head_hidden=0"])
    clf = build_classifier(cfg, 2, 5)
    assert [type(m).__name__ for m in clf.head] == ["BatchNorm1d", "Linear"]
    assert clf.head[-1].in_features == 2 * 17 * 64
    assert clf(torch.randn(3, 1, 16, 17, 2)).shape == (3, 5)


def test_ssl_rezero_layers_start_as_the_identity():
    torch.manual_seed(0)
    cfg = load_config(None, ["data.clip_len=16", "classifier.strl_layers=2", "classifier.rezero=true",
                             "classifier.pool=joint_stats"])
    clf = build_classifier(cfg, 2, 5)
    x = torch.randn(3, 2, 16, 17, 2)
    x[0, 1] = 0  # clip 0 has one person
    present = x.ne(0).flatten(-2).any(-1)
    h0 = (clf.encoder.embed(x) + clf.encoder.joint_embed + clf.time_embed[:, None]) * present[..., None, None]
    # strides (1, 2): with α = 0 both layers pass H^(0) through, every second frame after the second
    expected = pool_per_joint(h0[:, :, ::2], present[:, :, ::2])
    assert torch.allclose(clf.forward_features(x), expected, atol=1e-6)
    clf(x).sum().backward()
    assert all(layer.gate.grad.abs() > 0 for layer in clf.layers)  # α learns from the first step
    with torch.no_grad():
        clf.layers[0].gate.fill_(1.0)
    assert not torch.allclose(clf.forward_features(x), expected, atol=1e-3)


def test_ssl_drop_path_skips_whole_clips_in_training_only():
    torch.manual_seed(0)
    cfg = load_config(None, ["data.clip_len=8", "classifier.strl_layers=1", "classifier.rezero=true",
                             "classifier.drop_path=0.5", "classifier.temporal_strides=[1]"])
    clf = build_classifier(cfg, 2, 5)
    layer, graph = clf.layers[0], clf.encoder.graph.eval()
    with torch.no_grad():
        layer.gate.fill_(1.0)
    h = torch.randn(16, 1, 8, 17, 64)
    present = torch.ones(16, 1, 8, dtype=torch.bool)
    layer.eval()
    branch = layer(h, present, graph)[0] - h  # α · STRL(H) with BatchNorm in eval mode
    layer.train()
    for m in layer.modules():  # BatchNorm keeps its running statistics, so only the drop differs
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.eval()
    out = layer(h, present, graph)[0] - h
    skipped = out.flatten(1).abs().amax(1) == 0
    kept = torch.isclose(out, 2 * branch, atol=1e-5).flatten(1).all(1)  # kept branches are scaled by 1 / (1 - p)
    assert (skipped | kept).all() and skipped.any() and kept.any()


def test_remasking_blinds_the_decoder_for_joints_with_masked_neighbours():
    """Why re-masking is off by default: with both arms masked, every wrist (whose only neighbour, the elbow,
    is masked too) gets the decoder's output for an all-zero neighbourhood, whatever the pose."""
    torch.manual_seed(0)
    x = torch.randn(2, 1, 4, 17, 2)
    mask = JointMasker("coco17", regions=[2, 3])(2, 4)
    blind = SkeletonMAE(EncoderConfig(), MAEConfig(target="coords", remask=True), 2).eval()
    pred = blind(x, mask=mask)["pred"]
    assert torch.allclose(pred[:, 9], pred[:, 10]) and torch.allclose(pred[0, 9], pred[1, 9])
    seeing = SkeletonMAE(EncoderConfig(), MAEConfig(target="coords"), 2).eval()
    pred = seeing(x, mask=mask)["pred"]
    assert not torch.allclose(pred[:, 9], pred[:, 10]) and not torch.allclose(pred[0, 9], pred[1, 9])


@pytest.mark.parametrize("layers", ["first", "all"])
def test_encoder_lr_scale_puts_the_loaded_parameters_in_their_own_group(layers):
    from skeletonmae.tasks.finetune import param_groups

    cfg = load_config(None, ["data.clip_len=16", f"finetune.pretrained_layers={layers}",
                             "finetune.encoder_lr_scale=0.1"])
    clf = build_classifier(cfg, 2, 5)
    rest, loaded = param_groups(clf, cfg.finetune, 0.2)
    assert rest["lr"] == 0.2 and loaded["lr"] == pytest.approx(0.02)
    # exactly what load_pretrained fills: the joint encoder, and the deeper G_E copies with 'all'
    filled = {id(p) for p in clf.encoder.parameters()} | ({id(p) for p in clf.graphs.parameters()} if layers == "all"
                                                           else set())
    assert {id(p) for p in loaded["params"]} == filled
    assert len(rest["params"]) + len(loaded["params"]) == len(list(clf.parameters()))
    paper = load_config(None, ["data.clip_len=16"])
    assert [len(g["params"]) for g in param_groups(clf, paper.finetune, 0.2)] == [len(list(clf.parameters()))]
