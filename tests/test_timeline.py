"""Persons tracked across frames (skeletonmae.tracking) and the sliding-window timeline (skeletonmae.timeline), on
real Penn Action poses: two real clips side by side make a two-person scene whose true identities are known."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_pickle

from skeletonmae.data.annotations import load_annotations, save_annotations
from skeletonmae.errors import ConfigError, DataError
from skeletonmae.timeline import classify_windows, window_spans
from skeletonmae.tracking import track_assignment, track_persons


@pytest.fixture(scope="module")
def scene():
    """Two real people (Penn Action clips 0 and 5, the second moved one frame-width right) in one [2, T, 13, 2]
    clip, with the true per-person arrays."""
    clips = load_annotations(shared_pickle("penn_action"), layout="penn13").annotations
    a, b = clips[0], clips[5]
    t = min(a["total_frames"], b["total_frames"])
    shift = np.float32([a["img_shape"][1], 0])
    keypoint = np.concatenate([a["keypoint"][:, :t], np.where(b["keypoint"][:, :t] != 0, b["keypoint"][:, :t] + shift,
                                                              0)])
    score = np.concatenate([a["keypoint_score"][:, :t], b["keypoint_score"][:, :t]])
    img_shape = (a["img_shape"][0], 2 * a["img_shape"][1])
    return {"frame_dir": "two_people", "label": -1, "total_frames": t, "img_shape": img_shape,
            "keypoint": keypoint, "keypoint_score": score}


def _shuffled(keypoint, score, seed=0):
    """The persons of a clip with their two slots swapped in a random half of the frames, as an estimator may order
    them."""
    swap = np.random.default_rng(seed).random(keypoint.shape[1]) < 0.5
    keypoint, score = keypoint.copy(), None if score is None else score.copy()
    keypoint[:, swap] = keypoint[::-1][:, swap]
    if score is not None:
        score[:, swap] = score[::-1][:, swap]
    return keypoint, score, swap


def test_tracking_restores_identity_of_shuffled_slots(scene):
    keypoint, score, swap = _shuffled(scene["keypoint"], scene["keypoint_score"])
    assert swap.any() and not swap.all()
    tracks = track_assignment(keypoint, score)
    np.testing.assert_array_equal(tracks[0], swap.astype(int) ^ int(swap[0]))  # slot 0 holds person 1 where swapped
    persons, scores = track_persons(keypoint, score)
    first = [1, 0] if swap[0] else [0, 1]  # tracks are numbered in order of first appearance
    np.testing.assert_array_equal(persons, scene["keypoint"][first])
    np.testing.assert_array_equal(scores, scene["keypoint_score"][first])


def test_tracking_starts_a_new_person_after_a_jump(scene):
    """Half-way, person 0 leaves and someone appears a frame-width right of person 1, in person 0's slot: a third
    person, not person 0 or 1 jumping."""
    keypoint, score = scene["keypoint"].copy(), scene["keypoint_score"].copy()
    half, width = scene["total_frames"] // 2, scene["img_shape"][1] / 2
    keypoint[0, half:] = np.where(keypoint[1, half:] != 0, keypoint[1, half:] + np.float32([width, 0]), 0)
    persons, scores = track_persons(keypoint, score)
    assert persons.shape[0] == 3
    seen = (scores > 0).any(-1)
    assert seen[0, :half].all() and not seen[0, half:].any()
    np.testing.assert_array_equal(persons[1], scene["keypoint"][1])
    assert not seen[2, :half].any() and seen[2, half:].all()


def test_tracking_without_scores_reads_zeros_as_absent(scene):
    keypoint, _, swap = _shuffled(scene["keypoint"], None, seed=1)
    persons, scores = track_persons(keypoint)
    assert scores is None
    np.testing.assert_array_equal(persons, scene["keypoint"][[1, 0] if swap[0] else [0, 1]])


def test_window_spans():
    np.testing.assert_array_equal(window_spans(72, 90, 45), [[0, 72]])  # a short clip is one window
    np.testing.assert_array_equal(window_spans(90, 90, 45), [[0, 90]])
    np.testing.assert_array_equal(window_spans(200, 90, 45), [[0, 90], [45, 135], [90, 180], [110, 200]])
    np.testing.assert_array_equal(window_spans(10, 4, 3), [[0, 4], [3, 7], [6, 10]])  # tail already covered
    with pytest.raises(ConfigError, match="stride"):
        window_spans(10, 4, 0)


def test_timeline_of_a_two_person_scene(scene, penn_checkpoint):
    from skeletonmae.inference import load

    predictor = load(penn_checkpoint)
    keypoint, score = scene["keypoint"].copy(), scene["keypoint_score"].copy()
    keypoint[1, scene["total_frames"] // 2:] = score[1, scene["total_frames"] // 2:] = 0  # person 1 leaves half-way
    keypoint, score, _ = _shuffled(keypoint, score)
    clip = dict(scene, keypoint=keypoint, keypoint_score=score)
    rows = classify_windows(predictor, clip, window=20, stride=10, fps=30, layout="penn13", top_k=2)
    spans = window_spans(scene["total_frames"], 20, 10)
    assert {r["person"] for r in rows} == {0, 1}
    assert len(rows) < 2 * len(spans)  # someone is not seen in the last windows
    for r in rows:
        assert r["end_frame"] - r["start_frame"] == 20 and r["end_s"] == pytest.approx(r["end_frame"] / 30, abs=1e-3)
        assert len(r["top"]) == 2 and r["top"][0][0] in predictor.class_names and r["top"][0][1] >= r["top"][1][1]
    # a window's row is the prediction of that person's frames alone
    r = rows[0]
    persons, scores = track_persons(clip["keypoint"], clip["keypoint_score"])
    alone = predictor.predict(persons[r["person"], r["start_frame"]:r["end_frame"]],
                              scores[r["person"], r["start_frame"]:r["end_frame"]], scene["img_shape"],
                              layout="penn13", top_k=2)
    assert [n for n, _ in r["top"]] == [n for n, _ in alone["top"]]
    assert [p for _, p in r["top"]] == pytest.approx([p for _, p in alone["top"]], abs=1e-6)
    with pytest.raises(DataError, match="no person is seen"):
        classify_windows(predictor, dict(clip, keypoint_score=clip["keypoint_score"] * 0), 20, 10, layout="penn13")


def test_predict_command_timeline_of_a_pickle(scene, penn_checkpoint, tmp_path, capsys):
    from skeletonmae.cli import main

    path = save_annotations(tmp_path / "scene.pkl", [scene], {"test": ["two_people"]})
    out, png = tmp_path / "p.json", tmp_path / "timeline.png"
    assert main(["predict", "--checkpoint", str(penn_checkpoint), str(path), "--layout", "penn13", "--window", "30",
                 "--fps", "30", "--timeline-png", str(png), "--out", str(out)]) == 0
    timeline = json.loads(out.read_text())["timeline"]
    assert timeline["window"] == 30 and timeline["stride"] == 15
    assert {r["person"] for r in timeline["rows"]} == {0, 1} and timeline["rows"][0]["clip"] == "two_people"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "person 1" in capsys.readouterr().out
    # a timeline is of clips, not of a bare array; the chart is of one clip
    np.save(tmp_path / "a.npy", scene["keypoint"])
    assert main(["predict", "--checkpoint", str(penn_checkpoint), str(tmp_path / "a.npy"), "--layout", "penn13",
                 "--img-shape", "360", "960", "--window", "30", "--out", str(tmp_path / "a.json")]) == 2
    assert "needs a video or an annotation pickle" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(penn_checkpoint), str(path), "--layout", "penn13", "--timeline-png",
                 str(tmp_path / "t.png"), "--out", str(tmp_path / "b.json")]) == 2
    assert "a .pkl gets with --window" in capsys.readouterr().err
