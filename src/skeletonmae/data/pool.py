"""``skeletonmae data pool``: several annotation pickles mapped to one layout as one pre-training corpus.

Pre-training needs no labels, so it may use every clip we have except the test split of the dataset a
table evaluates (issue 4). Pooling does three things:

- joints are carried into the target layout by name (:func:`skeletonmae.skeleton.map_joints`; joints a
  source lacks are zero with score 0, i.e. absent);
- clips are renamed ``<dataset>/<frame_dir>`` and every source split becomes ``<dataset>/<split>``; the
  split ``pool`` holds every clip that is in none of the excluded splits (a clip in an excluded split is
  left out even if another split of its dataset also lists it, as JHMDB's three splits do);
- when 2D and 3D sources are mixed the pool is 2D, and 3D clips enter it in one of two ways:

  - by default (no ``views``, as before) each as one orthographic front view: x and y (image y points down,
    so y is flipped) centred on the canvas, at the median body size of the 2D clips (RMS distance of the
    joints from the clip's centroid, after the 'fix' normalisation), on a square canvas of ``CANVAS``
    pixels, scores 1. So a 3D clip looks, to the 2D pipeline, like a 2D clip of a typical size. (x is drawn
    as image x, so data in Kinect camera space, whose x points to the camera's left, come out mirrored.)
  - with ``views=N`` each as N views through random virtual cameras, with a pose estimator's noise,
    scores and missed joints (:mod:`skeletonmae.data.views`), on a 640 x 480 frame. View k of clip c is
    named ``<dataset>/<frame_dir>/view<k>`` (k = 0..N-1); all N views are in every split the clip is in,
    and in ``pool`` unless the clip is excluded. The cameras depend only on ``seed``, the dataset and the
    clip's index in it. With ``views``, 3D clips are projected even when every source is 3D (the pool is
    then 2D).

Labels keep their source's numbering (they are not used in pre-training); ``dataset`` names the source.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..skeleton import get_layout, map_joints
from .annotations import load_annotations, save_annotations
from .views import IMAGE_H, IMAGE_W, project_views

CANVAS = 1000  # pixels: the square frame 3D clips are drawn on in a 2D pool


def _rms_radius_2d(ann: dict) -> float:
    """RMS distance of the confident joints from their centroid, in 'fix'-normalised units (half frame)."""
    h, w = ann["img_shape"]
    kp, sc = ann["keypoint"], ann["keypoint_score"]
    pts = kp[sc > 0.01] / np.array([w / 2, h / 2], np.float32)
    return float(np.sqrt(((pts - pts.mean(0)) ** 2).sum(-1).mean())) if len(pts) > 1 else float("nan")


def _front_view(kp: np.ndarray, present: np.ndarray, radius: float) -> np.ndarray:
    """3D keypoints [M, T, V, 3] -> 2D pixels [M, T, V, 2] on the canvas, with RMS radius ``radius`` (in
    half-canvas units, measured as :func:`_rms_radius_2d` measures the 2D clips)."""
    xy = kp[..., :2] * np.array([1, -1], np.float32)
    pts = xy[present]
    rel = (xy - (pts.mean(0) if len(pts) else 0)) * present[..., None]
    scale = np.sqrt((rel[present] ** 2).sum(-1).mean()) if len(pts) > 1 else 1.0
    return ((rel / max(scale, 1e-6) * radius + 1) * (CANVAS / 2) * present[..., None]).astype(np.float32)


def pool_annotations(sources: list[tuple[str | Path, str]], layout: str, exclude: list[str] = (),
                     views: int | None = None, seed: int = 0) -> tuple[list[dict], dict[str, list[str]]]:
    """Pool ``sources`` (pickle path, its layout) into ``layout``; ``exclude`` lists ``dataset/split`` names;
    ``views`` (>= 1) turns each 3D clip into that many virtual camera views drawn with ``seed``.

    Returns the annotations and splits of the pooled file (module docstring).
    """
    if views is not None and views < 1:
        raise DataError(f"views must be at least 1 (the number of camera views of each 3D clip), got {views}")
    target = get_layout(layout)
    layouts = [get_layout(src) for _, src in sources]  # a layout file is read once
    files = [(Path(p).stem, load_annotations(p, layout=src), src) for (p, _), src in zip(sources, layouts, strict=True)]
    names = [name for name, _, _ in files]
    if len(set(names)) != len(names):
        raise DataError(f"two sources have the same file name ({names}); pooled clips are named after it")
    known = {f"{name}/{s}" for name, f, _ in files for s in f.split}
    unknown = sorted(set(exclude) - known)
    if unknown:
        raise DataError(f"--exclude {unknown[0]}: no such split; the sources have {sorted(known)}")
    channels = {f.num_channels for _, f, _ in files}
    to_2d = len(channels) > 1 or (views is not None and 3 in channels)
    if to_2d and views is None:
        radius = np.nanmedian([_rms_radius_2d(a) for _, f, _ in files if f.num_channels == 2 for a in f.annotations])

    annotations, split = [], {}
    for name, f, src_layout in files:
        projected = to_2d and views is not None and f.num_channels == 3
        suffixes = [f"/view{k}" for k in range(views)] if projected else [""]
        excluded = {str(n) for s in f.split if f"{name}/{s}" in exclude for n in f.split[s]}
        for s, members in f.split.items():
            split[f"{name}/{s}"] = [f"{name}/{n}{v}" for n in members for v in suffixes]
        dataset_key = zlib.crc32(name.encode())
        for i, a in enumerate(f.annotations):
            score = a.get("keypoint_score", a["keypoint"].any(-1).astype(np.float32))  # 3D: present = non-zero
            kp, sc = map_joints(a["keypoint"], score, src_layout, target)
            out = {**a, "frame_dir": f"{name}/{a['frame_dir']}", "dataset": name, "keypoint": kp}
            if f.num_channels == 2:
                out["keypoint_score"] = sc
                outs = [out]
            elif projected:
                outs = [{**out, "frame_dir": out["frame_dir"] + suffix, "keypoint": kp2, "keypoint_score": sc2,
                         "img_shape": (IMAGE_H, IMAGE_W), "original_shape": (IMAGE_H, IMAGE_W)}
                        for suffix, (kp2, sc2) in zip(suffixes, project_views(kp, sc > 0, target, views,
                                                                              (seed, dataset_key, i)), strict=True)]
            elif to_2d:
                present = sc > 0
                out["keypoint"] = _front_view(kp, present, radius)
                out.update(keypoint_score=present.astype(np.float32), img_shape=(CANVAS, CANVAS),
                           original_shape=(CANVAS, CANVAS))
                outs = [out]
            else:
                outs = [out]
            annotations += outs
            if str(a["frame_dir"]) not in excluded:
                split.setdefault("pool", []).extend(o["frame_dir"] for o in outs)
    return annotations, split


def write_pool(out: str | Path, sources: list[tuple[str | Path, str]], layout: str, exclude: list[str] = (),
               views: int | None = None, seed: int = 0) -> Path:
    annotations, split = pool_annotations(sources, layout, exclude, views, seed)
    return save_annotations(out, annotations, split)
