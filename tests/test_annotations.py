import pickle

import numpy as np
import pytest
from conftest import DATASETS, make_sample, shared_pickle

from skeletonmae.data.annotations import check_annotations, load_annotations, save_annotations
from skeletonmae.errors import DataError


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_real_datasets_load_and_validate(name):
    layout, train, test = DATASETS[name]
    f = load_annotations(shared_pickle(name), layout=layout)
    assert len(f.samples(train)) > 0 and len(f.samples(test)) > 0
    assert f.num_classes >= 9


def test_roundtrip(small_pickle):
    f = load_annotations(small_pickle, layout="coco17")
    assert [s["frame_dir"] for s in f.samples("test")] == ["c8", "c9", "c10", "c11"]
    assert f.num_classes == 3 and f.num_channels == 2


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_hostile_pickle_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [Evil()]}, protocol=4))
    with pytest.raises(DataError, match="refusing to load 'posix.system'|refusing to load 'os.system'"):
        load_annotations(path)
    assert not (tmp_path / "PWNED").exists()


def test_truncated_pickle(small_pickle, tmp_path):
    bad = tmp_path / "trunc.pkl"
    bad.write_bytes(small_pickle.read_bytes()[:500])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_annotations(bad)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_annotations(tmp_path / "nope.pkl")


def _problems(ann, **kw):
    return check_annotations({"split": {"train": [ann["frame_dir"]]}, "annotations": [ann]}, "f.pkl", **kw)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda a: a.pop("keypoint"), "missing key 'keypoint'"),
        (lambda a: a.pop("label"), "missing key 'label'"),
        (lambda a: a.update(keypoint=a["keypoint"][0]), r"must be a float array \[M, T, V, C\]"),
        (lambda a: a.update(keypoint=a["keypoint"].astype(np.int32)), "must be float"),
        (lambda a: a["keypoint"].__setitem__((0, 1, 2, 0), np.nan), "NaN/inf"),
        (lambda a: a["keypoint"].__setitem__((0, 1, 2, 0), np.inf), "NaN/inf"),
        (lambda a: a.update(keypoint=a["keypoint"][:, :0], keypoint_score=a["keypoint_score"][:, :0]), "empty clip"),
        (lambda a: a.update(label=7), "'label' 7 is out of range 0..2"),
        (lambda a: a.update(label=-1), "out of range"),
        (lambda a: a.update(keypoint_score=a["keypoint_score"][..., :3]), "'keypoint_score' must be a float array"),
        (lambda a: a.update(total_frames=99), "'total_frames' is 99"),
        (lambda a: a.pop("img_shape"), "no 'img_shape'"),
    ],
)
def test_bad_sample_messages_name_file_sample_and_problem(change, expected):
    ann = make_sample("clip_42")
    change(ann)
    problems = _problems(ann, layout="coco17", num_classes=3)
    assert problems, "the bad sample was not detected"
    assert any("f.pkl: sample 'clip_42'" in p and __import__("re").search(expected, p) for p in problems), problems


def test_layout_mismatch_names_layout():
    problems = _problems(make_sample("x", v=13), layout="coco17")
    assert any("V = 13 joints but layout 'coco17' has 17" in p for p in problems)


def test_unknown_split(small_pickle):
    f = load_annotations(small_pickle)
    with pytest.raises(DataError, match="unknown split 'val'.*'test', 'train'"):
        f.samples("val")


def test_load_reports_problems(tmp_path):
    anns = [make_sample("a"), make_sample("b", label=-3)]
    path = save_annotations(tmp_path / "x.pkl", anns, {"train": ["a", "b"]})
    with pytest.raises(DataError, match="sample 'b': 'label' -3"):
        load_annotations(path)


def test_save_is_atomic(tmp_path, small_pickle):
    before = small_pickle.read_bytes()

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_annotations(small_pickle, [Boom()], {})
    assert small_pickle.read_bytes() == before
    assert list(tmp_path.glob(".*tmp")) == []
