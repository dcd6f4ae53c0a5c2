"""Figures: skeleton drawing, reconstruction (Fig. 6), PCA (Fig. 4a/b), confusion (Fig. 4c), curves, CLI glue."""

import argparse
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import shared_pickle  # noqa: E402

from skeletonmae import viz  # noqa: E402
from skeletonmae.cli.visualize import add_visualize_parser  # noqa: E402
from skeletonmae.config import EncoderConfig, MAEConfig  # noqa: E402
from skeletonmae.errors import SkeletonMAEError  # noqa: E402
from skeletonmae.models.skeletonmae import SkeletonMAE, centred  # noqa: E402
from skeletonmae.skeleton import get_layout  # noqa: E402


def assert_png(path, min_w=200, min_h=150):
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert 5_000 < len(data) < 5_000_000
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] >= min_h and img.shape[1] >= min_w
    assert img.std() > 0.01  # not blank


@pytest.fixture(scope="module")
def penn():
    return shared_pickle("penn_action")


@pytest.fixture(scope="module")
def pretrained(penn, tmp_path_factory):
    from skeletonmae.cli import main

    out = tmp_path_factory.mktemp("viz_pretrain")
    code = main(["pretrain", "--config", "penn_action", "--out", str(out), f"data.path={penn}", "data.clip_len=8",
                 "data.num_workers=0", "encoder.dim=16", "encoder.layers=2", "pretrain.batch_size=16",
                 "pretrain.epochs=1", "trainer.limit_train_batches=2", "trainer.progress=false",
                 "mae.target=coords"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def clip(pretrained):
    """The pre-trained model, its config and the first test clip [P, T, V, C] in the model's layout."""
    from skeletonmae.data.dataset import SkeletonData
    from skeletonmae.models.build import load_pretrained

    model, cfg = load_pretrained(pretrained / "checkpoints" / "last.ckpt")
    dm = SkeletonData(cfg, 8)
    x = torch.from_numpy(dm.pipeline(train=False)(dm.test_samples()[0], np.random.default_rng(0))["keypoint"][0])
    return model, cfg, x


def full_skeleton(layout="coco17"):
    v = get_layout(layout).num_joints
    rng = np.random.default_rng(0)
    return rng.uniform(-0.5, 0.5, (v, 2)) + 0.01


# -- draw_skeleton --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["coco17", "penn13", "ntu25"])
def test_draw_skeleton_draws_every_bone(name):
    layout = get_layout(name)
    fig, ax = plt.subplots()
    lines = viz.draw_skeleton(ax, full_skeleton(name), layout, "tab:blue", label="person")
    assert len(lines) == len(ax.lines) == len(layout.bones)
    assert ax.yaxis_inverted()
    viz.draw_skeleton(ax, full_skeleton(name), layout, "tab:orange")  # a second call keeps the y axis inverted
    assert ax.yaxis_inverted()
    assert [h.get_label() for h in ax.get_legend_handles_labels()[0]] == ["person"]
    plt.close(fig)


def test_draw_skeleton_skips_absent_joints_and_marks_masked_ones():
    layout = get_layout("coco17")
    joints = full_skeleton()
    joints[0] = 0  # the nose is absent: its bones go
    mask = np.zeros(layout.num_joints, bool)
    mask[[7, 9]] = True  # left elbow and wrist masked
    fig, ax = plt.subplots()
    lines = viz.draw_skeleton(ax, joints, layout, "tab:blue", mask=mask)
    nose_bones = sum(0 in bone for bone in layout.bones)
    assert len(lines) == len(layout.bones) - nose_bones
    dashed = [ln for ln in lines if ln.get_linestyle() == "--"]
    assert len(dashed) == sum(bool(set(b) & {7, 9}) for b in layout.bones)
    visible, hidden = ax.collections
    assert len(visible.get_offsets()) == layout.num_joints - 3 and len(hidden.get_offsets()) == 2
    assert hidden.get_facecolors().size == 0 or hidden.get_facecolors()[:, 3].max() == 0  # hollow
    plt.close(fig)


def test_draw_skeleton_rejects_wrong_shape():
    fig, ax = plt.subplots()
    with pytest.raises(SkeletonMAEError, match="V=17"):
        viz.draw_skeleton(ax, np.ones((13, 2)), "coco17", "k")
    plt.close(fig)


# -- reconstruction -------------------------------------------------------------------------------------------
def test_reconstruction_png(clip, tmp_path):
    model, cfg, x = clip
    path = viz.plot_reconstruction(model, x, cfg.encoder.layout, tmp_path / "recon.png", frames=4)
    assert path == tmp_path / "recon.png"
    assert_png(path, min_w=600, min_h=600)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def test_reconstruction_keeps_visible_joints_and_true_lengths(clip):
    model, _, x = clip
    mask = torch.zeros(x.shape[:3], dtype=torch.bool)
    mask[..., [7, 9, 14, 16]] = True
    recon, scored = viz.reconstruct_joints(model, x, mask)
    present = x.ne(0).any(-1).numpy()
    assert (scored == (mask.numpy() & present)).all()
    np.testing.assert_allclose(recon[~scored], x.numpy()[~scored])
    # a reconstructed joint lies as far from the frame's centroid as the true joint does
    c = x - centred(x)  # the centroid, broadcast over joints (where present)
    true_len = centred(x).norm(dim=-1).numpy()[scored]
    rec_len = np.linalg.norm(recon - c.numpy(), axis=-1)[scored]
    np.testing.assert_allclose(rec_len, true_len, rtol=1e-4, atol=1e-5)


def test_reconstruction_window_target(clip, tmp_path):
    _, cfg, x = clip
    encoder = EncoderConfig(layout=cfg.encoder.layout, dim=8, layers=1)
    model = SkeletonMAE(encoder, MAEConfig(target="window"), x.shape[-1])
    path = viz.plot_reconstruction(model, x, None, tmp_path / "window.png", frames=3, seed=1)
    assert_png(path)


def test_reconstruction_refuses_embedding_target(tmp_path):
    model = SkeletonMAE(EncoderConfig(dim=8, layers=1), MAEConfig(target="embedding"), 2)
    x = torch.from_numpy(np.tile(full_skeleton(), (1, 4, 1, 1))).float()
    with pytest.raises(SkeletonMAEError, match="not defined for target 'embedding'"):
        viz.plot_reconstruction(model, x, "coco17", tmp_path / "no.png")
    assert not (tmp_path / "no.png").exists()


def test_describe_mask_names_regions():
    layout = get_layout("coco17")
    mask = np.zeros((1, 2, 17), bool)
    mask[..., list(layout.regions[2]) + list(layout.regions[5])] = True
    assert viz._describe_mask(mask, layout) == "masked: left arm, right leg"
    mask[..., 0] = True
    assert viz._describe_mask(mask, layout).endswith("5 of 17 joints")


# -- PCA, confusion, curves -------------------------------------------------------------------------------------
def test_embedding_pca_png(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 20)
    feats = rng.normal(size=(len(labels), 32)) + labels[:, None] * 0.5
    names = [f"action_{i}" for i in range(8)]
    path = viz.plot_embedding_pca(feats, labels, names, tmp_path / "pca.png", title="PCA test")
    assert_png(path)
    path = viz.plot_embedding_pca(feats, labels, None, tmp_path / "pca2.png", classes=[6, 7])
    assert_png(path)
    with pytest.raises(SkeletonMAEError, match="fewer than 2"):
        viz.plot_embedding_pca(feats, labels, names, tmp_path / "pca3.png", classes=[42])


def test_confusion_normalisation_and_png(tmp_path):
    cm = [[5, 1, 0], [2, 2, 0], [0, 0, 0]]
    norm = viz.normalize_confusion(cm)
    np.testing.assert_allclose(norm.sum(1), [1, 1, 0])
    np.testing.assert_allclose(norm[0], [5 / 6, 1 / 6, 0])
    path = viz.plot_confusion(cm, ["a", "b", "c"], tmp_path / "cm.png")
    assert_png(path)
    big = np.random.default_rng(0).integers(0, 9, (15, 15))
    assert_png(viz.plot_confusion(big, None, tmp_path / "cm15.png", normalize=False))
    with pytest.raises(SkeletonMAEError, match="square"):
        viz.plot_confusion([[1, 2, 3]], None, tmp_path / "bad.png")


def write_metrics_csv(run):
    (run / "logs").mkdir(parents=True)
    rows = ["epoch,step,train/loss_epoch,train/loss_step,train/top1_epoch,train/top1_step"]
    for step in range(30):
        rows.append(f"{step // 10},{step},,{2 - step / 20},,{step / 40}")
        if step % 10 == 9:
            rows.append(f"{step // 10},{step},{2 - step / 25},,{step / 35},")
    (run / "logs" / "metrics.csv").write_text("\n".join(rows) + "\n")


def test_curves_png(tmp_path, pretrained):
    write_metrics_csv(tmp_path / "run")
    assert_png(viz.plot_curves(tmp_path / "run", tmp_path / "curves.png"))
    assert_png(viz.plot_curves(pretrained, tmp_path / "curves_pre.png"))  # a real log with one epoch row
    with pytest.raises(SkeletonMAEError, match="no training log"):
        viz.plot_curves(tmp_path / "nowhere", tmp_path / "x.png")


# -- CLI glue ---------------------------------------------------------------------------------------------------
def run_cli(argv):
    parser = argparse.ArgumentParser(prog="skeletonmae")
    add_visualize_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def finetune_checkpoint(pretrained, path, class_names=None):
    """A (untrained) fine-tuning checkpoint of the same config, written as Lightning would."""
    from skeletonmae.models.build import build_classifier, load_checkpoint

    hp = load_checkpoint(pretrained / "checkpoints" / "last.ckpt")["hyper_parameters"]
    from skeletonmae.config import Config

    model = build_classifier(Config.from_dict(hp["config"]), hp["in_channels"], 15)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"hyper_parameters": {**hp, "num_classes": 15, "class_names": class_names}, "state_dict": state},
               path)
    return path


def test_cli_help_lists_actions(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(["visualize", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("reconstruction", "pca", "confusion", "curves"):
        assert name in out


def test_cli_reconstruction(pretrained, penn, tmp_path, capsys):
    out = tmp_path / "fig6.png"
    ckpt = str(pretrained / "checkpoints" / "last.ckpt")
    assert run_cli(["visualize", "reconstruction", "--checkpoint", ckpt, "--data", str(penn), "--index", "3",
                    "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert_png(out)
    with pytest.raises(SkeletonMAEError, match="--index"):
        run_cli(["visualize", "reconstruction", "--checkpoint", ckpt, "--index", "100000", "--out", str(out)])


def test_cli_pca_pretrain_and_finetune(pretrained, penn, tmp_path):
    ckpt = str(pretrained / "checkpoints" / "last.ckpt")
    out = tmp_path / "pca_pre.png"
    assert run_cli(["visualize", "pca", "--checkpoint", ckpt, "--data", str(penn), "--classes", "0", "1",
                    "--out", str(out)]) == 0
    assert_png(out)
    ft = finetune_checkpoint(pretrained, tmp_path / "ft.ckpt")
    out = tmp_path / "pca_ft.png"
    assert run_cli(["visualize", "pca", "--checkpoint", str(ft), "--classes", "3", "4", "--out", str(out)]) == 0
    assert_png(out)


def test_cli_confusion_and_curves(pretrained, tmp_path, capsys):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"top1": 0.5, "split": "test", "confusion": [[3, 1], [1, 3]]}))
    labels = tmp_path / "labels.txt"
    labels.write_text("jump\nrun\n")
    out = tmp_path / "cm.png"
    assert run_cli(["visualize", "confusion", "--metrics", str(metrics), "--labels", str(labels),
                    "--out", str(out)]) == 0
    assert_png(out)
    assert run_cli(["visualize", "confusion", "--metrics", str(metrics), "--counts", "--out", str(out)]) == 0
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SkeletonMAEError, match="no 'confusion'"):
        run_cli(["visualize", "confusion", "--metrics", str(tmp_path / "bad.json"), "--out", str(out)])
    out = tmp_path / "curves.png"
    assert run_cli(["visualize", "curves", "--run", str(pretrained), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert_png(out)


def test_cli_confusion_takes_the_class_names_from_the_checkpoint(tmp_path, capsys):
    """A real fine-tuning run on the demo data; its label map is gone by the time the figure is drawn, and the
    class names still come from the checkpoint (of the run, or the one a test run names)."""
    from skeletonmae.cli import main

    data = tmp_path / "data" / "demo.pkl"
    data.parent.mkdir()
    assert main(["data", "demo", str(data), "--per-class", "4"]) == 0
    first_class = (data.parent / "label_map.txt").read_text().splitlines()[0]
    run = tmp_path / "run"
    assert main(["finetune", "--config", "demo", "--out", str(run), f"data.path={data}", "data.clip_len=8",
                 "data.test_clips=1", "encoder.dim=8", "encoder.layers=1", "classifier.strl_layers=1",
                 "finetune.epochs=1", "finetune.batch_size=8", "finetune.warmup_epochs=0", "finetune.milestones=[]",
                 "finetune.pretrained=none", "trainer.progress=false"]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    assert main(["test", "--checkpoint", str(ckpt), "--out", str(tmp_path / "test"), "trainer.progress=false"]) == 0
    (data.parent / "label_map.txt").unlink()
    capsys.readouterr()
    for metrics, source in ((run / "metrics.json", ckpt), (tmp_path / "test" / "metrics.json", ckpt)):
        assert run_cli(["visualize", "confusion", "--metrics", str(metrics), "--out", str(tmp_path / "cm.png")]) == 0
        assert f"class names: {source}" in capsys.readouterr().out
    from skeletonmae.cli.visualize import _confusion_class_names

    names, _ = _confusion_class_names(run / "metrics.json", {}, None, None)
    assert names[0] == first_class and len(names) == len(json.loads((run / "metrics.json").read_text())["confusion"])
    with pytest.raises(SkeletonMAEError, match="checkpoint .* not found"):
        run_cli(["visualize", "confusion", "--metrics", str(run / "metrics.json"), "--checkpoint",
                 str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "cm2.png")])
