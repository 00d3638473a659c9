"""Per-object mean/recall/decay and global averaging (ALGORITHM.md E.4), on hand-made values."""
import math

import numpy as np
import pytest

from dinotools.eval.stats import Statistics, db_statistics, decay_bins, global_metrics


def test_mean_and_recall():
    s = db_statistics(np.array([1.0, 0.2, 0.6, 0.5]))
    assert s.mean == pytest.approx(0.575)
    assert s.recall == 0.5  # 0.5 itself is not > 0.5


def test_decay_bins_include_both_edges():
    np.testing.assert_array_equal(decay_bins(5), [0, 1, 2, 3, 4])
    # bins [0:2], [3:5] inclusive -> first = mean(1, 1), last = mean(0, 0)
    assert db_statistics(np.array([1.0, 1.0, 0.5, 0.0, 0.0])).decay == 1.0
    assert db_statistics(np.array([1.0, 0.0, 0.0, 0.0, 0.5])).decay == pytest.approx(0.5 - 0.25)


def test_decay_bins_round_half_up():
    # linspace(1, 3, 5) = 1, 1.5, 2, 2.5, 3: halves round up (numpy alone would round 2.5 to 2)
    np.testing.assert_array_equal(decay_bins(3), [0, 1, 1, 2, 2])
    assert db_statistics(np.array([0.9])).decay == 0.0  # one frame: every bin is that frame


def test_decay_longer_than_255_frames():
    values = np.r_[np.ones(200), np.zeros(100)]  # 300 evaluated frames
    np.testing.assert_array_equal(decay_bins(300), [0, 75, 150, 224, 299])
    assert db_statistics(values).decay == 1.0  # first quarter all 1, last quarter all 0
    # The official uint8 cast wraps 299 to 43: the last bin [224:44] is empty -> nan.
    np.testing.assert_array_equal(decay_bins(300, uint8_indices=True), [0, 75, 150, 224, 43])
    assert math.isnan(db_statistics(values, uint8_indices=True).decay)
    short = np.linspace(1, 0, 256)  # up to 256 frames the indices fit in uint8: both agree
    assert db_statistics(short).decay == db_statistics(short, uint8_indices=True).decay


def test_empty_values_are_nan():
    s = db_statistics(np.array([]))
    assert all(math.isnan(v) for v in s)


def test_global_metrics_average_objects_not_sequences():
    # sequence A has one object (J 1.0), sequence B two (J 0.0, 0.5): object mean 0.5, sequence mean 0.625
    j = [Statistics(1.0, 1.0, 0.0), Statistics(0.0, 0.0, 0.2), Statistics(0.5, 1.0, 0.1)]
    f = [Statistics(0.8, 1.0, 0.0), Statistics(0.2, 0.0, 0.0), Statistics(0.2, 0.0, 0.3)]
    g = global_metrics(j, f)
    assert g["J-Mean"] == pytest.approx(0.5)
    assert g["F-Mean"] == pytest.approx(0.4)
    assert g["J&F-Mean"] == pytest.approx(0.45)
    assert g["J-Recall"] == pytest.approx(2 / 3) and g["F-Decay"] == pytest.approx(0.1)
