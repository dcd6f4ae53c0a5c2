"""The embedded synthetic demo set: procedurally generated, labelled COCO-17 2D skeleton clips.

No files, no downloads: numpy alone generates a small action-recognition data set in the PYSKL /
MMAction2 annotation format (see :mod:`skeletonmae.data.annotations`), deterministic given a seed, so
the whole pipeline (pre-training, fine-tuning, testing; paper §4) can be run and tested anywhere.

Body model
    Each person is a small 3D kinematic body in its own frame (metres; x = the person's left,
    y = up, z = forward): a pelvis carrying two hip joints; a torso that leans (pitch) and twists
    (yaw) above the pelvis, carrying the neck and two shoulders; a head that turns and nods on the
    neck, carrying the nose, eyes and ears as fixed offsets; two-segment arms (upper arm, forearm ->
    elbow, wrist) and legs (thigh, shank -> knee, ankle). Segment lengths follow average human
    proportions of a random height of 1.50-1.95 m, each varied by a few percent, widths separately.
    Motion is given as joint angles over time (segment elevation and azimuth per limb, torso lean and
    twist, head yaw and pitch) and turned into joint positions by forward kinematics over all frames
    at once; a few reaching motions (clapping, handshake, hug, push) set wrist targets instead and
    place the elbow by two-bone inverse kinematics. Every angle carries a slow random wobble, resting
    arms hang, rest on the hips, are crossed or held behind the back, some stand with one knee relaxed,
    and the body is kept on the ground (the lower ankle touches it in every frame), so squats lower
    the pelvis and kicks stand on one leg.

Camera
    Bodies are placed in a world frame (one person facing the camera within +-80 degrees of yaw; two
    persons facing each other, the pair seen from a random side) and projected by a pinhole camera at
    a random distance (3.5-9 m), height and downward pitch, with a random focal length, to pixels of
    an image of ``img_shape`` (height, width); the camera is then panned (and, if the action would not
    fit, zoomed out) so that the skeletons sit at a random place inside the image. Keypoints get
    Gaussian pixel noise (sigma 0.5-3 px); a random share (0-8 %) of them is dropped (coordinates
    0, 0 and score 0); the others have scores drawn from U(0.6, 1), like a 2D pose estimator's.

Classes (:data:`DEMO_CLASSES`; label = index)
    - arms only (legs at rest): ``wave_left_hand``, ``wave_right_hand``, ``clap``, ``arm_circles``;
    - legs only (arms at rest): ``kick_left``, ``kick_right``, ``squat``, ``march_in_place``;
    - two persons (M = 2, the actor first): ``handshake``, ``hug`` (walk up to each other, embrace),
      ``push`` (one steps up and shoves, the other staggers back).

    Arm classes share the distribution of everything but the arms, and leg classes that of everything
    but the legs (and, for the squat, the torso that sinks with them), so a model has to look at the
    right body region: the situation body-region masking (paper §3.1.2) is meant for. Per clip the
    speed, phase, amplitude, onset, body, camera and length (30-90 frames at 30 fps) are random.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..skeleton import get_layout

DEMO_CLASSES = (
    "wave_left_hand",
    "wave_right_hand",
    "clap",
    "arm_circles",
    "kick_left",
    "kick_right",
    "squat",
    "march_in_place",
    "handshake",
    "hug",
    "push",
)
ARM_CLASSES = DEMO_CLASSES[0:4]
LEG_CLASSES = DEMO_CLASSES[4:8]
TWO_PERSON_CLASSES = DEMO_CLASSES[8:11]

FPS = 30.0
IMG_SHAPE = (480, 640)
MIN_FRAMES, MAX_FRAMES = 30, 90

_JOINTS = get_layout("coco17").joints  # _Person.joints() emits this order
assert _JOINTS[:5] == ("nose", "left_eye", "right_eye", "left_ear", "right_ear") and _JOINTS[5::2] == tuple(
    f"left_{j}" for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
)
_SIDES = (("left", 1.0), ("right", -1.0))
_RAD = np.pi / 180.0


# ----------------------------------------------------------------------------------------------------------
# small vectorised helpers (angles in radians, arrays over frames T)


def _rx(a: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(*a.shape, 3, 3)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*a.shape, 3, 3)


def _direction(elev: np.ndarray, azim: np.ndarray) -> np.ndarray:
    """Unit vectors [T, 3] of a limb segment: ``elev`` from straight down (0) through horizontal (pi/2)
    to straight up (pi); ``azim`` around the vertical from forward (0) to lateral (pi/2, outwards)."""
    se = np.sin(elev)
    return np.stack([se * np.sin(azim), -np.cos(elev), se * np.cos(azim)], -1)


def _ik(target: np.ndarray, pole: np.ndarray, l1: float, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone inverse kinematics: (elbow, end) [T, 3] reaching for ``target`` from the origin, the
    middle joint bent towards ``pole``. Targets out of reach are approached as far as possible."""
    dist = np.linalg.norm(target, axis=-1, keepdims=True)
    n = target / np.maximum(dist, 1e-6)
    dist = np.clip(dist, abs(l1 - l2) + 1e-3, (l1 + l2) * 0.999)
    along = (l1 * l1 - l2 * l2 + dist * dist) / (2 * dist)
    height = np.sqrt(np.maximum(l1 * l1 - along * along, 0.0))
    pole = pole + np.array([0.01, -0.01, -0.01])  # never exactly along the target
    perp = pole - np.sum(pole * n, -1, keepdims=True) * n
    perp /= np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), 1e-6)
    return along * n + height * perp, dist * n


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _ramp(t: np.ndarray, start: float, duration: float) -> np.ndarray:
    return _smoothstep((t - start) / max(duration, 1e-3))


def _wobble(rng: np.random.Generator, t: np.ndarray, amp: np.ndarray, max_hz: float = 0.6) -> np.ndarray:
    """Slow random curves [N, T] (three sinusoids each) of typical sizes ``amp`` [N]."""
    n = len(amp)
    freq = rng.uniform(0.05, max_hz, (n, 3, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 3, 1))
    size = rng.normal(0, 1 / np.sqrt(1.5), (n, 3, 1)) * np.asarray(amp)[:, None, None]
    return (size * np.sin(2 * np.pi * freq * t + phase)).sum(1)


# ----------------------------------------------------------------------------------------------------------
# the body


@dataclass
class _Body:
    height: float
    thigh: float
    shank: float
    ankle: float  # ankle joint above the ground
    torso: float  # hip level to neck
    shoulder_w: float  # half width
    shoulder_drop: float  # shoulders below the neck
    hip_w: float  # half width
    upper: float
    fore: float
    face: np.ndarray  # [5, 3] nose, eyes, ears relative to the neck

    @classmethod
    def sample(cls, rng: np.random.Generator) -> _Body:
        h = rng.uniform(1.5, 1.95)
        lens = h * rng.normal(1.0, 0.04, 5).clip(0.9, 1.1) * np.array([0.245, 0.246, 0.315, 0.186, 0.146])
        wide = h * np.clip(rng.normal(1.0, 0.07), 0.85, 1.15)
        hs = h * rng.normal(1.0, 0.05)
        face = hs * np.array(
            [[0.0, 0.070, 0.060], [0.018, 0.085, 0.048], [-0.018, 0.085, 0.048], [0.045, 0.078, 0.0],
             [-0.045, 0.078, 0.0]]
        )
        return cls(h, lens[0], lens[1], 0.04 * h, lens[2], 0.115 * wide, 0.025 * h, 0.065 * wide, lens[3],
                   lens[4], face)

    @property
    def scale(self) -> float:
        return self.height / 1.75

    @property
    def shoulder_height(self) -> float:
        return self.ankle + self.shank + self.thigh + self.torso - self.shoulder_drop


# idle angles (degrees): low and high end of the mean, size of the slow wobble
_IDLE = np.array(
    [[-3, 5, 1.5], [0, 0, 3], [-12, 12, 6], [-3, 12, 3]]  # torso lean, twist, head yaw, pitch
    + [[4, 14, 3], [40, 100, 5], [5, 25, 4], [-10, 30, 5]] * 2  # upper arm elev, azim, forearm elev, azim
    + [[1, 5, 1], [0, 3, 1], [60, 110, 0]] * 2  # thigh elev, shank elev, leg azim
)


class _Person:
    """One body and its motion over the frames ``t`` (seconds); starts out standing idle."""

    def __init__(self, rng: np.random.Generator, t: np.ndarray):
        self.t = t
        self.body = b = _Body.sample(rng)
        self.root = np.zeros((len(t), 3))  # pelvis displacement in the body frame (x, z used)
        # idle posture: each angle's mean is drawn from U(low, high), plus a wobble of the given size
        low, high, size = _IDLE.T * _RAD
        angle = rng.uniform(low, high)[:, None] + _wobble(rng, t, size)
        self.lean, self.twist, self.head_yaw, self.head_pitch = angle[:4]
        self.arm_angles: dict[str, tuple[np.ndarray, ...]] = {}
        self.arm: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # elbow, wrist rel. shoulder (torso frame)
        self.leg: dict[str, list[np.ndarray]] = {}  # thigh elev, azim, shank elev, azim
        for k, (side, _) in enumerate(_SIDES):
            self.arm_angles[side] = tuple(angle[4 + 4 * k: 8 + 4 * k])
            self.arm[side] = self._chain(*self.arm_angles[side], b.upper, b.fore)
            thigh, shank, azim = angle[12 + 3 * k: 15 + 3 * k]
            self.leg[side] = [thigh, azim, shank, azim]
        # resting arms: hanging (as above), hands on the hips, arms crossed or hands behind the back
        self.posture = int(rng.choice(4, p=[0.55, 0.15, 0.15, 0.15]))
        if self.posture:
            sc, drop = b.scale, b.torso - b.shoulder_drop
            for side, _ in _SIDES:
                target, pole = {
                    1: ((b.hip_w - b.shoulder_w + 0.04 * sc, 0.12 * sc - drop, 0.0), (1.0, 0.0, -0.3)),
                    2: ((-b.shoulder_w - 0.05 * sc, -0.28 * sc if side == "left" else -0.32 * sc, 0.2 * sc),
                        (0.3, -1.0, 0.0)),
                    3: ((0.05 * sc - b.shoulder_w, 0.1 * sc - drop, -0.15 * sc), (0.5, -0.5, -1.0)),
                }[self.posture]
                sway = self.arm[side][1] - self.arm[side][1].mean(0)  # keep some of the hanging wobble
                self.arm[side] = _ik(np.asarray(target) + 0.3 * sway, np.broadcast_to(pole, sway.shape),
                                     b.upper, b.fore)
        # a relaxed stance: weight on one leg, the other knee slightly bent
        if rng.random() < 0.35:
            bend = rng.uniform(8, 20) * _RAD
            self.leg_lift(_SIDES[rng.integers(2)][0], np.full(len(t), bend / 2), np.full(len(t), bend))
        self.idle_arm = dict(self.arm)

    @staticmethod
    def _chain(e1, a1, e2, a2, l1, l2) -> tuple[np.ndarray, np.ndarray]:
        elbow = l1 * _direction(e1, a1)
        return elbow, elbow + l2 * _direction(e2, a2)

    # --- arm motions (side-canonical: +x points outwards, away from the body's midline)

    def arm_by_angles(self, side: str, e1, a1, e2, a2, env: np.ndarray) -> None:
        """Set an arm from segment angles, blended in from the resting arm by ``env`` [T] in 0..1
        (in angle space from a hanging arm, else by moving the wrist)."""
        if self.posture == 0:
            idle = self.arm_angles[side]
            mixed = [i + env * (a - i) for i, a in zip(idle, (e1, a1, e2, a2), strict=True)]
            self.arm[side] = self._chain(*mixed, self.body.upper, self.body.fore)
        else:
            elbow, wrist = self._chain(e1, a1, e2, a2, self.body.upper, self.body.fore)
            self.arm_reach(side, wrist, elbow, env)

    def arm_reach(self, side: str, target: np.ndarray, pole, env: np.ndarray) -> None:
        """Move a wrist from its idle place towards ``target`` [T, 3] (relative to the shoulder) by
        ``env``; the elbow follows by inverse kinematics, bent towards ``pole``."""
        e = env[:, None]
        idle_elbow, idle_wrist = self.idle_arm[side]
        wrist = idle_wrist + e * (target - idle_wrist)
        idle_pole = idle_elbow / np.linalg.norm(idle_elbow, axis=-1, keepdims=True)
        pole = idle_pole + e * (np.asarray(pole) - idle_pole)
        self.arm[side] = _ik(wrist, pole, self.body.upper, self.body.fore)

    # --- leg motions

    def leg_lift(self, side: str, thigh: np.ndarray, knee: np.ndarray) -> None:
        """Swing a leg forward by ``thigh`` (elevation, may be negative = backwards) with the knee bent
        by ``knee``; the leg turns from its idle azimuth into the sagittal plane as it lifts."""
        e1, a1, e2, _ = self.leg[side]
        turn = 1 - np.clip(np.abs(thigh) * 4, 0, 1)
        azim = a1 * turn
        self.leg[side] = [e1 + thigh, azim, e2 + thigh - knee, azim]

    def walk(self, speed: np.ndarray, rng: np.random.Generator) -> None:
        """Walking legs for a forward speed profile [T] (m/s) of the pelvis."""
        v = np.abs(speed) / self.body.scale
        freq = 0.8 + 0.6 * np.clip(v, 0, 1.5)
        theta = 2 * np.pi * np.cumsum(freq) / FPS + rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(20, 30) * _RAD * np.clip(v / 0.9, 0, 1)
        knee = rng.uniform(35, 55) * _RAD * np.clip(v / 0.9, 0, 1)
        sign = np.sign(speed + 1e-9)
        for side, s in _SIDES:
            # the thigh swings s * sin(theta); the knee bends while it swings forward (s * cos > 0)
            self.leg_lift(side, sign * amp * s * np.sin(theta), knee * np.clip(s * np.cos(theta), 0, 1))

    # --- forward kinematics

    def joints(self) -> np.ndarray:
        """COCO-17 joint positions [T, 17, 3] in the body frame, standing on the ground (y = 0)."""
        b = self.body
        mirror = np.array([[[1.0, 1.0, 1.0]], [[-1.0, 1.0, 1.0]]])  # left, right: [2, 1, 3]
        # legs (pelvis frame)
        e1, a1, e2, a2 = np.stack([np.stack(self.leg["left"]), np.stack(self.leg["right"])], 1)  # [2, T]
        hip = mirror * np.array([b.hip_w, 0.0, 0.0])  # [2, 1, 3]
        knee = hip + mirror * b.thigh * _direction(e1, a1)
        ankle = knee + mirror * b.shank * _direction(e2, a2)
        # torso frame: shoulders, elbows, wrists, neck, all rotated at once
        shoulder = mirror * np.array([b.shoulder_w, b.torso - b.shoulder_drop, 0.0])
        elbow = shoulder + mirror * np.stack([self.arm["left"][0], self.arm["right"][0]])
        wrist = shoulder + mirror * np.stack([self.arm["left"][1], self.arm["right"][1]])
        n = len(self.t)
        upper = np.concatenate([np.broadcast_to(shoulder, (2, n, 3)), elbow, wrist]).transpose(1, 0, 2)
        upper = np.concatenate([upper, np.broadcast_to([[[0.0, b.torso, 0.0]]], (n, 1, 3))], 1)  # [T, 7, 3]
        torso = _ry(self.twist) @ _rx(self.lean)
        upper = upper @ torso.transpose(0, 2, 1)
        head = torso @ _ry(self.head_yaw) @ _rx(self.head_pitch)
        face = upper[:, 6:7] + b.face @ head.transpose(0, 2, 1)  # [T, 5, 3]
        # COCO order: face 0-4, shoulders 5-6, elbows 7-8, wrists 9-10, hips 11-12, knees 13-14, ankles 15-16
        lower = np.concatenate([np.broadcast_to(hip, (2, n, 3)), knee, ankle]).transpose(1, 0, 2)
        out = np.concatenate([face, upper[:, :6], lower], 1) + self.root[:, None]
        out[:, :, 1] += (b.ankle - out[:, 15:17, 1].min(1))[:, None]
        return out


# ----------------------------------------------------------------------------------------------------------
# the classes


@dataclass
class _Style:
    """Per-clip randomness shared by the motions: speed and amplitude factors, phase, onset (s)."""

    speed: float
    amp: float
    phase: float
    start: float

    @classmethod
    def sample(cls, rng: np.random.Generator, duration: float) -> _Style:
        return cls(rng.uniform(0.75, 1.35), rng.uniform(0.7, 1.3), rng.uniform(0, 2 * np.pi),
                   rng.uniform(0, 0.25) * duration)

    def theta(self, t: np.ndarray, hz: float) -> np.ndarray:
        return 2 * np.pi * hz * self.speed * t + self.phase


def _wave(p: _Person, rng, st: _Style, side: str) -> None:
    t = p.t
    env = _ramp(t, st.start, rng.uniform(0.25, 0.5))
    e1 = rng.uniform(95, 135) * _RAD
    a1 = rng.uniform(55, 100) * _RAD
    swing = rng.uniform(20, 40) * _RAD * st.amp * np.sin(st.theta(t, rng.uniform(1.5, 2.8)))
    e2 = rng.uniform(160, 175) * _RAD + swing
    p.arm_by_angles(side, e1, a1, e2, a1 + rng.uniform(-10, 10) * _RAD, env)


def _clap(p: _Person, rng, st: _Style) -> None:
    t, b, s = p.t, p.body, p.body.scale
    env = _ramp(t, st.start, rng.uniform(0.25, 0.5))
    gap = 0.5 * (1 + np.cos(st.theta(t, rng.uniform(1.5, 3.0))))  # 1 = hands apart, 0 = together
    spread = rng.uniform(0.12, 0.28) * s * st.amp
    y, z = -rng.uniform(0.12, 0.32) * s, rng.uniform(0.25, 0.42) * s
    for side, _ in _SIDES:
        x = -(b.shoulder_w - 0.03 * s) + gap * spread
        target = np.stack([x, np.full_like(t, y), np.full_like(t, z)], -1)
        p.arm_reach(side, target, [1.0, -0.6, -0.4], env)


def _arm_circles(p: _Person, rng, st: _Style) -> None:
    t = p.t
    env = _ramp(t, st.start, rng.uniform(0.25, 0.5))
    theta = st.theta(t, rng.uniform(0.6, 1.3)) * rng.choice([-1.0, 1.0])
    size = rng.uniform(15, 35) * _RAD * st.amp
    e1 = rng.uniform(80, 95) * _RAD + size * np.cos(theta)
    a1 = rng.uniform(75, 95) * _RAD + size * np.sin(theta)
    bend = rng.uniform(0, 10) * _RAD
    for side, _ in _SIDES:
        p.arm_by_angles(side, e1, a1, e1 + bend, a1, env)


def _kick(p: _Person, rng, st: _Style, side: str) -> None:
    t = p.t
    env = _ramp(t, st.start, 0.2)
    pulse = np.clip(np.sin(st.theta(t, rng.uniform(0.55, 0.9))), 0, 1) ** 1.5 * env
    chamber = rng.uniform(50, 80) * _RAD * 4 * pulse * (1 - pulse)  # knee bent half-way up, straight on top
    p.leg_lift(side, rng.uniform(55, 85) * _RAD * st.amp * pulse, chamber)
    p.lean -= rng.uniform(5, 15) * _RAD * pulse


def _squat(p: _Person, rng, st: _Style) -> None:
    t, b = p.t, p.body
    env = _ramp(t, st.start, 0.3)
    depth = 0.5 * (1 - np.cos(st.theta(t, rng.uniform(0.35, 0.7)))) * env
    alpha = np.minimum(rng.uniform(60, 95) * st.amp, 100) * _RAD * depth
    shank = np.arcsin(np.clip(b.thigh * np.sin(alpha) / b.shank, -1, 1))
    for side, _ in _SIDES:
        e1, a1, e2, a2 = p.leg[side]
        knees_out = rng.uniform(0, 25) * _RAD
        azim = a1 + (knees_out - a1) * np.clip(depth * 4, 0, 1)
        p.leg[side] = [e1 + alpha, azim, e2 - shank, azim]
    p.lean += rng.uniform(0.4, 0.6) * alpha
    p.head_pitch -= 0.3 * alpha


def _march(p: _Person, rng, st: _Style) -> None:
    t = p.t
    env = _ramp(t, st.start, 0.3)
    theta = st.theta(t, rng.uniform(0.7, 1.2))
    lift = rng.uniform(40, 70) * _RAD * st.amp * env
    ratio = rng.uniform(1.0, 1.3)
    for side, s in _SIDES:
        thigh = lift * np.clip(s * np.sin(theta), 0, 1)
        p.leg_lift(side, thigh, thigh * ratio)


def _handshake(a: _Person, b: _Person, rng, st: _Style) -> tuple[np.ndarray, np.ndarray]:
    t = a.t
    meet = rng.uniform(0.59, 0.66) * (a.body.height + b.body.height) / 2
    reach = min(
        np.sqrt(max((p.body.upper + p.body.fore) ** 2 - (p.body.shoulder_height - meet) ** 2
                    - p.body.shoulder_w ** 2, 0.04))
        for p in (a, b)
    )
    gap = 2 * reach * rng.uniform(0.85, 0.97)
    env = _ramp(t, st.start, rng.uniform(0.4, 0.7))
    pump = 0.035 * st.amp * np.sin(st.theta(t, rng.uniform(1.5, 2.5))) * env
    for p in (a, b):
        target = np.stack([np.full_like(t, -p.body.shoulder_w + 0.02), meet - p.body.shoulder_height + pump,
                           np.full_like(t, gap / 2)], -1)
        p.arm_reach("right", target, [0.5, -1.0, 0.0], env)
        p.lean += rng.uniform(0, 6) * _RAD * env
    return np.full_like(t, gap), np.zeros_like(t)


def _hug(a: _Person, b: _Person, rng, st: _Style) -> tuple[np.ndarray, np.ndarray]:
    t = a.t
    s = (a.body.scale + b.body.scale) / 2
    start_gap, end_gap = rng.uniform(1.6, 2.4) * s, rng.uniform(0.30, 0.40) * s
    t_end = t[-1] * rng.uniform(0.35, 0.55)
    closing = _ramp(t, st.start, max(t_end - st.start, 0.3))
    gap = start_gap + (end_gap - start_gap) * closing
    speed = -np.gradient(gap) * FPS / 2  # each walks half the way
    arms = _ramp(t, st.start + 0.7 * (t_end - st.start), rng.uniform(0.4, 0.7))
    high = rng.choice(["left", "right"])
    for p in (a, b):
        p.root[:, 2] = (start_gap - gap) / 2
        p.walk(speed, rng)
        for side, _ in _SIDES:
            y = -rng.uniform(0.0, 0.1) * s if side == high else -rng.uniform(0.25, 0.35) * s
            x = -p.body.shoulder_w + rng.uniform(0.0, 0.15) * s
            target = np.stack([np.full_like(t, x), np.full_like(t, y), gap + rng.uniform(0.05, 0.15) * s], -1)
            p.arm_reach(side, target, [1.0, -0.3, 0.0], arms)
        p.lean += rng.uniform(4, 12) * _RAD * arms
        p.head_yaw += (30 if high == "left" else -30) * _RAD * arms
    return np.full_like(t, start_gap), np.zeros_like(t)


def _push(a: _Person, b: _Person, rng, st: _Style) -> tuple[np.ndarray, np.ndarray]:
    t = a.t
    s = (a.body.scale + b.body.scale) / 2
    start_gap, contact = rng.uniform(1.0, 1.4) * s, rng.uniform(0.55, 0.7) * s
    t_push = max(t[-1] * rng.uniform(0.35, 0.6), st.start + 0.4)
    approach = _ramp(t, st.start, max(t_push - st.start - 0.1, 0.3)) * (start_gap - contact)
    shove = _ramp(t, t_push - 0.15, rng.uniform(0.12, 0.25)) * (1 - _ramp(t, t_push + 0.5, 0.5) * 0.6)
    recoil = _ramp(t, t_push + 0.05, rng.uniform(0.3, 0.5)) * rng.uniform(0.3, 0.7) * s * st.amp
    a.root[:, 2] = approach
    b.root[:, 2] = -recoil
    a.walk(np.gradient(approach) * FPS, rng)
    b.walk(-np.gradient(recoil) * FPS, rng)
    gap = start_gap - approach + recoil
    for side, _ in _SIDES:
        x = -a.body.shoulder_w * rng.uniform(0.2, 0.5)
        y = -rng.uniform(0.1, 0.25) * s
        target = np.stack([np.full_like(t, x), np.full_like(t, y), np.full_like(t, contact - 0.05 * s)], -1)
        a.arm_reach(side, target, [0.6, -1.0, 0.0], shove)
    a.lean += rng.uniform(10, 20) * _RAD * shove
    hit = _ramp(t, t_push, 0.15) * (1 - _ramp(t, t_push + 0.4, 0.6))
    b.lean -= rng.uniform(10, 20) * _RAD * hit
    b.head_pitch -= rng.uniform(5, 15) * _RAD * hit
    for side, _ in _SIDES:
        e1, a1, e2, a2 = b.arm_angles[side]
        b.arm_by_angles(side, e1 + 0.6, a1, e2 + 0.9, a2, hit)
    return np.full_like(t, start_gap), gap


def _single(label: str, p: _Person, rng, st: _Style) -> None:
    if label in ("wave_left_hand", "wave_right_hand"):
        _wave(p, rng, st, label.split("_")[1])
    elif label == "clap":
        _clap(p, rng, st)
    elif label == "arm_circles":
        _arm_circles(p, rng, st)
    elif label in ("kick_left", "kick_right"):
        _kick(p, rng, st, label.split("_")[1])
    elif label == "squat":
        _squat(p, rng, st)
    elif label == "march_in_place":
        _march(p, rng, st)
    else:  # pragma: no cover - guarded by DEMO_CLASSES
        raise ValueError(label)


_PAIRS = {"handshake": _handshake, "hug": _hug, "push": _push}


# ----------------------------------------------------------------------------------------------------------
# scene, camera, detector noise


def _scene(label: int, rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """World positions [M, T, 17, 3] (y up) of the clip's persons."""
    name = DEMO_CLASSES[label]
    st = _Style.sample(rng, float(t[-1]))
    if name not in _PAIRS:
        p = _Person(rng, t)
        _single(name, p, rng, st)
        return (_place(p.joints(), np.pi + rng.uniform(-80, 80) * _RAD, np.zeros(3)))[None]
    a, b = _Person(rng, t), _Person(rng, t)
    start_gap, _ = _PAIRS[name](a, b, rng, st)
    d = start_gap[0] / 2
    world = np.stack([_place(a.joints(), np.pi / 2, np.array([-d, 0, 0])),
                      _place(b.joints(), -np.pi / 2, np.array([d, 0, 0]))])
    view = rng.uniform(-50, 50) * _RAD + np.pi * rng.integers(2)
    return world @ _ry(np.array([view]))[0].T


def _place(points: np.ndarray, facing: float, position: np.ndarray) -> np.ndarray:
    return points @ _ry(np.array([facing]))[0].T + position


def _camera(world: np.ndarray, rng: np.random.Generator, img_shape: tuple[int, int]) -> np.ndarray:
    """Pinhole projection of ``world`` [..., 3] to pixels [..., 2] of an image (height, width)."""
    h, w = img_shape
    dist = rng.uniform(3.5, 9.0)
    cam_h = rng.uniform(1.0, 2.2)
    pitch = np.arctan2(cam_h - 0.9, dist) + rng.normal(0, 2) * _RAD
    focal = rng.uniform(0.8, 1.2) * w
    rel = world - np.array([0.0, cam_h, -dist])
    right = np.array([-1.0, 0.0, 0.0])
    up = np.array([0.0, np.cos(pitch), np.sin(pitch)])
    fwd = np.array([0.0, -np.sin(pitch), np.cos(pitch)])
    depth = np.maximum(rel @ fwd, 0.1)
    px = np.stack([focal * (rel @ right) / depth, -focal * (rel @ up) / depth], -1)
    # pan (and zoom out if needed) so the whole clip is in view at a random place
    lo, hi = px.reshape(-1, 2).min(0), px.reshape(-1, 2).max(0)
    size = np.array([w, h], dtype=float) - 16
    zoom = min(1.0, *(size / np.maximum(hi - lo, 1e-6)))
    px = (px - (lo + hi) / 2) * zoom
    half = (hi - lo) / 2 * zoom
    centre = rng.uniform(half + 8, np.array([w, h]) - half - 8)
    return px + centre


def _clip(label: int, rng: np.random.Generator, img_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    frames = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
    t = np.arange(frames) / FPS
    kp = _camera(_scene(label, rng, t), rng, img_shape)
    kp += rng.normal(0, rng.uniform(0.5, 3.0), kp.shape)
    score = rng.uniform(0.6, 1.0, kp.shape[:3])
    dropped = rng.random(kp.shape[:3]) < rng.uniform(0, 0.08)
    kp[dropped] = 0.0
    score[dropped] = 0.0
    return kp.astype(np.float32), score.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# public API


def make_demo_annotations(
    num_per_class: int = 40,
    seed: int = 0,
    test_fraction: float = 0.25,
    *,
    img_shape: tuple[int, int] = IMG_SHAPE,
) -> dict:
    """Generate the demo set as a PYSKL annotation dict ``{'split': {'train', 'test'}, 'annotations'}``.

    ``num_per_class`` clips of each of :data:`DEMO_CLASSES`; the split is stratified per class (with two
    or more clips a class, both splits hold at least one). Clip ``i`` of a class is the same whatever
    ``num_per_class`` is; ``frame_dir`` is ``demo_NNNNN`` numbered in class order.
    """
    if num_per_class < 1:
        raise ValueError(f"num_per_class must be >= 1, got {num_per_class}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    img_shape = (int(img_shape[0]), int(img_shape[1]))
    split_rng = np.random.default_rng([seed, 1_000_003])
    annotations, train, test = [], [], []
    n_test = int(round(num_per_class * test_fraction))
    if num_per_class >= 2 and test_fraction > 0:
        n_test = min(max(n_test, 1), num_per_class - 1)
    for label in range(len(DEMO_CLASSES)):
        is_test = np.zeros(num_per_class, dtype=bool)
        is_test[split_rng.permutation(num_per_class)[:n_test]] = True
        for i in range(num_per_class):
            kp, score = _clip(label, np.random.default_rng([seed, label, i]), img_shape)
            name = f"demo_{label * num_per_class + i:05d}"
            annotations.append({
                "frame_dir": name,
                "label": label,
                "total_frames": int(kp.shape[1]),
                "img_shape": img_shape,
                "original_shape": img_shape,
                "keypoint": kp,
                "keypoint_score": score,
            })
            (test if is_test[i] else train).append(name)
    return {"split": {"train": train, "test": test}, "annotations": annotations}


def write_demo_pickle(path: str | Path, num_per_class: int = 40, seed: int = 0) -> Path:
    """Write :func:`make_demo_annotations` to ``path`` (pickle protocol 4, written atomically, parent
    folders created) and the class names, one a line, to ``label_map.txt`` beside it."""
    from .annotations import save_annotations

    data = make_demo_annotations(num_per_class=num_per_class, seed=seed)
    path = save_annotations(path, data["annotations"], data["split"])
    (path.parent / "label_map.txt").write_text("\n".join(DEMO_CLASSES) + "\n")
    return path
