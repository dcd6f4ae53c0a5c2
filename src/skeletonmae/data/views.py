"""Virtual cameras: a 3D skeleton clip seen as a 2D pose estimator would see it from a random viewpoint.

``skeletonmae data pool --views N`` turns each 3D clip into N such views (:mod:`skeletonmae.data.pool`).

World. The clip's 3D joints are taken as y up (every 3D set here is in a Kinect-like camera frame: x toward
the recording camera's left, y up, z away from it; see their READMEs). They are moved and scaled, per clip,
so that the first person's mean mid-hip point is the origin and its body size (median torso length,
:func:`skeletonmae.skeleton.body_measure`) is :data:`TORSO_M` metres, so data in millimetres and in metres
look alike and a body is about 1.7 m tall:  ``P = (p - h) * TORSO_M / torso``.

Camera (a pinhole without lens distortion), aimed at the origin from azimuth θ about the vertical axis
(θ = 0: where the recording camera stood, on the -z side), elevation φ above the horizontal and distance d:

    C = d (cos φ sin θ,  sin φ,  -cos φ cos θ)                 camera centre
    f = -C / d,  r = (f × up) / |f × up|,  b = f × r            forward, image right, image down (up = +y)
    X = (P - C)·r,  Y = (P - C)·b,  Z = (P - C)·f               camera coordinates
    u = W/2 + F X / Z,  v = H/2 + F Y / Z                      pixels (image y points down)

θ ~ U(-90°, 90°): a pose estimator sees people from the front and the sides (a person seen from behind
has its left and right joints guessed, not seen); φ ~ U(-10°, 30°): cameras stand at eye level or above,
rarely below. d ~ U(3, 6) m, a room-sized to a courtyard-sized shot. The focal length F puts a 1.7 m body
at distance d at a share U(1/3, 2/3) of the frame height H (the median joint extent in a frame is 0.39 of
the frame height in JHMDB and 0.63 in Penn Action, the 2D sets such a pool is mixed with). The frame is
W x H = 640 x 480 (4:3, the pixel scale of JHMDB's 320 x 240 and Penn Action's 480 x 270..360 frames, so the
training's pixel noise means about the same). Two corrections keep every view an image a camera could
take: the camera backs away until no joint is nearer than :data:`NEAR_M` (a walker may come towards it),
and the focal length shrinks until every joint is inside the middle 95 % of the frame (a walker may cross
it: the operator zooms out).

Pose-estimator output: Gaussian noise of :data:`NOISE_PX` pixels on every joint; scores U(0.6, 1.0); a
share :data:`DROP` of the joints missing (score 0, coordinates 0), as are the joints the source lacks.
Everything is vectorised over persons, frames and joints. View k of a clip draws from
``np.random.default_rng([*key, k])``, so it depends only on the key (the pool uses the seed, the dataset and
the clip's index in it) and on k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..skeleton import Layout, body_measure

TORSO_M = 0.4  # metres: the median torso (mid-shoulder to mid-hip) of NW-UCLA / UTKinect (0.38) and Bandai-Namco (0.40)
BODY_M = 1.7  # metres: the body height the framing refers to
IMAGE_W, IMAGE_H = 640, 480  # pixels
AZIMUTH_DEG = (-90.0, 90.0)
ELEVATION_DEG = (-10.0, 30.0)
DISTANCE_M = (3.0, 6.0)
BODY_SHARE = (1 / 3, 2 / 3)  # of the frame height, for a body at distance d
NEAR_M = 1.0  # no joint nearer to the camera than this
FRAME_SHARE = 0.95  # every joint inside this share of the frame (width and height) around its centre
NOISE_PX = 2.0  # std of the pixel noise
SCORE = (0.6, 1.0)  # scores of the joints the estimator reports
DROP = 0.02  # share of the joints it misses
RMS_PER_TORSO = 1.4  # RMS radius / torso of a body (NW-UCLA, UTKinect: 1.42, 1.41): the stand-in without a torso


@dataclass(frozen=True)
class Camera:
    """A pinhole camera aimed at the world origin (module docstring); angles in radians, lengths in metres."""

    azimuth: float
    elevation: float
    distance: float
    focal: float  # pixels
    width: int = IMAGE_W
    height: int = IMAGE_H

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The camera centre C [3] and the rows (r, b, f) [3, 3]: image right, image down, forward.

        The module docstring's cross products worked out (|elevation| < 90°, so f × up is not 0)."""
        ca, sa, ce, se = np.cos(self.azimuth), np.sin(self.azimuth), np.cos(self.elevation), np.sin(self.elevation)
        forward = np.array([-ce * sa, -se, ce * ca])
        right = np.array([-ca, 0.0, -sa])  # (f × up) / |f × up| = (-f_z, 0, f_x) / cos φ
        down = np.array([se * sa, -ce, -se * ca])  # f × r
        return -self.distance * forward, np.stack([right, down, forward])

    def camera_coordinates(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] -> (X, Y, Z) [..., 3]."""
        centre, rows = self.axes()
        return (points - centre) @ rows.T

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points [..., 3] (in front of the camera) -> pixels (u, v) [..., 2]."""
        xyz = self.camera_coordinates(points)
        return self.focal * xyz[..., :2] / xyz[..., 2:] + np.array([self.width / 2, self.height / 2])


def draw_camera(rng: np.random.Generator) -> Camera:
    """A random camera as the module docstring describes (before the two corrections)."""
    azimuth, elevation = np.deg2rad(rng.uniform(*AZIMUTH_DEG)), np.deg2rad(rng.uniform(*ELEVATION_DEG))
    distance = rng.uniform(*DISTANCE_M)
    focal = rng.uniform(*BODY_SHARE) * IMAGE_H * distance / BODY_M
    return Camera(float(azimuth), float(elevation), float(distance), float(focal))


def to_world(keypoint: np.ndarray, present: np.ndarray, layout: Layout) -> np.ndarray:
    """3D keypoints [M, T, V, 3] -> world points in metres around the origin (module docstring), absent = 0.

    Without the torso joints (or a frame showing all four), the RMS radius around the centroid of the
    present joints stands in for ``RMS_PER_TORSO`` torso lengths."""
    body = body_measure(keypoint, present, layout)
    if body is not None:
        torso, centre = body
    else:
        pts = keypoint[present].astype(np.float64)
        centre = pts.mean(0)
        torso = np.sqrt(((pts - centre) ** 2).sum(-1).mean()) / RMS_PER_TORSO
    return (keypoint - centre) * (TORSO_M / max(torso, 1e-9)) * present[..., None]


def frame_camera(camera: Camera, world: np.ndarray) -> Camera:
    """``camera`` backed away until every point of ``world`` [N, 3] is NEAR_M in front of it, and its focal
    length shortened until every point falls inside FRAME_SHARE of the frame."""
    _, rows = camera.axes()
    nearest = camera.distance + (world @ rows[2]).min()  # the smallest Z
    if nearest < NEAR_M:
        camera = replace(camera, distance=camera.distance + NEAR_M - nearest)
    xyz = camera.camera_coordinates(world)
    reach = np.abs(xyz[:, :2] / xyz[:, 2:]).max(0)  # the largest |X/Z| and |Y/Z|
    fit = FRAME_SHARE * np.array([camera.width / 2, camera.height / 2]) / np.maximum(reach, 1e-9)
    return replace(camera, focal=float(min(camera.focal, fit.min())))


def view(keypoint: np.ndarray, present: np.ndarray, layout: Layout, rng: np.random.Generator,
         camera: Camera | None = None) -> tuple[np.ndarray, np.ndarray, Camera]:
    """One virtual view of a 3D clip (keypoint [M, T, V, 3], present [M, T, V] bool) through ``camera`` (default:
    :func:`draw_camera`), corrected by :func:`frame_camera`: keypoint float32 [M, T, V, 2] (pixels), score
    float32 [M, T, V] and the camera used."""
    world = to_world(keypoint, present, layout) if present.any() else np.zeros(keypoint.shape)
    return _view(world, present, rng, camera)


def _view(world: np.ndarray, present: np.ndarray, rng: np.random.Generator, camera: Camera | None = None
          ) -> tuple[np.ndarray, np.ndarray, Camera]:
    camera = draw_camera(rng) if camera is None else camera
    keypoint2d = np.zeros(world.shape[:-1] + (2,), np.float32)
    score = np.zeros(world.shape[:-1], np.float32)
    if not present.any():
        return keypoint2d, score, camera
    camera = frame_camera(camera, world[present])
    uv = camera.project(world) + rng.normal(0.0, NOISE_PX, keypoint2d.shape)
    seen = present & (rng.random(present.shape) >= DROP)
    keypoint2d[seen] = uv[seen]
    score[seen] = rng.uniform(*SCORE, size=int(seen.sum()))
    return keypoint2d, score, camera


def project_views(keypoint: np.ndarray, present: np.ndarray, layout: Layout, views: int, key: Sequence[int]
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``views`` virtual views of a 3D clip (keypoint [M, T, V, 3], present [M, T, V] bool) in ``layout``.

    View k draws from ``np.random.default_rng([*key, k])``. Returns ``[(keypoint [M, T, V, 2], score [M, T, V])]``
    in float32, pixels of a ``IMAGE_W`` x ``IMAGE_H`` frame."""
    world = to_world(keypoint, present, layout) if present.any() else np.zeros(keypoint.shape)
    out = []
    for k in range(views):
        kp, score, _ = _view(world, present, np.random.default_rng([*key, k]))
        out.append((kp, score))
    return out
