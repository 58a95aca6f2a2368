"""The Triton serving helpers: ports, readiness, logs on failure, and cleanup however a server ends."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_serving_reliability import free_ports
from workshop_utils import serving
from workshop_utils.core.errors import PortInUseError, ServerError
from workshop_utils.serving import load as triton_load
from workshop_utils.serving import repository as triton_repository

TILE, CLASSES = 16, 2


def tiny_onnx(path: Path) -> Path:
    """A one-convolution model with the nuclei model's contract: image (N,1,T,T) -> logits (N,C,T,T)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(CLASSES, 1, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["logits"], pads=[1, 1, 1, 1])],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, TILE, TILE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES, TILE, TILE])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def assert_clean(server: serving.TritonServer) -> None:
    """No process in the worker's group, no bound port, no workspace, no PyTriton shared memory."""
    assert server.cleanup_report(), server.leftovers
    assert server.pid is not None and serving.server._group_pids(server.pid) == []
    # Its own sockets are closed; the port itself may already serve another lab (8000 is everyone's first choice).
    listeners = serving.ports.listening_sockets(server.ports.values())
    assert server.own_listeners and listeners is not None, "a ready server's listeners must have been recorded"
    assert not set(server.own_listeners) & set(listeners), (server.own_listeners, listeners)
    assert not server.workspace.exists()
    assert not list(Path("/dev/shm").glob(f"pytrtion{server.pid}-*"))


def explicit_free_ports() -> dict[str, int]:
    """``{"http_port": ..., "grpc_port": ..., "metrics_port": ...}``: ports the kernel hands out, never 8000-8002."""
    return {f"{kind}_port": port for kind, port in zip(serving.DEFAULT_PORTS, free_ports(3), strict=True)}


def test_port_in_use_gives_a_clear_error(isolated_dirs: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not serving.port_free(port)
        with pytest.raises(PortInUseError, match=rf"Port {port} \(http\) is already in use.*http_port=None"):
            serving.start_server(["fixed_cost"], http_port=port)
        chosen = serving.choose_ports()
        assert port not in chosen.values() and len(set(chosen.values())) == 3
    assert not serving.leftover_workspaces()


def test_bad_arguments_are_rejected_before_starting(isolated_dirs: Path) -> None:
    with pytest.raises(ValueError, match="expected a non-empty list"):
        serving.start_server(["resnet"])
    with pytest.raises(ValueError, match="instances"):
        serving.start_server(["fixed_cost"], instances=0)
    with pytest.raises(ServerError, match="ensure_nuclei_onnx"):
        serving.start_server(["nuclei_unet"], onnx_path=isolated_dirs / "missing.onnx")


def test_server_that_never_becomes_ready_times_out_with_its_log(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGINT ends it, as it ends the real worker: a shell's background job would otherwise inherit it ignored
    fake = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "print('fake server booting', flush=True); time.sleep(600)"]
    monkeypatch.setattr(serving.launch, "worker_command", lambda args: fake)
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"(?s)not ready after 2 s.*fake server booting") as caught:
        with serving.serve_models(["fixed_cost"], ready_timeout_s=2):
            pytest.fail("the block must not run")
    assert time.monotonic() - started < 120  # a runaway cap: it gives up at 2 s, never at the fake's 600
    assert "ready_timeout_s" in str(caught.value)
    assert not serving.running_servers()


def test_round_trip_then_exception_inside_with_cleans_up(isolated_dirs: Path) -> None:
    import onnxruntime as ort
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    onnx_path = tiny_onnx(isolated_dirs / "tiny.onnx")
    images = np.random.default_rng(1).random((3, 1, TILE, TILE), dtype=np.float32)
    (local,) = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"image": images})
    server = None
    with pytest.raises(RuntimeError, match="boom"):
        with serving.serve_models(["nuclei_unet", "fixed_cost"], onnx_path=onnx_path, ready_timeout_s=90) as server:
            assert server.ports["http"] != server.ports["grpc"]
            for module, url in ((httpclient, server.http_url), (grpcclient, server.grpc_url)):
                client = module.InferenceServerClient(url=url)
                assert client.is_server_ready() and client.is_model_ready("nuclei_unet")
                result = client.infer("nuclei_unet", triton_load.make_inputs(module, {"image": images}))
                np.testing.assert_allclose(result.as_numpy("logits"), local, atol=1e-5)
                client.close()
            http = httpclient.InferenceServerClient(url=server.http_url)
            with pytest.raises(Exception, match="restricted"):
                http.get_inference_statistics("nuclei_unet")  # the token guards the statistics endpoint
            assert http.get_inference_statistics("nuclei_unet", headers=server.headers)["model_stats"]
            load = triton_load.run_load(server.grpc_url, "fixed_cost", {"x": np.zeros((1, 4), np.float32)},
                                        concurrency=4, requests=40, time_limit_s=20,
                                        expected={"y": np.ones((1, 4), np.float32)})
            assert load.failed == 0 and load.requests == 40, load.errors
            metrics = serving.read_metrics(server.metrics_url, "fixed_cost")
            assert metrics["nv_inference_request_success"] >= 40
            raise RuntimeError("boom")
    assert server is not None
    assert_clean(server)


def test_sigint_to_the_worker_cleans_up(isolated_dirs: Path) -> None:
    with serving.serve_models(["fixed_cost"], ready_timeout_s=90) as server:
        assert server.process is not None
        os.kill(server.pid, signal.SIGINT)
        assert server.process.wait(timeout=30) == 0
        assert not server.workspace.exists(), server.log_tail()
        assert "received SIGINT" in server.log_tail(200)
    assert_clean(server)


def test_worker_stops_when_its_parent_dies(isolated_dirs: Path) -> None:
    """A killed notebook kernel: the worker's watchdog notices and stops the server."""
    script = (  # explicit free ports: 8000-8002 may serve another lab by the time this one is checked
        "import json, time\nfrom workshop_utils import serving\n"
        f"s = serving.start_server(['fixed_cost'], **{explicit_free_ports()!r}).wait_ready(90)\n"
        "print(json.dumps({'pid': s.pid, 'workspace': str(s.workspace), 'ports': s.ports}), flush=True)\n"
        "time.sleep(600)\n"
    )
    kernel = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        info = json.loads(kernel.stdout.readline())  # type: ignore[union-attr]
    finally:
        kernel.kill()
        kernel.wait()
    deadline = time.monotonic() + 30
    while (serving.server._group_pids(info["pid"]) or Path(info["workspace"]).exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert serving.server._group_pids(info["pid"]) == [], "the worker outlived its parent"
    assert not Path(info["workspace"]).exists()
    assert all(serving.port_free(port) for port in info["ports"].values())
    assert not list(Path("/dev/shm").glob(f"pytrtion{info['pid']}-*"))


# A process group like a worker's: a child creates a multiprocessing segment (as PyTriton's tensor store does) and is
# killed before it can unlink it; multiprocessing's resource tracker, in the same group, dies with it.
SEGMENT_HOLDER = (
    "import sys, time\nfrom multiprocessing import shared_memory\n"
    "segment = shared_memory.SharedMemory(create=True, size=4096)\n"
    "print(segment.name, flush=True)\ntime.sleep(600)\n"
)


def start_segment_holder(leader_code: str = SEGMENT_HOLDER) -> tuple[subprocess.Popen[str], Path]:
    holder = subprocess.Popen([sys.executable, "-c", leader_code], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    name = holder.stdout.readline().strip()  # type: ignore[union-attr]
    segment = Path("/dev/shm") / name
    assert name.startswith("psm_") and segment.exists(), name
    return holder, segment


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc (Linux)")
def test_killing_a_server_group_frees_its_tensor_store_memory(tmp_path: Path) -> None:
    """The parent's SIGKILL of a hung worker's group also removes the psm_* segments the group had mapped."""
    holder, segment = start_segment_holder()
    others, other_segment = start_segment_holder()  # another server's group: must be left alone
    try:
        serving.server._kill_group(holder.pid, tmp_path / "workspace")
        holder.wait(timeout=10)
        assert not segment.exists(), "the killed group's shared memory stayed in /dev/shm"
        assert other_segment.exists(), "another group's shared memory was removed"
    finally:
        serving.server._kill_group(others.pid, tmp_path / "other-workspace")
        others.wait(timeout=10)
    assert not other_segment.exists()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc (Linux)")
def test_a_worker_that_ends_mid_start_up_frees_its_group_tensor_store_memory() -> None:
    """The worker's last step (kill the rest of its group) also unlinks the segments its children had mapped."""
    leader = (
        "import subprocess, sys, time\nfrom workshop_utils.serving import worker\n"
        f"child = subprocess.Popen([sys.executable, '-c', {SEGMENT_HOLDER!r}], stdout=subprocess.PIPE, text=True)\n"
        "print(child.stdout.readline().strip(), flush=True)\n"
        "sys.stdin.readline()\nworker._kill_rest_of_group()\nprint('done', flush=True)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", leader], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, start_new_session=True, cwd=Path(__file__).parents[1])
    try:
        segment = Path("/dev/shm") / holder.stdout.readline().strip()  # type: ignore[union-attr]
        assert segment.name.startswith("psm_") and segment.exists()
        out, _ = holder.communicate("go\n", timeout=30)
        assert "done" in out
        assert not segment.exists(), "the worker left its group's shared memory in /dev/shm"
    finally:
        serving.server._kill_group(holder.pid, Path("/nonexistent-workspace"))


def test_model_repository_config(isolated_dirs: Path) -> None:
    onnx_path = tiny_onnx(isolated_dirs / "tiny.onnx")
    io = triton_repository.onnx_io(onnx_path)
    assert io == {"input": ("image", [1, TILE, TILE]), "output": ("logits", [CLASSES, TILE, TILE])}
    text = triton_repository.config_pbtxt("nuclei_unet", io, max_batch_size=8, max_queue_delay_us=300, instances=2)
    for line in ('backend: "onnxruntime"', "max_batch_size: 8", f"dims: [1, {TILE}, {TILE}]",
                 "max_queue_delay_microseconds: 300", "preferred_batch_size: [ 4, 8 ]", "count: 2, kind: KIND_GPU"):
        assert line in text, text
    trt = triton_repository.config_pbtxt("nuclei_unet_trt", io, backend="tensorrt", dynamic_batching=False)
    assert 'platform: "tensorrt_plan"' in trt and "dynamic_batching" not in trt
    repo = triton_repository.write_model_repository(onnx_path, isolated_dirs / "repo", kind="KIND_CPU")
    assert triton_repository.repository_models(repo) == ["nuclei_unet"]
    assert (repo / "nuclei_unet" / "1" / "model.onnx").is_file()
    with pytest.raises(ValueError, match="backend"):
        triton_repository.config_pbtxt("x", io, backend="tflite")


def test_a_load_result_with_failures_prints_its_first_error() -> None:
    from workshop_utils.serving.load import LoadResult

    quiet = LoadResult("nuclei_unet", "grpc", 8, 10, 0, 1.0, [5.0] * 10)
    assert "error" not in str(quiet)
    failed = LoadResult("nuclei_unet", "grpc", 8, 10, 3, 1.0, [5.0] * 7,
                        ["InferenceServerException: [StatusCode.UNAVAILABLE] failed to connect"] * 3)
    assert "3 failed" in str(failed) and "first error: InferenceServerException" in str(failed)
    lost = LoadResult("nuclei_unet", "grpc", 8, 10, 2, 1.0, [5.0] * 8)
    assert "no error was caught" in str(lost)


def test_a_server_that_loses_its_port_to_another_starts_again_on_new_ports(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Two servers starting at once can both find a port free; the loser reaches the winner (403) and starts again."""
    import http.server
    import threading

    from workshop_utils.serving import launch

    class OtherServer(http.server.BaseHTTPRequestHandler):  # another user's Triton: it wants its own token
        def do_GET(self) -> None:
            body = b'{"error":"This API is restricted, expecting header \'triton-access-token\'"}'
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OtherServer)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    taken = other.server_address[1]
    real_choose = launch.choose_ports
    calls = []

    def raced(*args: object, **kwargs: object) -> dict[str, int]:
        chosen = real_choose(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(chosen)
        return {**chosen, "http": taken} if len(calls) == 1 else chosen  # free when checked, taken when bound

    monkeypatch.setattr(launch, "choose_ports", raced)
    started = time.monotonic()
    try:
        with serving.serve_models(["fixed_cost"], ready_timeout_s=120) as server:
            assert time.monotonic() - started < 60, "the clash must be seen at once, not after the ready timeout"
            assert server.ports["http"] != taken and taken not in server.ports.values()
            load = serving.run_load(server.grpc_url, "fixed_cost", {"x": np.zeros((1, 4), np.float32)},
                                    concurrency=2, requests=10)
            assert load.failed == 0, load.errors
        assert_clean(server)
    finally:
        other.shutdown()
        other.server_close()
    assert len(calls) >= 2
    assert f"Another process took this server's ports ({taken}," in capsys.readouterr().out


def test_listening_sockets_tell_one_listener_on_a_port_from_the_next() -> None:
    first = socket.socket()
    first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    first.bind(("127.0.0.1", 0))
    first.listen()
    port = first.getsockname()[1]
    try:
        listeners = serving.ports.listening_sockets([port])
        assert listeners is not None and list(listeners.values()) == [port], listeners
        (inode,) = listeners
        assert inode in serving.ports.socket_inodes([os.getpid()])
    finally:
        first.close()
    assert serving.ports.listening_sockets([port]) == {}
    with socket.socket() as second:
        second.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        second.bind(("127.0.0.1", port))
        second.listen()
        listeners = serving.ports.listening_sockets([port])
        assert listeners is not None and len(listeners) == 1 and inode not in listeners, "a new listener, a new socket"


def test_a_port_another_process_takes_after_the_stop_is_not_a_leftover(
        isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another lab's server takes 8000 the moment this one lets it go: this server still stopped cleanly."""
    taken: list[socket.socket] = []
    kill_group = serving.server._kill_group

    def kill_then_take_the_port(pgid: int, workspace: Path) -> None:
        kill_group(pgid, workspace)
        newcomer = socket.socket()
        newcomer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        newcomer.bind(("127.0.0.1", server.ports["http"]))
        newcomer.listen()
        taken.append(newcomer)

    monkeypatch.setattr(serving.server, "_kill_group", kill_then_take_the_port)
    try:
        with serving.serve_models(["fixed_cost"], ready_timeout_s=90, **explicit_free_ports()) as server:
            pass
        assert taken and not serving.port_free(server.ports["http"]), "the stand-in must hold the port"
        assert server.cleanup_report(), server.leftovers
        assert server.ports_held_elsewhere == []
    finally:
        for newcomer in taken:
            newcomer.close()


def test_a_server_that_outlives_its_stop_is_reported_with_its_ports(
        isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the signals lost, stop() must say what is still there: the process and each port it holds."""
    kill_group = serving.server._kill_group
    monkeypatch.setattr(serving.server, "_kill_group", lambda pgid, workspace: None)
    server = serving.start_server(["fixed_cost"], **explicit_free_ports()).wait_ready(90)
    assert server.process is not None
    monkeypatch.setattr(server.process, "send_signal", lambda signum: None)
    try:
        assert not server.stop(timeout_s=0.5)
        assert f"process pid={server.pid}" in server.leftovers
        for kind, port in server.ports.items():
            assert f"{kind} port {port} still bound" in server.leftovers, server.leftovers
    finally:
        kill_group(server.process.pid, server.workspace)
    assert serving.server._group_pids(server.pid) == []
