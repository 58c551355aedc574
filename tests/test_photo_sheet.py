"""relight eval --photos: the per-photo measurements and the contact sheet a user looks at."""

import numpy as np

from conftest import randomize
from core.base.vocab import CheckpointFormat
from core.engine.inference import Relighter
from core.model import create_model
from core.storage.checkpoint import CheckpointInfo
from core.train.evaluate import PHOTO_LIGHTS, evaluate_photos


def test_photos_of_two_shapes_give_labelled_rows_without_white_gaps(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # the guide cache goes here, not to the user's folder
    model = randomize(create_model("s3net-lite"), 3)
    r = Relighter(
        model, CheckpointInfo(None, "s3net-lite", CheckpointFormat.NATIVE, {"working_size": 64}), device="cpu"
    )
    rng = np.random.default_rng(0)
    photos = [("wide", rng.random((48, 72, 3), dtype=np.float32)), ("tall", rng.random((72, 48, 3), dtype=np.float32))]
    report = evaluate_photos(r, photos, sheet_height=40)
    assert len(report.rows) == 2 * len(PHOTO_LIGHTS)
    assert all(np.isfinite([row["colour"], row["detail"], row["exposure"]]).all() for row in report.rows)
    sheet = report.sheet
    cell = round(72 * 40 / 48)  # the widest tile sets every cell's width
    assert sheet.shape == (2 * (40 + 20), (1 + len(PHOTO_LIGHTS)) * cell, 3)
    # the tall photo sits centred on grey in its cell, not beside a white band
    assert not (sheet == 1.0).all(axis=(0, 2)).any()
    np.testing.assert_allclose(sheet[60:100, 0:5], 0.5)
    # each tile has a caption band with light text on it
    band = sheet[40:60]
    assert (band > 0.5).any() and np.median(band) < 0.2
