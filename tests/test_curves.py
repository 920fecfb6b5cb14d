"""mtkit.evaluation.curves: the scalars fairseq writes through tensorboardX, read back without
TensorBoard, and their plot."""
from __future__ import annotations

import pytest
import tensorboardX  # the 'tensorboard' extra: setup.sh installs it, and the test extra requires it

from mtkit.errors import InputError
from mtkit.evaluation import curves


def _write(logdir, run, points, tag="loss", suffix=""):
    w = tensorboardX.SummaryWriter(str(logdir / run), filename_suffix=suffix)
    w.add_text("sys.argv", "fairseq-train ...")  # fairseq writes this first: not a scalar
    for step, value in points:
        w.add_scalar(tag, value, step)
    w.close()


def test_read_scalars_as_fairseq_writes_them(tmp_path):
    _write(tmp_path, "train_inner", [(25, 9.5), (50, 8.25), (75, 7.0)])
    _write(tmp_path, "valid", [(50, 8.5), (100, 7.75), (150, 7.75)])
    s = curves.read_scalars(tmp_path)
    assert s["train_inner"]["loss"] == [(25, 9.5), (50, 8.25), (75, 7.0)]
    assert s["valid"]["loss"] == [(50, 8.5), (100, 7.75), (150, 7.75)]
    assert curves.last_value(s, "train_inner", "loss") == 7.0
    assert curves.best_value(s, "valid", "loss") == (150, 7.75)  # a tie: the later, as checkpoint_best
    assert curves.last_value(s, "valid", "nll_loss") is None and curves.best_value(s, "train", "loss") is None
    png = curves.loss_curves_png(s, "stage", marks={"evaluated": 150})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_resumed_run_and_truncated_file(tmp_path):
    _write(tmp_path, "valid", [(10, 5.0), (20, 4.0)])
    _write(tmp_path, "valid", [(20, 3.5), (30, 3.0)], suffix=".resumed")  # logs update 20 again
    assert curves.read_scalars(tmp_path)["valid"]["loss"] == [(10, 5.0), (20, 3.5), (30, 3.0)]
    for f in (tmp_path / "valid").iterdir():  # a killed writer leaves half a record
        data = f.read_bytes()
        f.write_bytes(data[:-7])
    assert curves.read_scalars(tmp_path)["valid"]["loss"][0] == (10, 5.0)


def test_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        curves.read_scalars(tmp_path / "nope")
    (tmp_path / "train").mkdir()
    with pytest.raises(InputError, match="no TensorBoard event files"):
        curves.read_scalars(tmp_path)
