"""Property-based tests: any array of the right rank either loads and transforms, or is refused with the
library's own error (a problem list / DataError), never a crash inside numpy or torch."""

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skeletonmae.data.annotations import check_sample
from skeletonmae.data.transforms import build_pipeline

coordinates = st.floats(-1e4, 1e4, width=32)


@st.composite
def samples(draw):
    # mostly valid samples (so the transforms get exercised), sometimes broken in one way or another
    m, t = draw(st.sampled_from([1, 1, 1, 2, 2, 3, 0])), draw(st.sampled_from([1, 2, 3, 4, 5, 6] * 2 + [0]))
    v = draw(st.sampled_from([13, 17, 20]))
    c = draw(st.sampled_from([2, 2, 2, 3, 3, 3, 1, 4]))
    dtype = draw(st.sampled_from([np.float32] * 4 + [np.float64, np.int32]))
    elements = coordinates if dtype != np.int32 else st.integers(-1000, 1000)
    kp = draw(arrays(dtype, (m, t, v, c), elements=elements))
    if kp.size and dtype != np.int32 and draw(st.integers(0, 4)) == 0:  # now and then a NaN or inf
        kp.flat[draw(st.integers(0, kp.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    ann = {"frame_dir": "x", "label": draw(st.sampled_from(list(range(15)) * 3 + [-1, 15, 20])), "keypoint": kp,
           "total_frames": t}
    if c == 2 or draw(st.booleans()):
        ann["keypoint_score"] = draw(arrays(np.float32, (m, t, v), elements=st.floats(0, 1, width=32)))
    if draw(st.booleans()) or c == 2:
        ann["img_shape"] = (draw(st.integers(1, 2000)), draw(st.integers(1, 2000)))
    return ann


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples(), st.booleans(), st.integers(1, 9), st.sampled_from(["fix", "auto", "body"]))
def test_sample_is_refused_or_transforms_to_finite_batch(ann, train, clip_len, normalize):
    problems = check_sample(ann, 0, "f.pkl", None, 15)
    event("refused" if problems else "transformed")
    if problems:
        assert all(p.startswith("f.pkl: sample 'x'") for p in problems)
        return
    kp = ann["keypoint"]
    is_3d = kp.shape[-1] == 3
    # 3D layout for 20 joints, 2D layouts otherwise; V fixed by the sample
    layout = {13: "penn13", 17: "coco17", 20: "kinect20"}[kp.shape[2]]
    pipe = build_pipeline(source_layout=layout, target_layout=layout, is_3d=is_3d, clip_len=clip_len,
                          num_persons=2, train=train, num_clips=2, pixel_noise=1.0, rotate_deg=10, scale=0.1,
                          normalize=normalize)
    with np.errstate(over="ignore"):
        out = pipe(ann, np.random.default_rng(0))["keypoint"]
    k = 1 if train else 2
    assert out.shape == (k, 2, clip_len, kp.shape[2], kp.shape[3]) and out.dtype == np.float32
    assert np.isfinite(out).all()
