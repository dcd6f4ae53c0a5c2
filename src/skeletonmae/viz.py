"""Figures as PNG files: skeleton reconstructions (paper Fig. 6), 2D PCA of representations (Fig. 4a/b),
confusion matrices (Fig. 4c), training curves and the strip chart of a video's timeline.

Every figure is drawn with matplotlib's Agg backend (no screen needed), written atomically (temporary file,
then rename) and closed. The ``visualize`` command of the CLI (:mod:`skeletonmae.cli.visualize`) draws them.

Reconstruction in joint space: SkeletonMAE predicts reconstruction *targets*, trained with a cosine loss,
so for ``target='coords'`` (and the centre frame of ``target='window'``) the prediction is the direction of
each joint from its frame's centroid. To draw it, each predicted vector is given the length of the true one
and the centroid is added back; only the direction is the model's. ``target='embedding'`` predicts
features, which have no place in joint space.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .errors import SkeletonMAEError  # noqa: E402
from .fileio import atomic_open  # noqa: E402
from .skeleton import REGION_NAMES, Layout, get_layout  # noqa: E402

DPI = 120
MASK_COLOR = "tab:red"
RECON_COLOR = "tab:green"
INPUT_COLOR = "tab:blue"
ROW_NAMES = ("input", "masked input", "reconstruction")


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    path = Path(path)
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


# -- skeletons -------------------------------------------------------------------------------------------------
def draw_skeleton(ax: plt.Axes, joints, layout: str | Layout, color, label: str | None = None, mask=None,
                  *, mask_color=MASK_COLOR, mask_filled: bool = False, alpha: float = 1.0,
                  y_down: bool = True) -> list[Line2D]:
    """Draw one frame's skeleton: bones as lines, joints as dots.

    Args:
        ax: the axes to draw on.
        joints: [V, >=2] coordinates (the first two channels are x, y); all-zero joints are absent and skipped,
            together with their bones.
        layout: the skeleton layout (its bones).
        color: colour of bones and joints.
        label: legend label of the skeleton (given to its first bone).
        mask: optional bool [V]; True joints are drawn distinctly (hollow ``mask_color`` circles, or filled ones
            with ``mask_filled``) and their bones dashed in ``mask_color``.
        alpha: opacity.
        y_down: image coordinates (y grows downward): invert the y axis so the person stands upright.
    Returns the bone lines drawn (one :class:`Line2D` per bone; joints are scatter collections, not lines).
    """
    layout = get_layout(layout)
    pts = np.asarray(joints, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] != layout.num_joints or pts.shape[1] < 2:
        raise SkeletonMAEError(f"draw_skeleton: joints must be [V={layout.num_joints}, >=2], got {list(pts.shape)}")
    present = np.any(pts != 0, axis=1)
    masked = np.zeros(len(pts), bool) if mask is None else np.asarray(mask, bool).reshape(-1)
    xy = pts[:, :2]
    lines = []
    for i, j in layout.bones:
        if not (present[i] and present[j]):
            continue
        hit = masked[i] or masked[j]
        (line,) = ax.plot(xy[[i, j], 0], xy[[i, j], 1], color=mask_color if hit else color,
                          linestyle="--" if hit else "-", linewidth=1.5 if hit else 2.0, alpha=alpha,
                          label=label if label and not lines else None, zorder=2)
        lines.append(line)
    shown = present & ~masked
    ax.scatter(xy[shown, 0], xy[shown, 1], s=14, color=color, alpha=alpha, zorder=3,
               label=label if label and not lines else None)
    hidden = present & masked
    if hidden.any():
        face = mask_color if mask_filled else "none"
        ax.scatter(xy[hidden, 0], xy[hidden, 1], s=30, facecolors=face, edgecolors=mask_color, linewidths=1.5,
                   alpha=alpha, zorder=4)
    if y_down and not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_aspect("equal")
    return lines


def _present(x: torch.Tensor) -> torch.Tensor:
    return x.ne(0).any(-1)


def reconstruct_joints(model, x: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on one clip and carry its predictions back to joint coordinates.

    Args:
        model: a :class:`~skeletonmae.models.skeletonmae.SkeletonMAE` with target 'coords' or 'window'.
        x: [P, T, V, C] one clip; mask: bool [P, T, V] (True = masked).
    Returns ``(recon [P, T, V, C], scored [P, T, V])``: the input with every masked, observed joint replaced by
    its reconstruction, and where that was done.
    """
    if model.target not in ("coords", "window"):
        raise SkeletonMAEError(
            f"reconstruction in joint space is not defined for target '{model.target}': that model predicts "
            "features, not joint positions. Visualise a model pre-trained with mae.target=coords or window."
        )
    p, t, v, c = x.shape
    model.eval()
    with torch.no_grad():
        out = model(x.unsqueeze(0), mask=mask)
    pred, target, frames = out["pred"], out["target"], out["frames"]
    if model.target == "window":  # offsets -w..w of C values each; offset 0 is the w-th
        w = model.config.target_window
        pred, target = pred[..., w * c:(w + 1) * c], target[..., w * c:(w + 1) * c]
    pred = pred[..., :c]
    target = target[..., :c]
    # the prediction is a direction from the frame's centroid: give it the true length, add the centroid back
    direction = pred / pred.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    rel = direction * target.norm(dim=-1, keepdim=True)
    flat = x.reshape(p * t, v, c)[frames]
    valid = _present(flat).unsqueeze(-1).to(x.dtype)
    centroid = (flat * valid).sum(-2, keepdim=True) / valid.sum(-2, keepdim=True).clamp_min(1)
    scored = out["mask"]  # [B, V]: masked joints that were observed
    joints = torch.where(scored.unsqueeze(-1), rel + centroid, flat)
    recon = x.reshape(p * t, v, c).clone()
    recon[frames] = joints
    full = torch.zeros(p * t, v, dtype=torch.bool)
    full[frames] = scored
    return recon.reshape(p, t, v, c).numpy(), full.reshape(p, t, v).numpy()


def _describe_mask(mask: np.ndarray, layout: Layout) -> str:
    """'masked: left arm, right leg' when whole regions are masked, else the number of masked joints."""
    frame = mask.reshape(-1, mask.shape[-1]).any(0)
    regions = [REGION_NAMES[r].replace("_", " ") for r, js in enumerate(layout.regions) if frame[list(js)].all()]
    covered = {j for r, js in enumerate(layout.regions) if frame[list(js)].all() for j in js}
    if regions and covered == set(np.flatnonzero(frame).tolist()):
        return "masked: " + ", ".join(regions)
    return f"masked: {int(frame.sum())} of {mask.shape[-1]} joints"


def plot_reconstruction(model, x: torch.Tensor, layout: str | Layout | None, path: str | Path, frames: int = 4,
                        mask: torch.Tensor | None = None, seed: int = 0, title: str | None = None,
                        y_down: bool = True) -> Path:
    """The paper's Fig. 6: input, masked input and reconstruction of one clip at evenly spaced frames.

    Args:
        model: a pre-trained SkeletonMAE (target 'coords' or 'window'; 'embedding' raises SkeletonMAEError).
        x: [P, T, V, C] one normalised clip (as the data pipeline gives it, in the model's layout).
        layout: the model's layout (None: ``model.layout``).
        path: the PNG to write.
        frames: how many frames (columns) to show, evenly spaced over the frames that hold a person.
        mask: bool [P, T, V] (True = masked); None draws one from ``model.masker`` seeded with ``seed``.
        y_down: 2D image coordinates (y down); False for 3D data whose y axis points up.
    """
    layout = get_layout(layout or model.layout)
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.ndim != 4 or x.shape[2] != layout.num_joints:
        raise SkeletonMAEError(f"plot_reconstruction: x must be one clip [P, T, V={layout.num_joints}, C], "
                               f"got {list(x.shape)}")
    p, t, v, _ = x.shape
    if mask is None:
        gen = torch.Generator().manual_seed(seed)
        mask = model.masker(p, t, device="cpu", generator=gen)
    mask = torch.as_tensor(mask, dtype=torch.bool).reshape(p, t, v)
    recon, scored = reconstruct_joints(model, x, mask)
    inp = x.numpy()
    held = _present(x).any(-1).any(0).numpy()  # [T] frames that hold a person
    if not held.any():
        raise SkeletonMAEError("plot_reconstruction: the clip holds no person (all joints are zero)")
    shown = np.flatnonzero(held)
    cols = shown[np.unique(np.linspace(0, len(shown) - 1, max(1, frames)).round().astype(int))]

    pts = np.concatenate([inp[..., :2][_present(x).numpy()], recon[..., :2][scored]])
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.08 * max(float((hi - lo).max()), 1e-3)
    span = hi - lo + 2 * pad
    panel_w = float(np.clip(2.3 * span[0] / span[1], 1.3, 3.6))  # panels 2.3 in high, as wide as the data
    fig, axes = plt.subplots(3, len(cols), figsize=(panel_w * len(cols) + 1.0, 8.2), squeeze=False,
                             sharex=True, sharey=True)
    for c, f in enumerate(cols):
        for r in range(3):
            ax = axes[r, c]
            for person in range(p):
                if not _present(x[person, f]).any():
                    continue
                if r == 0:
                    draw_skeleton(ax, inp[person, f], layout, INPUT_COLOR, y_down=False)
                elif r == 1:
                    draw_skeleton(ax, inp[person, f], layout, INPUT_COLOR, mask=mask[person, f].numpy(),
                                  y_down=False)
                else:
                    draw_skeleton(ax, inp[person, f], layout, "0.75", alpha=0.8, y_down=False)
                    draw_skeleton(ax, recon[person, f], layout, INPUT_COLOR, mask=scored[person, f],
                                  mask_color=RECON_COLOR, mask_filled=True, y_down=False)
            ax.set_xlim(lo[0] - pad, hi[0] + pad)
            ax.set_ylim((hi[1] + pad, lo[1] - pad) if y_down else (lo[1] - pad, hi[1] + pad))
            ax.set_aspect("equal", adjustable="box")
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(f"frame {f}", fontsize=10)
            if r == 2:
                ax.set_xlabel("x (normalised)", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{ROW_NAMES[r]}\ny (normalised)", fontsize=9)
    handles = [
        Line2D([], [], color=INPUT_COLOR, marker="o", markersize=4, label="visible joints"),
        Line2D([], [], color=MASK_COLOR, linestyle="--", marker="o", markerfacecolor="none", markersize=6,
               label="masked joints (hidden from the encoder)"),
        Line2D([], [], color=RECON_COLOR, linestyle="--", marker="o", markersize=6, label="reconstructed joints"),
        Line2D([], [], color="0.75", marker="o", markersize=4, label="input (reference)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.02))
    head = title or f"SkeletonMAE reconstruction (target={model.target})"
    fig.suptitle(f"{head}\n{_describe_mask(mask.numpy(), layout)}", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(fig, path)


# -- representations and results -------------------------------------------------------------------------------
def _class_name(class_names: Sequence[str] | None, i: int) -> str:
    return class_names[i] if class_names is not None and 0 <= i < len(class_names) else f"class {i}"


def plot_embedding_pca(features, labels, class_names: Sequence[str] | None, path: str | Path,
                       classes: Sequence[int] | None = None, title: str = "2D PCA of clip representations") -> Path:
    """Fig. 4a/b: the clips of a few classes projected on the first two principal components.

    Args:
        features: [N, D]; labels: [N] class ids.
        classes: the class ids to show (default: the first 5 present).
    """
    from sklearn.decomposition import PCA

    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels).astype(int)
    if features.ndim != 2 or len(features) != len(labels):
        raise SkeletonMAEError(f"plot_embedding_pca: features must be [N, D] with N labels, got "
                               f"{list(features.shape)} and {len(labels)} labels")
    classes = list(classes) if classes is not None else sorted(set(labels.tolist()))[:5]
    keep = np.isin(labels, classes)
    if keep.sum() < 2:
        raise SkeletonMAEError(f"plot_embedding_pca: fewer than 2 clips of classes {classes}; choose other classes")
    pca = PCA(n_components=2).fit(features[keep])
    z = pca.transform(features[keep])
    if z.shape[1] < 2:
        z = np.pad(z, ((0, 0), (0, 2 - z.shape[1])))
    ratio = np.pad(pca.explained_variance_ratio_, (0, 2))[:2]
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    colors = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for k, c in enumerate(classes):
        sel = labels[keep] == c
        ax.scatter(z[sel, 0], z[sel, 1], s=16, alpha=0.75, color=colors(k % colors.N),
                   label=f"{_class_name(class_names, c)} ({int(sel.sum())})")
    ax.set_xlabel(f"PC 1 ({100 * ratio[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ratio[1]:.1f}% of variance)")
    ax.set_title(title)
    ax.legend(title="class (clips)", fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def normalize_confusion(confusion) -> np.ndarray:
    """Row-normalised confusion matrix (each true class sums to 1; classes without samples stay 0)."""
    cm = np.asarray(confusion, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)


def plot_confusion(confusion, class_names: Sequence[str] | None, path: str | Path, normalize: bool = True,
                   title: str = "Confusion matrix") -> Path:
    """Fig. 4c: the confusion matrix (rows: true class, columns: predicted), with overall accuracy in the title."""
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise SkeletonMAEError(f"plot_confusion: the confusion matrix must be square [K, K], got {list(cm.shape)}")
    k = cm.shape[0]
    total = cm.sum()
    accuracy = float(np.trace(cm) / total) if total > 0 else 0.0
    shown = normalize_confusion(cm) if normalize else cm
    names = [_class_name(class_names, i) for i in range(k)]
    size = min(max(4.5, 0.45 * k + 2.5), 22)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("share of the true class" if normalize else "clips")
    ax.set_xticks(range(k), names, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 25:
        top = shown.max() if shown.size else 1
        for i in range(k):
            for j in range(k):
                if shown[i, j] > 0:
                    text = f"{shown[i, j]:.2f}" if normalize else f"{int(shown[i, j])}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=6 if k > 12 else 8,
                            color="white" if shown[i, j] > 0.5 * top else "black")
    ax.set_title(f"{title}\naccuracy {100 * accuracy:.1f}% ({int(total)} clips)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_timeline(rows: Sequence[dict], path: str | Path, title: str = "What each person does when") -> Path:
    """A strip chart of a timeline from :func:`skeletonmae.timeline.classify_windows`: one strip per person, time
    on x, each window's top class as a coloured stretch named with its probability.

    Windows overlap when the stride is shorter than the window, so each window is drawn over the frames nearer to
    its centre than to its neighbours' (from its start for the first, to its end for the last). x is in seconds
    when the rows have ``start_s``, else in frames.
    """
    if not rows:
        raise SkeletonMAEError("plot_timeline: the timeline is empty; nothing to draw")
    seconds = "start_s" in rows[0]
    start, end = ("start_s", "end_s") if seconds else ("start_frame", "end_frame")
    persons = sorted({r["person"] for r in rows})
    names = sorted({r["top"][0][0] for r in rows})
    colors = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(10, 0.8 + 0.7 * len(persons)))
    for y, person in enumerate(persons):
        mine = sorted((r for r in rows if r["person"] == person), key=lambda r: r[start])
        begin = np.array([r[start] for r in mine], dtype=float)
        finish = np.array([r[end] for r in mine], dtype=float)
        centre = (begin + finish) / 2
        edges = np.concatenate([begin[:1], (centre[1:] + centre[:-1]) / 2, finish[-1:]])
        for r, left, right in zip(mine, edges[:-1], edges[1:], strict=True):
            name, p = r["top"][0]
            ax.barh(y, right - left, left=left, height=0.8, color=colors(names.index(name) % colors.N),
                    edgecolor="white")
            ax.text((left + right) / 2, y, f"{name}\n{p:.2f}", ha="center", va="center", fontsize=7, clip_on=True)
    ax.set_yticks(range(len(persons)), [f"person {p}" for p in persons])
    ax.invert_yaxis()
    ax.set_xlabel("time (s)" if seconds else "frame")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def read_metrics_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows of a Lightning CSVLogger ``metrics.csv`` as dicts of floats (empty cells left out)."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values = {}
            for key, value in row.items():
                if key is None or value in (None, ""):
                    continue
                try:
                    values[key] = float(value)
                except ValueError:
                    continue
            rows.append(values)
    return rows


def _family(column: str) -> str | None:
    name = column.lower()
    if "loss" in name:
        return "loss"
    if any(k in name for k in ("top1", "top5", "acc")):
        return "accuracy"
    return None


def plot_curves(run_dir: str | Path, path: str | Path) -> Path:
    """Training curves of a run from ``run_dir/logs/metrics.csv``: one panel per metric family (loss, accuracy).

    Per-step values are drawn as thin lines, per-epoch means as markers at the epoch's last step (x = the
    training step; the epoch when the log has no step column).
    """
    run_dir = Path(run_dir)
    csv_path = run_dir / "logs" / "metrics.csv"
    if not csv_path.is_file():
        raise SkeletonMAEError(f"no training log at {csv_path}; give --run the output directory of a "
                               "pretrain or finetune run (the one holding logs/ and checkpoints/)")
    rows = read_metrics_csv(csv_path)
    xkey = "step" if any("step" in r for r in rows) else "epoch"
    columns = sorted({k for r in rows for k in r if k not in ("step", "epoch")})
    families: dict[str, list[str]] = {}
    for col in columns:
        fam = _family(col)
        if fam is not None:
            families.setdefault(fam, []).append(col)
    if not families:
        raise SkeletonMAEError(f"{csv_path} holds no loss or accuracy values yet (columns: {columns or 'none'})")
    names = [f for f in ("loss", "accuracy") if f in families]
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.8), squeeze=False)
    for ax, fam in zip(axes[0], names, strict=True):
        for col in families[fam]:
            pts = sorted((r[xkey], r[col]) for r in rows if col in r and xkey in r)
            if not pts:
                continue
            xs, ys = np.array(pts).T
            epoch_level = col.endswith("_epoch") or len(pts) < 3
            ax.plot(xs, ys, marker="o" if epoch_level else None, markersize=4,
                    linewidth=1.8 if epoch_level else 0.9, alpha=1.0 if epoch_level else 0.6,
                    label=col.replace("_epoch", " (epoch mean)").replace("_step", " (step)"))
        ax.set_xlabel("training step" if xkey == "step" else "epoch")
        ax.set_ylabel(fam)
        ax.set_title(fam)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Training curves: {run_dir.name or run_dir.resolve().name}")
    fig.tight_layout()
    return save_figure(fig, path)
