"""Profile selection with NVML absent and present (faked), and the override order."""

from __future__ import annotations

import types

import pytest

from workshop_utils.core import hardware, profiles
from workshop_utils.core.errors import HardwareRequirementError, ProfileError


class FakeNvml(types.SimpleNamespace):
    """A stand-in for pynvml reporting one H200-like GPU."""

    def __init__(self, fail_init: bool = False) -> None:
        super().__init__(shutdowns=0)
        self.fail_init = fail_init

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 1

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "570.86.15"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:  # noqa: N802
        return 12080

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:  # noqa: N802
        return f"handle{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:  # noqa: N802
        return b"NVIDIA H200"

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> types.SimpleNamespace:  # noqa: N802
        return types.SimpleNamespace(total=141 * 2**30, free=140 * 2**30)

    def nvmlDeviceGetCudaComputeCapability(self, handle: str) -> tuple[int, int]:  # noqa: N802
        return (9, 0)


@pytest.fixture(autouse=True)
def no_env_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKSHOP_PROFILE", raising=False)


def test_nvml_absent_means_no_gpu_and_cpu_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: None)
    assert hardware.gpus() == []
    choice = profiles.explain_profile("auto")
    assert choice.profile == "cpu" and "no GPU" in choice.reason


def test_nvml_present_but_driver_missing_reads_as_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: FakeNvml(fail_init=True))
    assert hardware.gpus() == []
    assert profiles.choose_profile() == "cpu"


def test_nvml_present_reports_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml()
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: fake)
    (gpu,) = hardware.gpus()
    assert gpu.name == "NVIDIA H200" and gpu.compute_capability == "9.0"
    assert gpu.memory_total_mib == pytest.approx(141 * 1024)
    assert gpu.driver_version == "570.86.15" and gpu.cuda_driver_version == "12.8"
    assert fake.shutdowns == 1, "NVML must be shut down after each query"


def test_gpu_present_and_usable_by_torch_means_gpu_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: FakeNvml())
    monkeypatch.setattr(hardware, "torch_cuda", lambda: {"torch": "x", "built_with_cuda": "12.8",
                                                          "cuda_available": True, "device_count": 1})
    assert profiles.explain_profile().profile == "gpu"


def test_gpu_present_but_cpu_torch_means_cpu_profile_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: FakeNvml())
    monkeypatch.setattr(hardware, "torch_cuda", lambda: {"torch": "2.13.0+cpu", "built_with_cuda": None,
                                                          "cuda_available": False, "device_count": 0})
    choice = profiles.explain_profile()
    assert choice.profile == "cpu" and "torch cannot use it" in choice.reason


def test_parameter_beats_environment_beats_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: None)
    monkeypatch.setenv("WORKSHOP_PROFILE", "smoke")
    assert profiles.choose_profile("auto") == "smoke"
    assert profiles.choose_profile("GPU") == "gpu"
    monkeypatch.setenv("WORKSHOP_PROFILE", "auto")
    assert profiles.choose_profile("auto") == "cpu"


@pytest.mark.parametrize("bad", ["fast", "smokey", "cuda"])
def test_unknown_profile_is_rejected_with_the_choices(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProfileError, match="'smoke', 'cpu', 'gpu'"):
        profiles.choose_profile(bad)
    monkeypatch.setenv("WORKSHOP_PROFILE", bad)
    with pytest.raises(ProfileError, match="WORKSHOP_PROFILE"):
        profiles.choose_profile("auto")


def test_per_profile_picks_the_value() -> None:
    assert profiles.per_profile("cpu", smoke=1, cpu=2, gpu=3) == 2
    with pytest.raises(ProfileError):
        profiles.per_profile("huge", smoke=1, cpu=2, gpu=3)


def test_require_gpu_explains_what_to_do_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: None)
    with pytest.raises(HardwareRequirementError, match="PROFILE='cpu'"):
        hardware.require_gpu(purpose="Building a TensorRT engine")


def test_require_gpu_checks_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: FakeNvml())
    with pytest.raises(HardwareRequirementError, match="200.0 GiB"):
        hardware.require_gpu(min_memory_gib=200)


def test_peak_table_and_print_env_without_gpu(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert hardware.gpu_peak_tflops("NVIDIA H200", "bf16") == pytest.approx(989.4)
    assert hardware.gpu_peak_tflops("Some Future GPU", "bf16") is None
    monkeypatch.setattr(hardware, "_load_pynvml", lambda: None)
    info = hardware.print_env()
    assert "GPU: none found" in capsys.readouterr().out
    assert info["versions"]["python"]
