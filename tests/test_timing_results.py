"""Timing helpers and the results record."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from workshop_utils.core import results, timing
from workshop_utils.core.errors import InputError, LabCheckFailed


def test_percentiles_interpolate() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert timing.percentile(samples, 50) == pytest.approx(50.5)
    assert timing.percentile(samples, 99) == pytest.approx(99.01)
    with pytest.raises(ValueError, match="empty"):
        timing.percentile([], 50)


def test_benchmark_excludes_warmup_and_measures_sleep() -> None:
    calls = []

    def work() -> None:
        calls.append(1)
        time.sleep(0.01)

    result = timing.benchmark(work, warmup=2, iters=5)
    assert len(calls) == 7 and len(result.samples_ms) == 5
    assert 9.0 <= result.p50_ms < 60.0
    assert result.throughput_per_s == pytest.approx(1000.0 / result.p50_ms)


def test_compare_interleaves_and_ranks() -> None:
    order = []
    fast = lambda: order.append("fast")  # noqa: E731
    slow = lambda: (order.append("slow"), time.sleep(0.005))  # noqa: E731
    timings = timing.compare({"fast": fast, "slow": slow}, warmup=0, rounds=4)
    assert order == ["fast", "slow"] * 4, "rounds must alternate the candidates"
    assert timings["slow"].p50_ms > timings["fast"].p50_ms


def test_benchmark_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="iters"):
        timing.benchmark(lambda: None, iters=0)


def test_results_json_has_the_agreed_shape(isolated_dirs: Path) -> None:
    lab = results.start_lab("99_demo", "smoke")
    lab.record(dice=np.float32(0.75), count=np.int64(118), ok=True, name="x", missing=float("nan"))
    lab.expect("dice above floor", True, "0.75 >= 0.6")
    path = lab.finish()
    record = json.loads(path.read_text())
    assert path == isolated_dirs / "build" / "results" / "99_demo.json"
    assert set(record) >= {"lab", "profile", "wall_s", "peak_rss_mib", "metrics", "hardware", "versions", "passed"}
    assert record["metrics"] == {"dice": pytest.approx(0.75), "count": 118, "ok": True, "name": "x", "missing": None}
    assert record["passed"] is True and record["peak_rss_mib"] > 10


def test_data_sources_are_named_once_and_checked(isolated_dirs: Path) -> None:
    lab = results.start_lab("99_demo", "smoke")
    assert json.loads(Path(lab.finish()).read_text())["data_source"] == []
    assert lab.uses_data("stardist_dsb2018_nucleus") == "stardist_dsb2018_nucleus"
    lab.uses_data("synthetic")
    lab.uses_data("stardist_dsb2018_nucleus")
    assert json.loads(lab.finish().read_text())["data_source"] == ["stardist_dsb2018_nucleus", "synthetic"]
    with pytest.raises(InputError, match="synthetic"):
        lab.uses_data("my_images")


def test_failed_expectation_is_written_then_raised(isolated_dirs: Path) -> None:
    lab = results.start_lab("99_demo", "cpu")
    lab.expect("loss falls", False, "0.9 -> 1.2")
    with pytest.raises(LabCheckFailed, match="loss falls"):
        lab.finish()
    assert json.loads(lab.path.read_text())["passed"] is False


def test_metrics_must_be_flat(isolated_dirs: Path) -> None:
    lab = results.start_lab("99_demo", "cpu")
    with pytest.raises(InputError, match="one named figure per metric"):
        lab.record(latencies=[1.0, 2.0])
    with pytest.raises(ValueError, match="not 'auto'"):
        results.start_lab("99_demo", "auto")


def test_peak_rss_is_this_process_not_its_parent() -> None:
    import subprocess
    import sys

    # A child of this (already large) test process must report its own, small, peak.
    code = "from workshop_utils.core.results import peak_rss_mib; print(peak_rss_mib())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    ballast = bytearray(300 * 2**20)  # make the parent clearly bigger than any fresh interpreter
    ballast[::4096] = b"x" * len(ballast[::4096])
    child_after = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert results.peak_rss_mib() > 300
    assert child_after < 200 and abs(child_after - child) < 50


@pytest.mark.parametrize(("speedup", "words"), [
    (1.5, "ORT was 1.50x faster than torch"),
    (0.99, "ORT was no faster than torch (0.99x)"),
    (1.04, "ORT was no faster than torch (1.04x)"),
    (0.8, "ORT was 1.25x slower than torch"),
])
def test_speedup_phrase_never_contradicts_its_figure(speedup: float, words: str) -> None:
    assert timing.speedup_phrase(speedup, "ORT", "torch") == words


def test_speed_fails_a_lab_only_past_the_sanity_bound() -> None:
    lab = results.LabRecorder(lab="99_demo", profile="smoke")
    assert lab.expect_speed_sane("ORT vs torch", 0.99)  # no faster: reported, not a failure
    assert lab.expect_speed_sane("ORT vs torch", 1 / timing.SANITY_SLOWDOWN + 0.01)
    assert not lab.expect_speed_sane("ORT vs torch", 1 / timing.SANITY_SLOWDOWN - 0.01)  # a runaway fails
    assert [item.ok for item in lab.expectations] == [True, True, False]


@pytest.mark.parametrize(("text", "cpus"), [("150000 100000\n", 1.5), ("max 100000\n", None), ("garbage", None)])
def test_cgroup_quota_is_read_from_cpu_max(tmp_path: Path, text: str, cpus: float | None) -> None:
    from workshop_utils.core import cpus as cpu_module

    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)
    assert cpu_module.cgroup_cpu_limit(cpu_max) == cpus


def test_usable_cores_follow_a_pod_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    from workshop_utils.core import cpus

    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda: 0.5)  # half a CPU: one thread, not all cores
    assert cpus.usable_cores() == 1
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda: None)
    assert cpus.usable_cores() == len(os.sched_getaffinity(0))


def test_onnx_runtime_fuses_relu_into_the_convolution_but_not_prelu() -> None:
    """What lab 02 tells attendees about its PReLU network, checked against the installed ONNX Runtime."""
    from workshop_utils import acceleration

    for level in ("extended", "all"):
        assert "PRelu" not in acceleration.fusion_probe("Relu", level)
        assert acceleration.fusion_probe("PRelu", level)["PRelu"] == 1


@pytest.mark.quiet
def test_compare_calls_a_quiet_measurement_stable() -> None:
    """Sleeps of 20 and 40 ms: a wake-up a few ms late on a loaded core (seen in CI with 2 and 4 ms) stays small."""
    timings = timing.compare({"a": lambda: time.sleep(0.02), "b": lambda: time.sleep(0.04)}, warmup=1, rounds=8)
    assert timings.stable and "stable" in timings.verdict()
    assert timings["b"].p50_ms > timings["a"].p50_ms  # still a dict of Timing


def test_compare_says_when_its_rounds_disagree() -> None:
    """Every other round, the second candidate is slowed 4x (a neighbour grabbing the core): no confident ratio."""
    calls = {"n": 0}

    def disturbed() -> None:
        calls["n"] += 1
        time.sleep(0.008 if calls["n"] % 2 else 0.002)

    timings = timing.compare({"steady": lambda: time.sleep(0.002), "disturbed": disturbed}, warmup=0, rounds=8)
    assert not timings.stable and timings.spread > timing.STABLE_SPREAD
    assert "UNSTABLE" in timings.verdict()


def test_a_slow_smoke_run_is_flagged_not_failed(isolated_dirs: Path) -> None:
    from workshop_utils.core import labs

    lab = results.start_lab("00_environment_check", "smoke")
    lab.started -= 2 * labs.smoke_budget_s("00_environment_check")  # as if a busy neighbour doubled its time
    record = json.loads(lab.finish().read_text())
    assert record["passed"] is True and record["over_budget"] is True and record["budget_s"] == 60
    assert not labs.is_runaway(record["wall_s"], record["budget_s"])
    assert labs.is_runaway(3.1 * 60, 60) and not labs.is_runaway(1000.0, None)
