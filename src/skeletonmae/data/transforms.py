"""Sample transforms with PYSKL semantics: each a small callable with one job, on a dict sample.

A sample starts as an annotation (``keypoint`` [M, T, V, C], ``keypoint_score`` [M, T, V], ``img_shape``)
and leaves the pipeline as ``keypoint`` float32 [K, P, T, V, C'] (K clips, P persons, T frames):

    MapJoints -> SelectPersons -> UniformSample -> PixelNoise -> Normalize2D / Normalize3D
              -> RandomRotateScale -> Flip -> FormatChannels

Every transform is called as ``t(sample, rng)``: its randomness comes only from the ``numpy.random.Generator``
it is handed (:class:`Compose` passes one Generator through all of them), never from numpy's global state,
so a sample's augmentation is a function of the Generator's seed alone (see ``SkeletonDataset``). Layouts
are resolved once, by :func:`build_pipeline`, and handed to the transforms as :class:`Layout` objects.

Transforms never write into the arrays of the loaded file (they are shared by every epoch and, after a
fork, by every data-loader worker).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence

import numpy as np

from ..config import Normalize, Stream
from ..skeleton import Layout, body_measure, get_layout, map_joints

Sample = dict
Transform = Callable[[Sample, np.random.Generator], Sample]


def _scores(sample: Sample) -> np.ndarray:
    """``keypoint_score``, or for 3D data (which has none) 1 wherever a joint is not all-zero."""
    if "keypoint_score" in sample:
        return sample["keypoint_score"]
    return np.any(sample["keypoint"] != 0, axis=-1).astype(np.float32)


class Compose:
    """Apply transforms in order, each drawing from the one Generator ``rng``."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        sample = dict(sample)
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class MapJoints:
    """Carry the sample from the file's layout into the model's (absent joints: 0, score 0)."""

    def __init__(self, source: Layout, target: Layout):
        self.source, self.target = source, target

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp, sc = map_joints(sample["keypoint"], _scores(sample), self.source, self.target)
        return {**sample, "keypoint": kp, "keypoint_score": sc}

    def __repr__(self) -> str:
        return f"MapJoints({self.source.name}->{self.target.name})"


class SelectPersons:
    """Keep the P persons with the highest total score; zero-pad to exactly P persons."""

    def __init__(self, num_persons: int = 2):
        self.num_persons = num_persons

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp, sc = sample["keypoint"], _scores(sample)
        order = np.argsort(-sc.sum(axis=(1, 2)), kind="stable")[: self.num_persons]
        kp, sc = kp[order], sc[order]
        pad = self.num_persons - kp.shape[0]
        if pad > 0:
            kp = np.concatenate([kp, np.zeros((pad, *kp.shape[1:]), kp.dtype)])
            sc = np.concatenate([sc, np.zeros((pad, *sc.shape[1:]), sc.dtype)])
        return {**sample, "keypoint": kp, "keypoint_score": sc}


class UniformSample:
    """Sample ``clip_len`` frames spread uniformly over the clip (PYSKL's UniformSampleFrames).

    The clip is cut into ``clip_len`` equal segments and one frame is taken from each: a random one in
    training, fixed ones at test time, where ``num_clips`` clips take evenly spaced offsets inside the
    segments. A clip shorter than ``clip_len`` is looped (``short='loop'``, from a random start in
    training) or padded by repeating its last frame (``short='pad'``).
    Output: ``keypoint`` [K, M, clip_len, V, C], ``keypoint_score`` [K, M, clip_len, V].
    """

    def __init__(self, clip_len: int, num_clips: int = 1, test_mode: bool = False, short: str = "loop"):
        if short not in ("loop", "pad"):
            raise ValueError(f"short must be 'loop' or 'pad', got {short!r}")
        self.clip_len, self.num_clips, self.test_mode, self.short = clip_len, num_clips, test_mode, short

    def indices(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """Frame indices [K, clip_len] (in training drawn from ``rng``; at test time ``rng`` is not used)."""
        t, k = self.clip_len, self.num_clips
        if num_frames < t:
            if self.short == "pad":
                idx = np.minimum(np.arange(t), num_frames - 1)
                return np.broadcast_to(idx, (k, t)).copy()
            starts = np.arange(k) * num_frames // k if self.test_mode else rng.integers(num_frames, size=k)
            return (starts[:, None] + np.arange(t)) % num_frames
        bounds = np.arange(t + 1) * num_frames // t  # segment i covers [bounds[i], bounds[i+1])
        length = bounds[1:] - bounds[:-1]
        if self.test_mode:
            frac = (np.arange(k)[:, None] + 0.5) / k
        else:
            frac = rng.random((k, t))
        return bounds[:-1] + (frac * length).astype(np.int64)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp, sc = sample["keypoint"], _scores(sample)
        idx = self.indices(kp.shape[1], rng)
        return {**sample, "keypoint": np.moveaxis(kp[:, idx], 1, 0), "keypoint_score": np.moveaxis(sc[:, idx], 1, 0)}


class PixelNoise:
    """Add Gaussian noise of ``std`` pixels to every present joint (the paper's training noise, §4.1)."""

    def __init__(self, std: float = 1.0):
        self.std = std

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.std <= 0:
            return sample
        kp, sc = sample["keypoint"], _scores(sample)
        noise = rng.normal(0.0, self.std, kp.shape).astype(kp.dtype)
        return {**sample, "keypoint": kp + noise * (sc[..., None] > 0)}


# data.normalize: how coordinates are normalised (2D: Normalize2D's modes; 3D: 'body' or the RMS default)
NORMALIZE_MODES = typing.get_args(Normalize)

# 'body': the torso (mid-shoulder to mid-hip) length a body is scaled to.
# 2D: 0.35 half-frames is what 'fix' gives a typical body: the median torso of the 2D sets under 'fix' is
# 0.38 (Penn Action) and 0.29 (JHMDB). So 'body' shows the model bodies of the size it sees with 'fix', and
# a standing body (joints up to about 2 torso lengths from the mid-hip) stays inside [-1, 1].
BODY_TORSO_2D = 0.35
# 3D: 0.7 is the median torso of the Kinect sets (NW-UCLA, UTKinect) under the RMS scale (RMS radius
# 1.42 and 1.41 torso lengths), so 'body' and the default agree on a body that stays where it is.
BODY_TORSO_3D = 0.7


class Normalize2D:
    """Pixel coordinates to about [-1, 1]; joints with score <= threshold set to 0.

    ``mode='fix'`` (PYSKL's PreNormalize2D, the paper's) divides by the frame size ``img_shape`` (h, w):
    ``x' = (x - w/2) / (w/2)``; ``mode='auto'`` uses the box around the clip's confident joints instead,
    keeping the aspect ratio; ``mode='body'`` centres on the first person's mean mid-hip point and scales its
    body size (median torso length, :func:`skeletonmae.skeleton.body_measure`) to :data:`BODY_TORSO_2D`, so
    a body keeps its size however far it travels in the clip. 'body' needs the ``layout`` (to find the
    shoulders and hips); where it has no torso joints, or no frame shows all four, it falls back to 'auto'.
    """

    def __init__(self, mode: str = "fix", threshold: float = 0.01, layout: Layout | None = None):
        if mode not in NORMALIZE_MODES:
            raise ValueError(f"mode must be one of {NORMALIZE_MODES}, got {mode!r}")
        if mode == "body" and layout is None:
            raise ValueError("mode 'body' needs the layout (to find the torso joints)")
        self.mode, self.threshold, self.layout = mode, threshold, layout

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp, sc = sample["keypoint"], _scores(sample)
        keep = sc > self.threshold
        if self.mode == "fix":
            h, w = sample["img_shape"]
            center = np.array([w / 2, h / 2], np.float32)
            half = center
        else:
            body = body_measure(kp, keep, self.layout) if self.mode == "body" else None
            if body is not None:
                size, center = body
                half = np.float32(max(size, 1e-6) / BODY_TORSO_2D)
            else:
                pts = kp[keep]
                if len(pts) == 0:
                    return {**sample, "keypoint": np.zeros_like(kp)}
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                center = (lo + hi) / 2
                half = np.full(2, max((hi - lo).max() / 2, 1e-6), np.float32)
        out = (kp - center) / half
        return {**sample, "keypoint": (out * keep[..., None]).astype(np.float32)}


class Normalize3D:
    """Centre 3D skeletons and scale them, so data in metres and in millimetres end up alike.

    ``mode='rms'`` (the default): the centre is the mean position of the layout's centre joint over the
    frames where the first person is present; the scale is the root-mean-square distance of all present
    joints from it, i.e. unit RMS radius. On a body that travels (a walk of 10 m) that radius follows the
    path, not the body, and the body comes out small.
    ``mode='body'``: the centre is the first person's mean mid-hip point and its body size (median torso
    length, :func:`skeletonmae.skeleton.body_measure`) becomes :data:`BODY_TORSO_3D`, however far it
    travels. The mid-hip rather than the centre joint, so the centre is the same body point in every layout
    (coco17's centre joint is the nose) and the same as 2D's 'body'. A layout without the four torso joints,
    or a clip where no frame shows all four, falls back to 'rms'.
    """

    def __init__(self, layout: Layout, mode: str = "rms"):
        if mode not in ("rms", "body"):
            raise ValueError(f"mode must be 'rms' or 'body', got {mode!r}")
        self.layout, self.center, self.mode = layout, layout.center, mode

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp, sc = sample["keypoint"], _scores(sample)
        present = sc > 0
        body = body_measure(kp, present, self.layout) if self.mode == "body" else None
        if body is not None:
            size, center = body
            scale = size / BODY_TORSO_3D
            rel = (kp - center) * present[..., None]
        else:
            ref = present[..., 0, :, self.center]  # [..., T] of the first person
            pts = kp[..., 0, :, self.center, :][ref]
            center = pts.mean(axis=0) if len(pts) else np.zeros(kp.shape[-1], np.float32)
            rel = (kp - center) * present[..., None]
            sq = (rel**2).sum(-1)[present]
            scale = np.sqrt(sq.mean()) if len(sq) else 1.0
        return {**sample, "keypoint": (rel / max(scale, 1e-6)).astype(np.float32)}


class RandomRotateScale:
    """Rotate by a random angle in [-max_deg, max_deg], then scale each axis by U(1-s, 1+s).

    3D: about the vertical (y) axis; 2D: in the image plane, about the origin of the normalised frame.
    A linear map, so absent (all-zero) joints stay zero.
    """

    def __init__(self, max_deg: float = 0.0, scale: float = 0.0):
        self.max_deg, self.scale = max_deg, scale

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if self.max_deg <= 0 and self.scale <= 0:
            return sample
        kp = sample["keypoint"]
        a = np.deg2rad(rng.uniform(-self.max_deg, self.max_deg))
        s = rng.uniform(1 - self.scale, 1 + self.scale, size=kp.shape[-1])
        c, n = np.cos(a), np.sin(a)
        rot = np.array([[c, 0, n], [0, 1, 0], [-n, 0, c]] if kp.shape[-1] == 3 else [[c, -n], [n, c]])
        rot = (rot * s[:, None]).astype(np.float32)
        return {**sample, "keypoint": (kp @ rot.T).astype(np.float32)}


class Flip:
    """Mirror the skeleton left-right: x -> -x, and every left joint swapped with its right twin.

    In training each clip is mirrored with probability ``p``. At test time (``both=True``) a mirrored copy
    of every clip is appended, so K test clips become 2K and their softmax is averaged with the rest.
    Runs after normalisation, where x = 0 is the centre of the frame (2D) or of the body (3D); absent
    (all-zero) joints stay zero.
    """

    def __init__(self, layout: Layout, p: float = 0.5, both: bool = False):
        self.twin, self.p, self.both = layout.mirror(), p, both

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp, sc = sample["keypoint"], _scores(sample)  # [K, P, T, V, C], [K, P, T, V]
        mirrored = kp[..., self.twin, :] * np.array([-1] + [1] * (kp.shape[-1] - 1), np.float32)
        if self.both:
            return {**sample, "keypoint": np.concatenate([kp, mirrored]),
                    "keypoint_score": np.concatenate([sc, sc[..., self.twin]])}
        flip = rng.random(kp.shape[0]) < self.p  # one draw per clip
        where = flip.reshape(-1, *[1] * (kp.ndim - 1))
        return {**sample, "keypoint": np.where(where, mirrored, kp),
                "keypoint_score": np.where(where[..., 0], sc[..., self.twin], sc)}

    def __repr__(self) -> str:
        return f"Flip(p={self.p})" if not self.both else "Flip(both)"


STREAMS = typing.get_args(Stream)  # the input streams of an ensemble (data.stream)


def present_mask(kp):
    """[..., T, V, 1] bool: a joint is present where any of its channels is non-zero (absent joints are 0)."""
    return (kp != 0).any(-1)[..., None]


def next_frames(num_frames: int) -> np.ndarray:
    """For each frame the index of the next one; the last frame is its own next (its velocity is 0)."""
    return np.minimum(np.arange(num_frames) + 1, num_frames - 1)


def difference(kp, present, minuend, subtrahend, axis: int):
    """``kp[minuend] - kp[subtrahend]`` along ``axis`` (-3: frames, -2: joints) and where both ends are present;
    0 elsewhere. Works on numpy arrays and torch tensors alike (the exported ONNX graph uses it too)."""
    def take(a, index):
        return a[(Ellipsis, index) + (slice(None),) * (-1 - axis)]

    both = take(present, minuend) & take(present, subtrahend)
    return (take(kp, minuend) - take(kp, subtrahend)) * both, both


def velocity(kp, present):
    """Each joint's frame-to-frame velocity x_{t+1} - x_t (0 at the last frame and where either is absent)."""
    frames = next_frames(int(kp.shape[-3]))  # fixed in an exported graph, as the clip length is
    return difference(kp, present, frames, np.arange(len(frames)), axis=-3)


def bones(kp, present, parents):
    """Each joint's bone vector x_v - x_parent(v) (0 where either is absent; the centre is its own parent)."""
    return difference(kp, present, np.arange(len(parents)), np.asarray(parents), axis=-2)


def input_stream(kp, stream: str, parents):
    """The coordinates of one input stream and where it is present: joints as given, their bone vectors, or
    the frame-to-frame velocity of either (joint_motion, bone_motion). Vectorised over persons, frames, joints;
    an absent joint or person (all-zero rows) stays 0 in every stream."""
    values, present = kp, present_mask(kp)
    if stream.startswith("bone"):
        values, present = bones(values, present, parents)
    if stream.endswith("motion"):
        values, present = velocity(values, present)
    return values, present


def derived_channels(kp, stream: str, motion: bool, bone: bool, parents) -> list:
    """The model input's coordinate channels, in order: the stream's values, then (``motion``) their velocity,
    then (``bone``) their bone vectors. The caller concatenates them (numpy or torch) and appends the score."""
    values, present = input_stream(kp, stream, parents)
    parts = [values]
    if motion:
        parts.append(velocity(values, present)[0])
    if bone:
        parts.append(bones(values, present, parents)[0])
    return parts


class FormatChannels:
    """The model input: the coordinates of the input ``stream`` (joints, bone vectors to the ``parents``, or the
    velocity of either; see :func:`input_stream`); with ``motion`` their frame-to-frame velocity appended (C more
    channels, 0 where the joint is absent in either frame and at the last frame); with ``bone`` their bone
    vectors (position minus the parent's, C more channels, 0 where either is absent); with ``use_score`` the
    score last."""

    def __init__(self, use_score: bool = False, motion: bool = False, bone: bool = False, stream: str = "joint",
                 parents: Sequence[int] | None = None):
        if stream not in STREAMS:
            raise ValueError(f"unknown input stream {stream!r}; choose one of {', '.join(STREAMS)}")
        if (bone or stream.startswith("bone")) and parents is None:
            raise ValueError(f"bone channels (bone={bone}, stream={stream!r}) need the layout's parents")
        self.use_score, self.motion, self.bone, self.stream = use_score, motion, bone, stream
        self.parents = None if parents is None else np.asarray(parents)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = sample["keypoint"].astype(np.float32, copy=False)  # [..., T, V, C]
        parts = derived_channels(kp, self.stream, self.motion, self.bone, self.parents)
        if self.use_score:
            parts.append(_scores(sample)[..., None].astype(np.float32))
        return {**sample, "keypoint": np.ascontiguousarray(np.concatenate(parts, axis=-1), dtype=np.float32)}


def build_pipeline(
    *,
    source_layout: str | Layout,
    target_layout: str | Layout,
    is_3d: bool,
    clip_len: int,
    num_persons: int,
    train: bool,
    num_clips: int = 1,
    use_score: bool = False,
    motion: bool = False,
    bone: bool = False,
    stream: str = "joint",
    pixel_noise: float = 0.0,
    normalize: str = "fix",
    score_threshold: float = 0.01,
    rotate_deg: float = 0.0,
    scale: float = 0.0,
    flip: float = 0.0,
    test_flip: bool = False,
) -> Compose:
    """The standard pipeline for training (one random clip, augmented) or testing (K fixed clips).

    The layouts are looked up here, once; the transforms get the :class:`Layout` objects."""
    source, target = get_layout(source_layout), get_layout(target_layout)
    steps: list[Transform] = []
    if source != target:
        steps.append(MapJoints(source, target))
    steps += [
        SelectPersons(num_persons),
        UniformSample(clip_len, num_clips=1 if train else num_clips, test_mode=not train),
    ]
    if is_3d:
        steps.append(Normalize3D(target, "body" if normalize == "body" else "rms"))
    else:
        if train:
            steps.append(PixelNoise(pixel_noise))
        steps.append(Normalize2D(normalize, score_threshold, target))
    if train:
        steps.append(RandomRotateScale(rotate_deg, scale))
        if flip > 0:
            steps.append(Flip(target, p=flip))
    elif test_flip:
        steps.append(Flip(target, both=True))
    steps.append(FormatChannels(use_score, motion, bone, stream, target.parents()))
    return Compose(steps)
