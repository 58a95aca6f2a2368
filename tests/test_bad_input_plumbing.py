"""Bad input to the plumbing: data, manifests, profiles, hardware, doctor, paths, serving, load tests, the CLIs.

Nothing here downloads, starts a server or opens a connection: every wrong call must fail before that.
"""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

import workshop_utils
from tests.badinput import Case
from workshop_utils import __main__ as cli
from workshop_utils import serving
from workshop_utils.core import cpus, data, data_cache, hardware, manifests, profiles
from workshop_utils.core.errors import HardwareRequirementError, ManifestError, ProfileError, ServerError
from workshop_utils.instructor import doctor
from workshop_utils.serving import load as triton_load
from workshop_utils.serving import worker as triton_worker

from .conftest import LoopbackServer
from .test_manifests import GOOD  # a valid manifest, shared with the manifest tests
from .test_triton_start import FlakyTriton

NUCLEI = "stardist_dsb2018_nucleus"  # a shipped manifest whose files come inside a package (no download)
MISSING = Path("/no/such/dir/file.bin")
X = {"x": np.zeros((1, 4), np.float32)}  # the fixed_cost model's input, as lab 03 sends it


def demo(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(GOOD)
    raw.update(changes)
    return raw


def download_entry() -> manifests.FileEntry:
    return manifests.parse_manifest(GOOD).file()


def never_started() -> serving.TritonServer:
    """A server object whose process was never launched (its methods check arguments first)."""
    return serving.TritonServer(["true"], {"http": 18000}, MISSING.parent, MISSING, ["fixed_cost"])


def require_gpu_without_one() -> Any:
    with mock.patch.object(hardware, "_load_pynvml", lambda: None):
        return hardware.require_gpu(purpose="Building a TensorRT engine")


def result(concurrency: int = 1) -> triton_load.LoadResult:
    return triton_load.LoadResult("fixed_cost", "grpc", concurrency, 10, 0, 1.0, [1.0] * 10)


CASES = [
    # data
    Case("core.data.sha256_of", lambda: data.sha256_of(MISSING), r"existing file.*missing", label="missing"),
    Case("core.data.sha256_of", lambda: data.sha256_of(Path(__file__), chunk_bytes=0), "chunk_bytes at least 1", label="chunk"),
    Case("core.data.safe_extract", lambda: data.safe_extract(Path(__file__), MISSING, "rar"), r"'tar', 'tar.gz', 'tgz', 'zip'",
         label="format"),
    Case("core.data.safe_extract", lambda: data.safe_extract(MISSING, MISSING.parent, "zip"), "Fetch the archive first",
         label="missing"),
    Case("core.data.package_file", lambda: data.package_file(download_entry()), r"'package' source.*a\.zip", label="download"),
    Case("core.data.package_file", lambda: data.package_file("img2d.tif"), "FileEntry", label="name"),
    Case("core.data.fetch", lambda: data.fetch("no_such_set"), rf"Known: .*{NUCLEI}", error=ManifestError, label="unknown-set"),
    Case("core.data.fetch", lambda: data.fetch(NUCLEI, "nope.tif"), r"known files: .*img2d\.tif", error=ManifestError,
         label="unknown-file"),
    Case("core.data.fetch", lambda: data.fetch(NUCLEI), "holds several files", error=ManifestError, label="file-needed"),
    Case("core.data.fetch", lambda: data.fetch(3), "data set's name or a manifests.Dataset", label="type"),
    Case("core.data.fetch", lambda: data.fetch(NUCLEI, 0), "file as a file name", label="file-type"),
    Case("core.data.fetch", lambda: data.fetch(NUCLEI, "img2d.tif", timeout_s=0), "timeout_s above 0", label="timeout"),
    Case("core.data.fetch", lambda: data.fetch(NUCLEI, "img2d.tif", retries=-1), "retries between 0 and 10", label="retries"),
    Case("core.data_cache.try_fetch", lambda: data_cache.try_fetch("no_such_set"), rf"Known: .*{NUCLEI}", error=ManifestError,
         label="unknown-set"),
    Case("core.data_cache.try_fetch", lambda: data_cache.try_fetch(3), "data set's name or a manifests.Dataset", label="type"),
    Case("core.data_cache.try_fetch", lambda: data_cache.try_fetch(NUCLEI, 0), "file as a file name", label="file-type"),
    Case("core.data_cache.try_fetch", lambda: data_cache.try_fetch(NUCLEI), "holds several files", error=ManifestError,
         label="file-needed"),
    Case("core.data_cache.try_fetch", lambda: data_cache.try_fetch(NUCLEI, "img2d.tif", instead=" "),
         "instead as a short phrase", label="instead"),
    Case("core.data_cache.cache_state", lambda: data_cache.cache_state(cache_dir=3), "cache_dir as a path"),
    Case("core.data_cache.prefetch", lambda: data_cache.prefetch(lab=42), r"lab 42.*Expected one of the labs with data: 1",
         error=ManifestError, label="unknown-lab"),
    Case("core.data_cache.prefetch", lambda: data_cache.prefetch(lab="01"), "lab as a whole number", label="lab-type"),
    Case("core.data_cache.prefetch", lambda: data_cache.prefetch(lab=1, profile="turbo"), "'cpu', 'gpu', 'smoke'", label="profile"),
    Case("core.data_cache.prefetch", lambda: data_cache.prefetch(manifest=MISSING), r"existing file.*missing", label="manifest"),
    Case("core.data.describe", lambda: data.describe("no_such_set"), rf"Known: .*{NUCLEI}", error=ManifestError,
         label="unknown"),
    Case("core.data.describe", lambda: data.describe(None), "data set's name", label="none"),
    # manifests
    Case("core.manifests.Dataset.file", lambda: manifests.get_dataset(NUCLEI).file("nope.tif"), r"known files: .*mask2d",
         error=ManifestError, label="unknown"),
    Case("core.manifests.Dataset.file", lambda: manifests.get_dataset(NUCLEI).file(), r"several files.*wu\.fetch",
         error=ManifestError, label="which"),
    Case("core.manifests.parse_manifest", lambda: manifests.parse_manifest(demo(colour="blue"), "demo.yaml"),
         r"unknown key\(s\) \['colour'\].*expected schema", error=ManifestError, label="unknown-key"),
    Case("core.manifests.parse_manifest", lambda: manifests.parse_manifest(demo(kind="video")), "'kind' must be one of",
         error=ManifestError, label="kind"),
    Case("core.manifests.parse_manifest", lambda: manifests.parse_manifest([GOOD]), "top level must be a mapping",
         error=ManifestError, label="list"),
    Case("core.manifests.parse_manifest", lambda: manifests.parse_manifest(GOOD, source=3), "source as a name", label="source"),
    Case("core.manifests.load_manifest", lambda: manifests.load_manifest(MISSING), r"missing\)\. Pass a manifest file"),
    Case("core.manifests.load_all", lambda: manifests.load_all(MISSING.parent), "to be an existing folder"),
    Case("core.manifests.get_dataset", lambda: manifests.get_dataset("nope"), rf"Known: .*{NUCLEI}", error=ManifestError,
         label="unknown"),
    Case("core.manifests.get_dataset", lambda: manifests.get_dataset(None), "data set's name", label="none"),
    Case("core.manifests.for_lab", lambda: manifests.for_lab(-1), "lab between 0 and 99", label="range"),
    Case("core.manifests.for_lab", lambda: manifests.for_lab("01"), "whole number", label="type"),
    Case("core.manifests.for_lab", lambda: manifests.for_lab(1, "turbo"), "'smoke', 'cpu', 'gpu'; got str 'turbo'", label="profile"),
    # profiles
    Case("core.profiles.choose_profile", lambda: profiles.choose_profile("turbo"), "'smoke', 'cpu', 'gpu', 'auto'; got str 'turbo' from the PROFILE parameter",
         error=ProfileError, label="unknown"),
    Case("core.profiles.choose_profile", lambda: profiles.choose_profile(3), "got int 3", error=ProfileError,
         label="type"),
    Case("core.profiles.explain_profile", lambda: profiles.explain_profile("cuda"), "PROFILE parameter", error=ProfileError,
         label="unknown"),
    Case("core.profiles.explain_profile", lambda: profiles.explain_profile("auto", gpu_usable=True), "a function",
         label="probe"),
    Case("core.profiles.per_profile", lambda: profiles.per_profile("auto", smoke=1, cpu=2, gpu=3), r"choose_profile",
         error=ProfileError, label="auto"),
    Case("core.profiles.per_profile", lambda: profiles.per_profile(None, smoke=1, cpu=2, gpu=3), "'smoke', 'cpu', 'gpu'; got NoneType",
         error=ProfileError, label="none"),
    # hardware
    Case("core.cpus.cgroup_cpu_limit", lambda: cpus.cgroup_cpu_limit(3), "cpu_max as a path", label="fd"),
    Case("core.cpus.cpu_peak_gflops_estimate", lambda: cpus.cpu_peak_gflops_estimate(0), "cores at least 1"),
    Case("core.cpus.fair_cpu_threads", lambda: cpus.fair_cpu_threads(0), "sample_s above 0.0 and below 60.0", label="zero"),
    Case("core.cpus.fair_cpu_threads", lambda: cpus.fair_cpu_threads("0.3"), "finite number", label="text"),
    Case("core.hardware.gpu_peak_tflops", lambda: hardware.gpu_peak_tflops("NVIDIA H200", "fp16"), "'bf16', 'fp32'",
         label="dtype"),
    Case("core.hardware.gpu_peak_tflops", lambda: hardware.gpu_peak_tflops(None, "bf16"), "get_device_name", label="name"),
    Case("core.hardware.print_env", lambda: hardware.print_env("out.txt"), r"\.write\(\)"),
    Case("core.hardware.require_gpu", require_gpu_without_one, r"Building a TensorRT engine needs an NVIDIA GPU.*PROFILE='cpu'",
         error=HardwareRequirementError, label="no-gpu"),
    Case("core.hardware.require_gpu", lambda: hardware.require_gpu(min_memory_gib=-1), "min_memory_gib at least 0", label="memory"),
    Case("core.hardware.require_gpu", lambda: hardware.require_gpu(purpose=""), "purpose as a short text", label="purpose"),
    # doctor
    Case("instructor.doctor.import_checks", lambda: doctor.import_checks(timeout_s=0), "timeout_s above 0"),
    Case("instructor.doctor.diagnose", lambda: doctor.diagnose(deep=False, requested="turbo"), "'smoke', 'cpu', 'gpu'",
         error=ProfileError, label="profile"),
    Case("instructor.doctor.diagnose", lambda: doctor.diagnose(deep="no"), "deep as True or False", label="deep"),
    Case("instructor.doctor.render", lambda: doctor.render({}), r"doctor\.diagnose\(\)", label="empty"),
    Case("instructor.doctor.render", lambda: doctor.render("report"), r"got str", label="text"),
    Case("instructor.doctor.healthy", lambda: doctor.healthy({"labs": {}}), r"without \['imports'\]"),
    # serving (each fails before a port is probed or a process started)
    Case("serving.port_free", lambda: serving.port_free(70000), "port between 1 and 65535", label="range"),
    Case("serving.port_free", lambda: serving.port_free("8000"), "whole number", label="text"),
    Case("serving.port_free", lambda: serving.port_free(8000, host=None), "host as an address", label="host"),
    Case("serving.choose_ports", lambda: serving.choose_ports(http=0), "http between 1 and 65535", label="range"),
    Case("serving.choose_ports", lambda: serving.choose_ports(http=18000, grpc=18000), "a different port",
         label="duplicate"),
    Case("serving.start_server", lambda: serving.start_server(["resnet"]), r"expected a non-empty list.*resnet",
         label="unknown-model"),
    Case("serving.start_server", lambda: serving.start_server([]), "non-empty models", label="empty"),
    Case("serving.start_server", lambda: serving.start_server("fixed_cost"), r"models as a list", label="string"),
    Case("serving.start_server", lambda: serving.start_server(["fixed_cost"], instances=0), "instances at least 1",
         label="instances"),
    Case("serving.start_server", lambda: serving.start_server(["fixed_cost"], max_queue_delay_us=-5),
         "max_queue_delay_us at least 0", label="delay"),
    Case("serving.start_server", lambda: serving.start_server(["fixed_cost"], metrics_port=99999),
         "metrics_port between 1 and 65535", label="port"),
    Case("serving.start_server", lambda: serving.start_server(["nuclei_unet"], onnx_path=MISSING),
         "ensure_nuclei_onnx", error=ServerError, label="onnx"),
    Case("serving.start_server", lambda: serving.start_server(["m"], repository=MISSING.parent),
         "write_model_repository", label="repository"),
    Case("serving.serve_models", lambda: serving.serve_models(["fixed_cost"], batch=4).__enter__(),
         r"unknown \['batch'\]", label="option"),
    Case("serving.serve_models", lambda: serving.serve_models(["fixed_cost"], ready_timeout_s=0).__enter__(),
         "ready_timeout_s above 0", label="timeout"),
    Case("serving.serve_models", lambda: serving.serve_models(["resnet"]).__enter__(), "drawn from", label="model"),
    Case("serving.serve_side_by_side", lambda: serving.serve_side_by_side().__enter__(), "one dict", label="none"),
    Case("serving.serve_side_by_side",
         lambda: serving.serve_side_by_side(dict(models=["fixed_cost"]), dict(models=["resnet"])).__enter__(),
         r"models=\['resnet'\]", label="second-bad"),
    Case("serving.serve_until_interrupted", lambda: serving.serve_until_interrupted("turbo"), "'smoke', 'cpu', 'gpu', 'auto'",
         error=ProfileError, label="profile"),
    Case("serving.serve_until_interrupted", lambda: serving.serve_until_interrupted("smoke", port=8000),
         r"unknown \['port'\]", label="option"),
    Case("serving.serve_until_interrupted", lambda: serving.serve_until_interrupted("smoke", models=["resnet"]),
         "drawn from", label="model"),
    Case("serving.TritonServer.log_tail", lambda: never_started().log_tail(0), "lines at least 1"),
    Case("serving.TritonServer.wait_ready", lambda: never_started().wait_ready(timeout_s=0), "timeout_s above 0"),
    Case("serving.TritonServer.stop", lambda: never_started().stop(timeout_s=-1), "timeout_s above 0"),
    # triton_load (each fails before a client connects)
    Case("serving.load.make_inputs", lambda: triton_load.make_inputs(None, {"x": np.zeros((1, 4))}),
         r"dtype one of float16, float32, int64; got shape=\(1, 4\) dtype=float64", label="float64"),
    Case("serving.load.make_inputs", lambda: triton_load.make_inputs(None, {}), "non-empty dict", label="empty"),
    Case("serving.load.make_inputs", lambda: triton_load.make_inputs(None, np.zeros((1, 4), np.float32)),
         r"dict of input name", label="bare-array"),
    Case("serving.load.make_inputs", lambda: triton_load.make_inputs(None, {"x": np.float32(1)}), "batch-first",
         label="scalar"),
    Case("serving.load.make_inputs", lambda: triton_load.make_inputs(object(), X), "tritonclient.grpc", label="module"),
    Case("serving.load.run_load", lambda: triton_load.run_load("127.0.0.1:1", "fixed_cost", X, concurrency=0, requests=4),
         "concurrency between 1 and 1024", label="concurrency"),
    Case("serving.load.run_load", lambda: triton_load.run_load("127.0.0.1:1", "fixed_cost", X, concurrency=1, requests=0),
         "requests at least 1", label="requests"),
    Case("serving.load.run_load", lambda: triton_load.run_load("127.0.0.1:1", "fixed_cost", X, concurrency=1, requests=1,
                                                              protocol="udp"), "'grpc', 'http'", label="protocol"),
    Case("serving.load.run_load", lambda: triton_load.run_load("http://127.0.0.1:1", "fixed_cost", X, concurrency=1,
                                                              requests=1), "without a scheme", label="url"),
    Case("serving.load.run_load", lambda: triton_load.run_load("127.0.0.1:1", "fixed_cost", {"x": [[1.0, 2.0]]},
                                                              concurrency=1, requests=1), "dtype one of", label="dtype"),
    Case("serving.load.run_load", lambda: triton_load.run_load("127.0.0.1:1", "fixed_cost", X, concurrency=1, requests=1,
                                                              expected=[np.ones((1, 4))]), "expected= outputs as None or a dict",
         label="expected"),
    Case("serving.load.sweep", lambda: triton_load.sweep("127.0.0.1:1", "fixed_cost", X, [], requests_per_client=1,
                                                        time_limit_s=1), "non-empty concurrencies", label="empty"),
    Case("serving.load.sweep", lambda: triton_load.sweep("127.0.0.1:1", "fixed_cost", X, [1, 0], requests_per_client=1,
                                                        time_limit_s=1), "each concurrency level between 1", label="level"),
    Case("serving.load.sweep", lambda: triton_load.sweep("127.0.0.1:1", "fixed_cost", X, [1], requests_per_client=0,
                                                        time_limit_s=1), "requests_per_client at least 1", label="requests"),
    Case("serving.load.plot_sweep", lambda: triton_load.plot_sweep([]), "non-empty results", label="empty"),
    Case("serving.load.plot_sweep", lambda: triton_load.plot_sweep([1, 2]), "list of LoadResult", label="type"),
    Case("serving.metrics.read_metrics", lambda: serving.read_metrics("127.0.0.1:8002/metrics"),
         r"http://host:port/metrics", label="scheme"),
    Case("serving.metrics.read_metrics", lambda: serving.read_metrics("http://127.0.0.1:1/metrics", ""),
         "model as None or", label="model"),
    Case("serving.metrics.batching_summary", lambda: serving.batching_summary(None, {}), "before as the dict",
         label="none"),
    Case("serving.metrics.batching_summary",
         lambda: serving.batching_summary({"nv_inference_request_success": 50.0}, {"nv_inference_request_success": 10.0}),
         r"Swap the arguments", label="swapped"),
    # the command lines and the package
    Case("serving.worker.lost_handshake_race", lambda: triton_worker.lost_handshake_race("refused"), "error as an exception"),
    Case("serving.worker.run_with_retry", lambda: triton_worker.run_with_retry(object()), "make_triton as a callable", label="not-callable"),
    Case("serving.worker.run_with_retry", lambda: triton_worker.run_with_retry(FlakyTriton([]), attempts=0), "attempts at least 1", label="attempts"),
    Case("serving.worker.run_with_retry", lambda: triton_worker.run_with_retry(FlakyTriton([]), pause_s=-1), "pause_s at least 0", label="pause"),
    Case("serving.worker.parse_args", lambda: triton_worker.parse_args("--models fixed_cost"), "argv as a list of strings"),
    Case("serving.worker.main", lambda: triton_worker.main("--models fixed_cost"), "argv as a list of strings"),
    Case("__main__.main", lambda: cli.main("doctor --quick"), r"main\(\['doctor', '--quick'\]\)"),
]

SERVER_TESTS = "tests/test_serving.py and tests/test_serving_reliability.py"
EXEMPT = {
    "core.manifests.FileEntry.from_package": "a property of a parsed entry; takes no arguments",
    "core.cpus.cpu_info": "no arguments: reads /proc and the scheduler",
    "core.hardware.gpu_usable": "no arguments: NVML and torch; None-safe where there is no GPU",
    "core.hardware.gpus": "no arguments: an empty list where there is no NVML or driver",
    "core.hardware.library_versions": "no arguments: reads installed package metadata",
    "core.hardware.summary": "no arguments: gathers gpus(), cpu_info() and torch_cuda()",
    "core.hardware.torch_cuda": "no arguments: what torch reports",
    "core.hardware.tritonserver_binary": "no arguments: a PATH lookup",
    "core.cpus.usable_cores": "no arguments: the scheduler's affinity and the cgroup quota",
    "core.paths.artifacts_dir": "no arguments: environment overrides are read as paths",
    "core.paths.build_dir": "no arguments: environment overrides are read as paths",
    "core.paths.data_cache_dir": "no arguments: environment overrides are read as paths",
    "core.paths.manifests_dir": "no arguments",
    "core.paths.notebooks_dir": "no arguments",
    "core.paths.repo_root": "no arguments: WORKSHOP_ROOT overrides",
    "core.paths.results_dir": "no arguments: under build_dir()",
    "serving.TritonServer.start": f"no arguments; called by start_server on a server it built ({SERVER_TESTS})",
    "serving.TritonServer.ready": f"no arguments; asks a running server ({SERVER_TESTS})",
    "serving.TritonServer.cleanup_report": f"no arguments; reads a stopped server's leftovers ({SERVER_TESTS})",
    "serving.TritonServer.http_url": f"a property of a started server ({SERVER_TESTS})",
    "serving.TritonServer.grpc_url": f"a property of a started server ({SERVER_TESTS})",
    "serving.TritonServer.metrics_url": f"a property of a started server ({SERVER_TESTS})",
    "serving.TritonServer.headers": f"a property of a started server ({SERVER_TESTS})",
    "serving.TritonServer.grpc_headers": f"a property of a started server ({SERVER_TESTS})",
    "serving.TritonServer.pid": f"a property of a started server ({SERVER_TESTS})",
    "serving.running_servers": "no arguments",
    "serving.stop_all_servers": "no arguments",
    "serving.leftover_workspaces": "one flag; any truthy value reads as 'every process'",
    "serving.server.worker_command": "plumbing: only start_server calls it, with the argument list it checked and built",
    "serving.load.LoadResult.rps": "a property of a finished load test",
    "serving.load.LoadResult.p50_ms": "a property of a finished load test",
    "serving.load.LoadResult.p99_ms": "a property of a finished load test",
    "serving.worker.fix_library_path": "no arguments: rewrites LD_LIBRARY_PATH for the worker process",
    "__main__.build_parser": "no arguments; test_bad_command_lines_end_in_a_usage_message checks what it rejects",
}



def test_nothing_was_left_behind_by_the_wrong_calls() -> None:
    assert not serving.running_servers()


def test_valid_profiles_still_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKSHOP_PROFILE", raising=False)
    assert profiles.per_profile(" GPU ", smoke=1, cpu=2, gpu=3) == 3
    assert profiles.choose_profile("Smoke") == "smoke"
    assert profiles.explain_profile(None, gpu_usable=lambda: False).profile == "cpu"
    assert profiles.explain_profile("", gpu_usable=lambda: False).profile == "cpu"  # blank reads as 'auto'
    assert [ds.name for ds in manifests.for_lab(np.int64(1), "smoke")] == [NUCLEI]


def test_valid_data_calls_still_pass(tmp_path: Path) -> None:
    image = data.fetch(NUCLEI, "img2d.tif", progress=False)
    assert data.sha256_of(str(image)) == manifests.get_dataset(NUCLEI).file("img2d.tif").sha256
    assert data.describe(manifests.get_dataset(NUCLEI)).startswith(NUCLEI)
    assert manifests.load_manifest(str(manifests.get_dataset(NUCLEI).source_file)).name == NUCLEI
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "a")
    (tmp_path / "set.zip").write_bytes(buffer.getvalue())
    folder = data.safe_extract(str(tmp_path / "set.zip"), str(tmp_path / "set"), "zip")
    assert (folder / "a.txt").read_text() == "a"
    assert all(state.dataset for state in data_cache.cache_state(str(tmp_path)))


def test_valid_hardware_and_doctor_calls_still_pass(capsys: pytest.CaptureFixture) -> None:
    assert hardware.gpu_peak_tflops("NVIDIA H200", "bf16") == pytest.approx(989.4)
    assert hardware.gpu_peak_tflops("Some Future GPU", "fp32") is None
    assert cpus.fair_cpu_threads(0.05) >= 1
    peak_all, peak_one = cpus.cpu_peak_gflops_estimate(), cpus.cpu_peak_gflops_estimate(1)
    if peak_all is not None and peak_one is not None:  # None where /proc/cpuinfo has no flags (macOS)
        assert peak_all == pytest.approx(peak_one * cpus.cpu_info()["cores"])
    out = io.StringIO()
    hardware.print_env(out)
    assert "Libraries:" in out.getvalue()
    report = {"hardware": hardware.summary(), "tritonserver_binary": None, "profile": {"profile": "cpu", "reason": "r"},
              "imports": [{"name": "torch", "ok": True, "detail": ""}], "labs": {}, "data": []}
    assert doctor.healthy(report) and "Profile  cpu" in doctor.render(report)


def test_valid_serving_arguments_pass_the_checks(tmp_path: Path) -> None:
    assert serving.START_OPTIONS[:3] == ("onnx_path", "repository", "binary")
    assert serving.launch._check_start("t", ("fixed_cost", "nuclei_unet"), {"instances": np.int64(2), "http_port": 18000}) == [
        "fixed_cost", "nuclei_unet"]
    assert serving.launch._check_start("t", ["nuclei_unet_trt"], {"repository": tmp_path}) == ["nuclei_unet_trt"]
    assert serving.port_free(np.int64(serving.launch._any_free_port(set())))
    assert never_started().log_tail(5) == "(no log written)"


def test_valid_load_test_arguments_pass_the_checks(loopback_server: LoopbackServer) -> None:
    grpcclient = pytest.importorskip("tritonclient.grpc")
    (item,) = triton_load.make_inputs(grpcclient, {"image": np.zeros((2, 1, 16, 16), np.float32)})
    assert item.shape() == [2, 1, 16, 16] and item.datatype() == "FP32"
    url = loopback_server.add("/metrics", b'nv_inference_request_success{model="fixed_cost",version="1"} 40\n')
    after = serving.read_metrics(url, "fixed_cost")
    assert after == {"nv_inference_request_success": 40.0}
    assert serving.batching_summary({}, after)["requests"] == 40.0
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    figure = triton_load.plot_sweep((result(1), result(2)), title="t")
    assert len(figure.axes) == 2


def test_bad_command_lines_end_in_a_usage_message(capsys: pytest.CaptureFixture) -> None:
    """argparse rejects a bad command line with SystemExit(2) and a message naming the mistake (not a WorkshopError)."""
    for argv, fragment in (
        (["--models", "resnet", "--workspace", "/tmp/x"], "PyTriton serves only"),
        (["--models", "nuclei_unet", "--workspace", "/tmp/x"], "needs --onnx PATH"),
        (["--models", "fixed_cost", "--workspace", "/tmp/x", "--instances", "0"], "--instances 0: expected at least 1"),
        (["--models", "fixed_cost", "--workspace", "/tmp/x", "--http-port", "70000"], "--http-port 70000: expected a port between 1 and 65535"),
        (["--models", "fixed_cost"], "--workspace"),
    ):
        with pytest.raises(SystemExit) as stopped:
            triton_worker.parse_args(argv)
        assert stopped.value.code == 2 and fragment in capsys.readouterr().err, argv
    args = triton_worker.parse_args(("--models", "fixed_cost", "--workspace", "/tmp/x"))
    assert args.models == ["fixed_cost"] and args.instances == 1
    with pytest.raises(SystemExit) as stopped:
        cli.main(["frobnicate"])
    assert stopped.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["prefetch", "--profile", "turbo"])
    assert "invalid choice: 'turbo'" in capsys.readouterr().err


def test_the_command_line_prints_workshop_errors(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(("prefetch", "--lab", "42")) == 2
    err = capsys.readouterr().err
    assert "No data set" in err and "Expected one of the labs with data" in err
    assert cli.main(["prefetch", "--manifest", str(MISSING)]) == 2
    assert "expected path to be an existing file" in capsys.readouterr().err


def test_errors_keep_their_builtin_bases() -> None:
    """Callers that caught ValueError (or ManifestError, ProfileError) before still catch these."""
    with pytest.raises(ValueError):
        serving.start_server(["resnet"])
    with pytest.raises(ValueError):
        triton_load.run_load("127.0.0.1:1", "m", X, concurrency=0, requests=1)
    with pytest.raises(ProfileError):
        profiles.per_profile("huge", smoke=1, cpu=2, gpu=3)
    with pytest.raises(FileNotFoundError):
        workshop_utils.nuclei.load_nuclei_model("/no/such/model.pt")
