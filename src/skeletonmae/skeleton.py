"""Skeleton layouts: joint names, bones, centre joint, the six body regions, adjacency (paper §3.1.1).

The paper builds one graph per frame, ``G = (V, A, X)``, whose vertices are the joints and whose
adjacency ``A`` has ``A_ij = 1`` where joints i and j are physically connected. It divides the joints
into R = 6 body regions V_0..V_5 (head, torso, left arm, right arm, left leg, right leg; Fig. 2d) that
body-region masking draws from.

``coco17`` (the default) follows the paper's Fig. 2d, which draws a shoulder-shoulder and a hip-hip edge;
``coco17_pyskl`` is the same layout with PYSKL's COCO graph, which has neither (design note 3).

Joint mappings (:func:`joint_mapping`, :func:`map_joints`) carry data recorded in one layout into
another; target joints without a counterpart get zero coordinates and score 0.

A layout of one's own is a YAML file (:func:`read_layout_file`, the format of :meth:`Layout.to_dict`), accepted
wherever a layout name is; a config keeps its whole definition (:func:`layout_setting`), so a checkpoint trained
on it loads without the file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import breadth_first_order

from .errors import ConfigError

REGION_NAMES = ("head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")


@dataclass(frozen=True)
class Layout:
    """A skeleton layout.

    Attributes:
        name: registry name (``coco17``, ``penn13``, ...).
        joints: joint names in data order; V = ``len(joints)``.
        bones: undirected edges ``(i, j)`` between physically connected joints.
        center: index of the joint used to centre 3D skeletons.
        regions: the six body regions V_0..V_5 in :data:`REGION_NAMES` order, as joint indices.
        twins: left-right pairs ``(i, j)`` swapped in mirror images; None pairs ``left_x`` with ``right_x``.
    """

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    center: int
    regions: tuple[tuple[int, ...], ...]
    twins: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        v = len(self.joints)
        if len(self.regions) != len(REGION_NAMES):
            raise ValueError(f"layout {self.name}: needs {len(REGION_NAMES)} regions")
        flat = sorted(j for region in self.regions for j in region)
        if flat != list(range(v)):
            raise ValueError(f"layout {self.name}: regions must partition the {v} joints, got {flat}")
        if any(not (0 <= i < v and 0 <= j < v and i != j) for i, j in self.bones):
            raise ValueError(f"layout {self.name}: a bone names a joint outside 0..{v - 1}")
        if not 0 <= self.center < v:
            raise ValueError(f"layout {self.name}: centre joint {self.center} outside 0..{v - 1}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def adjacency(self, self_loops: bool = False) -> np.ndarray:
        """The symmetric 0/1 adjacency matrix ``A`` [V, V] (float32), with ``I`` added if asked."""
        v = self.num_joints
        a = np.zeros((v, v), dtype=np.float32)
        i, j = np.asarray(self.bones).T
        a[i, j] = a[j, i] = 1.0
        if self_loops:
            a += np.eye(v, dtype=np.float32)
        return a

    def parents(self) -> np.ndarray:
        """Each joint's parent in the breadth-first tree of the bones from the centre joint, shape [V].

        The centre is its own parent; a joint no bone reaches from the centre is its own parent too.
        """
        _, parent = breadth_first_order(self.adjacency(), self.center, directed=False)
        return np.where(parent < 0, np.arange(self.num_joints), parent)  # scipy marks the root and unreached < 0

    def twin_pairs(self) -> tuple[tuple[int, int], ...]:
        """The left-right pairs: :attr:`twins`, or where it is None every ``(left_x, right_x)`` both joints of
        which the layout has."""
        if self.twins is not None:
            return self.twins
        index = {name: i for i, name in enumerate(self.joints)}
        return tuple((i, index["right_" + n[5:]]) for i, n in enumerate(self.joints)
                     if n.startswith("left_") and "right_" + n[5:] in index)

    def mirror(self) -> np.ndarray:
        """For each joint, the index of its left-right twin (:meth:`twin_pairs`), or itself, shape [V]."""
        twin = np.arange(self.num_joints)
        pairs = np.asarray(self.twin_pairs(), dtype=np.int64).reshape(-1, 2)
        twin[pairs[:, 0]], twin[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
        return twin

    def to_dict(self) -> dict:
        """The layout by joint names, as a layout file holds it (:func:`layout_from_dict` reads it back)."""
        j = self.joints
        return {
            "name": self.name,
            "joints": list(j),
            "bones": [[j[a], j[b]] for a, b in self.bones],
            "center": j[self.center],
            "regions": {r: [j[i] for i in ids] for r, ids in zip(REGION_NAMES, self.regions, strict=True)},
            "twins": [[j[a], j[b]] for a, b in self.twin_pairs()],
        }

    def torso(self) -> tuple[int, int, int, int] | None:
        """Indices of ``(left_shoulder, right_shoulder, left_hip, right_hip)``, found by name; None if any is missing.

        Every built-in layout has the four; they measure a body's size (:func:`body_measure`)."""
        index = {name: i for i, name in enumerate(self.joints)}
        names = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
        if not all(n in index for n in names):
            return None
        ls, rs, lh, rh = (index[n] for n in names)
        return ls, rs, lh, rh

    def region_of_joint(self) -> np.ndarray:
        """For each joint, the index (0..5) of its body region, shape [V]."""
        out = np.empty(self.num_joints, dtype=np.int64)
        for r, joints in enumerate(self.regions):
            out[list(joints)] = r
        return out


def _layout(name, joints, bones, center, regions) -> Layout:
    names = tuple(joints.split())
    index = {n: i for i, n in enumerate(names)}

    def ids(words: str) -> tuple[int, ...]:
        return tuple(index[w] for w in words.split())

    return Layout(
        name=name,
        joints=names,
        bones=tuple((index[a], index[b]) for a, b in (pair.split("-") for pair in bones.split())),
        center=index[center],
        regions=tuple(ids(r) for r in regions),
    )


_COCO_JOINTS = (
    "nose left_eye right_eye left_ear right_ear left_shoulder right_shoulder left_elbow right_elbow "
    "left_wrist right_wrist left_hip right_hip left_knee right_knee left_ankle right_ankle"
)
_COCO_BONES_PYSKL = (
    "left_ankle-left_knee left_knee-left_hip right_ankle-right_knee right_knee-right_hip "
    "left_hip-left_shoulder right_hip-right_shoulder left_wrist-left_elbow left_elbow-left_shoulder "
    "right_wrist-right_elbow right_elbow-right_shoulder left_shoulder-nose right_shoulder-nose "
    "left_eye-nose left_ear-left_eye right_eye-nose right_ear-right_eye"
)
_COCO_REGIONS = (
    "nose left_eye right_eye left_ear right_ear",
    "left_shoulder right_shoulder left_hip right_hip",
    "left_elbow left_wrist",
    "right_elbow right_wrist",
    "left_knee left_ankle",
    "right_knee right_ankle",
)
_KINECT_JOINTS = (
    "hip_center spine shoulder_center head left_shoulder left_elbow left_wrist left_hand "
    "right_shoulder right_elbow right_wrist right_hand left_hip left_knee left_ankle left_foot "
    "right_hip right_knee right_ankle right_foot"
)
_KINECT_BONES = (
    "spine-hip_center shoulder_center-spine head-shoulder_center left_shoulder-shoulder_center "
    "left_elbow-left_shoulder left_wrist-left_elbow left_hand-left_wrist "
    "right_shoulder-shoulder_center right_elbow-right_shoulder right_wrist-right_elbow "
    "right_hand-right_wrist left_hip-hip_center left_knee-left_hip left_ankle-left_knee "
    "left_foot-left_ankle right_hip-hip_center right_knee-right_hip right_ankle-right_knee "
    "right_foot-right_ankle"
)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        _layout(
            "coco17",
            _COCO_JOINTS,
            _COCO_BONES_PYSKL + " left_shoulder-right_shoulder left_hip-right_hip",
            "nose",
            _COCO_REGIONS,
        ),
        _layout("coco17_pyskl", _COCO_JOINTS, _COCO_BONES_PYSKL, "nose", _COCO_REGIONS),
        _layout(
            "penn13",
            "head left_shoulder right_shoulder left_elbow right_elbow left_wrist right_wrist "
            "left_hip right_hip left_knee right_knee left_ankle right_ankle",
            "head-left_shoulder head-right_shoulder left_shoulder-right_shoulder "
            "left_shoulder-left_elbow left_elbow-left_wrist right_shoulder-right_elbow "
            "right_elbow-right_wrist left_shoulder-left_hip right_shoulder-right_hip "
            "left_hip-right_hip left_hip-left_knee left_knee-left_ankle right_hip-right_knee "
            "right_knee-right_ankle",
            "head",
            (
                "head",
                "left_shoulder right_shoulder left_hip right_hip",
                "left_elbow left_wrist",
                "right_elbow right_wrist",
                "left_knee left_ankle",
                "right_knee right_ankle",
            ),
        ),
        _layout(
            "jhmdb15",
            "neck belly face right_shoulder left_shoulder right_hip left_hip right_elbow left_elbow "
            "right_knee left_knee right_wrist left_wrist right_ankle left_ankle",
            "neck-face neck-belly neck-right_shoulder neck-left_shoulder right_shoulder-right_elbow "
            "right_elbow-right_wrist left_shoulder-left_elbow left_elbow-left_wrist "
            "belly-right_hip belly-left_hip right_hip-right_knee right_knee-right_ankle "
            "left_hip-left_knee left_knee-left_ankle",
            "belly",
            (
                "face neck",
                "belly right_shoulder left_shoulder right_hip left_hip",
                "left_elbow left_wrist",
                "right_elbow right_wrist",
                "left_knee left_ankle",
                "right_knee right_ankle",
            ),
        ),
        _layout(
            "kinect20",
            _KINECT_JOINTS,
            _KINECT_BONES,
            "spine",
            (
                "shoulder_center head",
                "hip_center spine left_shoulder right_shoulder left_hip right_hip",
                "left_elbow left_wrist left_hand",
                "right_elbow right_wrist right_hand",
                "left_knee left_ankle left_foot",
                "right_knee right_ankle right_foot",
            ),
        ),
        _layout(
            "florence15",
            "head neck spine left_shoulder left_elbow left_wrist right_shoulder right_elbow "
            "right_wrist left_hip left_knee left_ankle right_hip right_knee right_ankle",
            "head-neck neck-spine neck-left_shoulder left_shoulder-left_elbow left_elbow-left_wrist "
            "neck-right_shoulder right_shoulder-right_elbow right_elbow-right_wrist spine-left_hip "
            "left_hip-left_knee left_knee-left_ankle spine-right_hip right_hip-right_knee "
            "right_knee-right_ankle",
            "spine",
            (
                "head neck",
                "spine left_shoulder right_shoulder left_hip right_hip",
                "left_elbow left_wrist",
                "right_elbow right_wrist",
                "left_knee left_ankle",
                "right_knee right_ankle",
            ),
        ),
        _layout(
            "ntu25",
            "spine_base spine_mid neck head left_shoulder left_elbow left_wrist left_hand "
            "right_shoulder right_elbow right_wrist right_hand left_hip left_knee left_ankle left_foot "
            "right_hip right_knee right_ankle right_foot spine_shoulder left_hand_tip left_thumb "
            "right_hand_tip right_thumb",
            "spine_base-spine_mid spine_mid-spine_shoulder neck-spine_shoulder head-neck "
            "left_shoulder-spine_shoulder left_elbow-left_shoulder left_wrist-left_elbow "
            "left_hand-left_wrist right_shoulder-spine_shoulder right_elbow-right_shoulder "
            "right_wrist-right_elbow right_hand-right_wrist left_hip-spine_base left_knee-left_hip "
            "left_ankle-left_knee left_foot-left_ankle right_hip-spine_base right_knee-right_hip "
            "right_ankle-right_knee right_foot-right_ankle left_hand_tip-left_thumb "
            "left_thumb-left_hand right_hand_tip-right_thumb right_thumb-right_hand",
            "spine_mid",
            (
                "neck head",
                "spine_base spine_mid spine_shoulder left_shoulder right_shoulder left_hip right_hip",
                "left_elbow left_wrist left_hand left_hand_tip left_thumb",
                "right_elbow right_wrist right_hand right_hand_tip right_thumb",
                "left_knee left_ankle left_foot",
                "right_knee right_ankle right_foot",
            ),
        ),
        _layout(
            "openpose18",
            "nose neck right_shoulder right_elbow right_wrist left_shoulder left_elbow left_wrist "
            "right_hip right_knee right_ankle left_hip left_knee left_ankle right_eye left_eye "
            "right_ear left_ear",
            "right_wrist-right_elbow right_elbow-right_shoulder left_wrist-left_elbow "
            "left_elbow-left_shoulder left_ankle-left_knee left_knee-left_hip right_ankle-right_knee "
            "right_knee-right_hip left_hip-left_shoulder right_hip-right_shoulder "
            "left_shoulder-neck right_shoulder-neck nose-neck left_eye-nose right_eye-nose "
            "left_ear-left_eye right_ear-right_eye",
            "neck",
            (
                "nose right_eye left_eye right_ear left_ear",
                "neck right_shoulder left_shoulder right_hip left_hip",
                "left_elbow left_wrist",
                "right_elbow right_wrist",
                "left_knee left_ankle",
                "right_knee right_ankle",
            ),
        ),
    )
}
LAYOUTS["utkinect20"] = LAYOUTS["nwucla20"] = LAYOUTS["kinect20"]

# Joints that stand in for one another across layouts, where the names differ. A target joint takes
# the first of its stand-ins that the source layout has; exact name matches are always used first.
_STAND_INS: dict[str, tuple[str, ...]] = {
    "nose": ("head", "face"),
    "head": ("nose", "face"),
    "face": ("head", "nose"),
    "neck": ("shoulder_center", "spine_shoulder"),
    "shoulder_center": ("neck", "spine_shoulder"),
    "spine_shoulder": ("shoulder_center", "neck"),
    "spine": ("spine_mid", "belly"),
    "spine_mid": ("spine", "belly"),
    "belly": ("spine", "spine_mid"),
    "hip_center": ("spine_base",),
    "spine_base": ("hip_center",),
    "left_hand": ("left_wrist",),
    "right_hand": ("right_wrist",),
    "left_foot": ("left_ankle",),
    "right_foot": ("right_ankle",),
}


LAYOUT_KEYS = ("name", "joints", "bones", "center", "regions", "twins")


def _names(value, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise ConfigError(f"{what} must be a list of joint names, got {str(value)[:80]}")
    return value


def _pairs(value, what: str, index: dict[str, int]) -> tuple[tuple[int, int], ...]:
    """Pairs of joint names as index pairs; a pair that is not two different known joints is a ConfigError."""
    if not isinstance(value, list):
        raise ConfigError(f"{what} must be a list of [joint, joint] pairs, got {str(value)[:80]}")
    out = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) for n in pair)):
            raise ConfigError(f"{what}: {str(pair)[:60]} is not a pair of joint names, e.g. [left_hip, left_knee]")
        unknown = [n for n in pair if n not in index]
        if unknown:
            close = difflib.get_close_matches(unknown[0], index, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{what}: {pair} names '{unknown[0]}', which is not in 'joints'{hint}")
        if pair[0] == pair[1]:
            raise ConfigError(f"{what}: {pair} pairs a joint with itself")
        out.append((index[pair[0]], index[pair[1]]))
    if len({frozenset(p) for p in out}) != len(out):
        twice = next(p for p in value if sum(set(p) == set(q) for q in value) > 1)
        raise ConfigError(f"{what} lists {twice} twice")
    return tuple(out)


def layout_from_dict(spec: dict) -> Layout:
    """A layout from its definition by joint names (:meth:`Layout.to_dict`; ``twins`` may be left out), checked:
    a ConfigError says what is wrong (an unknown joint, a joint in no region or in two, a name given twice, ...)."""
    if not isinstance(spec, dict):
        raise ConfigError(f"a layout definition must be a mapping with keys {', '.join(LAYOUT_KEYS)}; got a "
                          f"{type(spec).__name__}")
    unknown = sorted(set(spec) - set(LAYOUT_KEYS))
    missing = [k for k in LAYOUT_KEYS[:-1] if k not in spec]
    if unknown or missing:
        what = f"unknown: {', '.join(map(str, unknown))}" if unknown else f"missing: {', '.join(missing)}"
        raise ConfigError(f"a layout definition has the keys {', '.join(LAYOUT_KEYS)} (twins optional); {what}")
    name = spec["name"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"layout 'name' must be a non-empty string, got {name!r}")
    joints = _names(spec["joints"], f"layout {name}: joints")
    if len(set(joints)) != len(joints):
        raise ConfigError(f"layout {name}: joint '{next(n for n in joints if joints.count(n) > 1)}' is listed twice "
                          "in 'joints'; every joint needs its own name")
    index = {n: i for i, n in enumerate(joints)}
    regions = spec["regions"]
    if not isinstance(regions, dict) or set(regions) != set(REGION_NAMES):
        got = sorted(map(str, regions)) if isinstance(regions, dict) else str(regions)[:80]
        raise ConfigError(f"layout {name}: 'regions' must map the six body regions {', '.join(REGION_NAMES)} to "
                          f"lists of joints; got {got}")
    members = [_names(regions[r], f"layout {name}: region '{r}'") for r in REGION_NAMES]
    for r, names in zip(REGION_NAMES, members, strict=True):
        if not names:
            raise ConfigError(f"layout {name}: region '{r}' is empty; masking draws whole regions, give it a joint")
        if any(n not in index for n in names):
            raise ConfigError(f"layout {name}: region '{r}' names '{next(n for n in names if n not in index)}', "
                              "which is not in 'joints'")
    placed = [n for names in members for n in names]
    twice = sorted({n for n in placed if placed.count(n) > 1})
    left_out = [n for n in joints if n not in placed]
    if twice or left_out:
        raise ConfigError(f"layout {name}: every joint belongs to exactly one region; "
                          + (f"in two: {', '.join(twice)}" if twice else f"in none: {', '.join(left_out)}"))
    if spec["center"] not in index:
        raise ConfigError(f"layout {name}: centre joint {spec['center']!r} is not in 'joints'")
    twins = None if spec.get("twins") is None else _pairs(spec["twins"], f"layout {name}: twins", index)
    if twins is not None and len({j for p in twins for j in p}) != 2 * len(twins):
        raise ConfigError(f"layout {name}: a joint has two twins in 'twins'; pair each left joint with one right one")
    layout = Layout(name, tuple(joints), _pairs(spec["bones"], f"layout {name}: bones", index), index[spec["center"]],
                    tuple(tuple(index[n] for n in names) for names in members), twins)
    if name in LAYOUTS and layout.to_dict() != LAYOUTS[name].to_dict():
        raise ConfigError(f"layout {name}: a built-in layout has this name and another definition; give yours its "
                          "own 'name'")
    return layout


def read_layout_file(path: str | Path) -> Layout:
    """The layout a YAML layout file defines (:func:`layout_from_dict`; ``name`` defaults to the file's stem)."""
    import yaml  # here, not at the top: MediaPipe's environment (cli/pose.py) imports this module and has no PyYAML

    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"layout file {path} cannot be read: {e}") from e
    if isinstance(spec, dict):
        spec.setdefault("name", path.stem)
    try:
        return layout_from_dict(spec)
    except ConfigError as e:
        raise ConfigError(f"layout file {path}: {e}") from e


def get_layout(name: str | Path | dict | Layout) -> Layout:
    """A layout from a built-in name, a layout YAML file, or a definition (:meth:`Layout.to_dict`).

    An unknown name that is no file raises a ConfigError naming the closest ones."""
    if isinstance(name, Layout):
        return name
    if isinstance(name, dict):
        return layout_from_dict(name)
    if not isinstance(name, (str, Path)):
        raise ConfigError(f"a layout is a built-in name, a layout YAML file or a mapping; got {name!r}")
    if str(name) in LAYOUTS:
        return LAYOUTS[str(name)]
    if Path(name).is_file():
        return read_layout_file(name)
    close = difflib.get_close_matches(str(name), LAYOUTS, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown skeleton layout '{name}': neither a built-in layout ({', '.join(sorted(LAYOUTS))}) "
                      f"nor a layout file.{hint} `skeletonmae data layout coco17` prints one to start from.")


LAYOUT_FILE_HEADER = """\
# A skeleton layout (docs/data.md, Layouts): use it as --layout FILE, data.layout=FILE or encoder.layout=FILE.
# joints: names in the order of the data's V axis; bones: pairs of joints that are physically connected;
# center: the joint 3D skeletons are centred on; regions: the six body regions pre-training masks, every joint
# in exactly one; twins: left-right pairs swapped in mirror images (left out: left_x pairs with right_x).
"""


def layout_yaml(layout: str | Path | dict | Layout) -> str:
    """A layout as the text of a layout file (:data:`LAYOUT_FILE_HEADER`, then :meth:`Layout.to_dict`)."""
    import yaml  # see read_layout_file
    body = yaml.safe_dump(get_layout(layout).to_dict(), sort_keys=False, default_flow_style=None, width=110)
    return LAYOUT_FILE_HEADER + body


def layout_setting(name: str | Path | dict | Layout) -> str | dict:
    """What a config keeps for a layout: a built-in one by its name, anything else as its whole definition (a
    checkpoint then carries the layout, and loads without the file). A file of a built-in layout, as `data
    layout` writes it, is that layout (a file with a built-in name and another definition is refused)."""
    if isinstance(name, str) and name in LAYOUTS:
        return name
    layout = get_layout(name)
    return layout.name if layout.name in LAYOUTS else layout.to_dict()


def joint_mapping(source: str | Layout, target: str | Layout) -> np.ndarray:
    """For each target joint, the index of the source joint that carries it, or -1 if none does.

    Joints are matched by name, then through stand-ins (a head joint stands in for COCO's nose,
    a Kinect hand for a wrist, ...). Returns int64 [V_target]. Layouts that share no joint name cannot be
    mapped: a ConfigError says so.
    """
    src, dst = get_layout(source), get_layout(target)
    index = {n: i for i, n in enumerate(src.joints)}
    out = np.full(dst.num_joints, -1, dtype=np.int64)
    for t, name in enumerate(dst.joints):
        for candidate in (name, *_STAND_INS.get(name, ())):
            if candidate in index:
                out[t] = index[candidate]
                break
    if not (out >= 0).any():
        raise ConfigError(
            f"layout {src.name} cannot be mapped to layout {dst.name}: joints are matched by name, and the two share "
            f"none ({src.name}: {', '.join(src.joints[:4])}, ...; {dst.name}: {', '.join(dst.joints[:4])}, ...). Name "
            f"your joints as {dst.name} does (`skeletonmae data layout {dst.name}` prints it), or set encoder.layout "
            "to the data's layout"
        )
    return out


def map_joints(
    keypoint: np.ndarray, score: np.ndarray | None, source: str | Layout, target: str | Layout
) -> tuple[np.ndarray, np.ndarray]:
    """Carry ``keypoint`` [..., V_src, C] (and ``score`` [..., V_src]) into the target layout.

    Joints the source lacks get zero coordinates and score 0. A missing ``score`` counts as 1.
    Returns ``(keypoint [..., V_dst, C], score [..., V_dst])``.
    """
    mapping = joint_mapping(source, target)
    present = mapping >= 0
    if score is None:
        score = np.ones(keypoint.shape[:-1], dtype=np.float32)
    kp = keypoint[..., np.where(present, mapping, 0), :] * present[:, None]
    sc = score[..., np.where(present, mapping, 0)] * present
    return kp.astype(keypoint.dtype, copy=False), sc.astype(np.float32, copy=False)


TORSO_FLOOR = 0.1  # a body's size is at least this share of its extent in a frame (a torso is about 0.25 of it)


def body_measure(keypoint: np.ndarray, present: np.ndarray, layout: Layout) -> tuple[float, np.ndarray] | None:
    """The size and the place of the first person's body: ``(torso length, mean mid-hip point)``.

    ``keypoint`` [..., M, T, V, C] (the person axis is the fourth from the end; any leading axes, e.g. the K
    clips of a test sample, are frames of the same clip), ``present`` [..., M, T, V] bool. The torso length is
    ``||mid(left_shoulder, right_shoulder) - mid(left_hip, right_hip)||``; its median over the frames of the
    first person where all four joints are present is the body size, which stays the same when the body
    travels, turns or bends (a median of frames). It is never taken below :data:`TORSO_FLOOR` times the body's
    extent in a frame (median over frames of the largest side of the box around its joints): a torso seen end
    on, or shoulders and hips found on top of each other, would otherwise blow the clip up without bound. The
    mid-hip point is averaged over the same frames. None when the layout lacks one of the four joints
    (:meth:`Layout.torso`) or no frame has all four.
    """
    torso = layout.torso()
    if torso is None:
        return None
    kp, ok = keypoint[..., 0, :, :, :], present[..., 0, :, :]  # [..., T, V, C], [..., T, V] of the first person
    ls, rs, lh, rh = torso
    frames = ok[..., ls] & ok[..., rs] & ok[..., lh] & ok[..., rh]
    if not frames.any():
        return None
    pts = kp[frames].astype(np.float64)  # [F, V, C]
    hips = (pts[:, lh] + pts[:, rh]) / 2
    length = np.linalg.norm((pts[:, ls] + pts[:, rs]) / 2 - hips, axis=-1)
    seen = ok[frames]  # the joints present in those frames: their box is the body's extent in the frame
    lo = np.where(seen[..., None], pts, np.inf).min(axis=-2)
    hi = np.where(seen[..., None], pts, -np.inf).max(axis=-2)
    extent = float(np.median((hi - lo).max(axis=-1)))
    return max(float(np.median(length)), TORSO_FLOOR * extent), hips.mean(axis=0)
