"""The scoring threads (`engine.threads`): how many, results in order, bounded work in flight, errors, and
bootstrap samples that do not depend on the thread count."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pytest_facebench.engine import threads as threads_module
from pytest_facebench.engine.threads import map_ordered, scoring_threads
from pytest_facebench.errors import ConfigError
from pytest_facebench.stats import Roc
from pytest_facebench.stats.bootstrap import Bootstrap


def test_scoring_threads_follow_the_env_then_share_the_cpus_among_xdist_workers(monkeypatch):
    monkeypatch.setattr(threads_module, "usable_cpus", lambda: 16)
    monkeypatch.delenv("FACEBENCH_THREADS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert scoring_threads() == threads_module.MAX_THREADS
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    assert scoring_threads() == 4
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "32")
    assert scoring_threads() == 1
    monkeypatch.setenv("FACEBENCH_THREADS", "3")
    assert scoring_threads() == 3
    monkeypatch.setenv("FACEBENCH_THREADS", "many")
    with pytest.raises(ConfigError, match=r"FACEBENCH_THREADS='many': expected a whole number"):
        scoring_threads()


def test_map_ordered_keeps_the_input_order_and_runs_on_several_threads():
    seen: set[str] = set()

    def slow_square(x: int) -> int:
        seen.add(threading.current_thread().name)
        time.sleep(0.01 * (x % 3))  # later items finish first
        return x * x

    assert list(map_ordered(slow_square, range(20), threads=4)) == [x * x for x in range(20)]
    assert len(seen) > 1 and all(name.startswith("facebench-score") for name in seen)
    seen.clear()
    assert list(map_ordered(slow_square, range(5), threads=1)) == [x * x for x in range(5)]
    assert seen == {threading.current_thread().name}  # one thread: the caller's


def test_map_ordered_draws_a_generator_at_most_threads_plus_one_ahead():
    drawn: list[int] = []
    returned: list[int] = []

    def items():
        for i in range(12):
            drawn.append(i)
            yield i

    for value in map_ordered(lambda x: x, items(), threads=2):
        returned.append(value)
        assert len(drawn) - len(returned) <= 2  # in flight: at most threads + 1, one of them just returned


def test_map_ordered_raises_the_first_error_in_order():
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    got: list[int] = []
    with pytest.raises(ValueError, match="three"):
        for value in map_ordered(fail_on_three, range(10), threads=3):
            got.append(value)
    assert got == [0, 1, 2]


@pytest.mark.parametrize("groups", [None, np.arange(3000) // 5])
def test_bootstrap_samples_do_not_depend_on_the_thread_count(monkeypatch, groups):
    rng = np.random.default_rng(1)
    labels = np.arange(3000) % 2 == 0
    roc = Roc(rng.normal(size=3000) - labels, labels)

    def metric(counts):
        m = roc.metrics(counts, [0.01])
        return {"auc": m.auc, "tar": m.tar[0.01]}

    samples = {}
    for threads in ("1", "4"):
        monkeypatch.setenv("FACEBENCH_THREADS", threads)
        samples[threads] = Bootstrap(n_boot=500, seed=3).samples(metric, 3000, groups=groups)
    for name in ("auc", "tar"):
        assert samples["4"][name].shape == (500,)
        np.testing.assert_array_equal(samples["4"][name], samples["1"][name])
