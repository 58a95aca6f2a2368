"""Lab 00's import checks run once per set of installed packages, and only a clean pass is remembered."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from workshop_utils.instructor import doctor


@dataclass
class CountedChecks:
    """A fast stand-in for import_checks: ``calls`` counts its runs, ``ok`` says whether NeMo "imports".

    The optional TensorRT never imports, as on a machine without NVIDIA's container.
    """

    ok: bool = True
    calls: list[list[doctor.ImportCheck]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.calls)

    def __call__(self, timeout_s: float = 120.0) -> list[doctor.ImportCheck]:
        checks = [doctor.ImportCheck(name, name != "tensorrt" and (self.ok or name != "nemo asr"),
                                     "" if name != "tensorrt" else "No module named 'tensorrt'")
                  for name in doctor.IMPORT_CHECKS]
        self.calls.append(checks)
        return checks


@pytest.fixture
def counted_checks(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> CountedChecks:
    fake = CountedChecks()
    monkeypatch.setattr(doctor, "import_checks", fake)
    monkeypatch.setattr(doctor, "environment_fingerprint", lambda: "a" * 64)
    return fake


def test_a_clean_pass_is_reused_with_the_same_packages(counted_checks: CountedChecks) -> None:
    first, first_at = doctor.checked_imports()
    second, second_at = doctor.checked_imports()
    assert len(counted_checks) == 1, "the second call imported everything again"
    assert first_at is None and second_at is not None
    assert second == first, "the record gives back every check as it was, the optional TensorRT's failure too"


def test_fresh_or_other_packages_check_again(counted_checks: CountedChecks, monkeypatch: pytest.MonkeyPatch) -> None:
    doctor.checked_imports()
    doctor.checked_imports(fresh=True)
    assert len(counted_checks) == 2
    monkeypatch.setattr(doctor, "environment_fingerprint", lambda: "b" * 64)  # e.g. after a pip install
    _, at = doctor.checked_imports()
    assert len(counted_checks) == 3 and at is None


def test_a_failure_is_never_remembered(counted_checks: CountedChecks) -> None:
    counted_checks.ok = False
    checks, _ = doctor.checked_imports()
    assert not all(c.ok for c in checks)
    doctor.checked_imports()
    assert len(counted_checks) == 2, "a failed check must run again next time, so a fix shows at once"


def test_a_damaged_record_means_checking_again(counted_checks: CountedChecks) -> None:
    doctor.checked_imports()
    record = doctor._passed_record("a" * 64)
    record.write_text("{not json")
    _, at = doctor.checked_imports()
    assert len(counted_checks) == 2 and at is None


def test_the_report_says_where_its_imports_come_from(counted_checks: CountedChecks) -> None:
    assert "as checked at" not in doctor.render(doctor.diagnose())
    rendered = doctor.render(doctor.diagnose())
    assert "as checked at" in rendered and "imports them again" in rendered
    assert doctor.diagnose(fresh=True)["imports_checked_at"] is None


def test_the_fingerprint_follows_the_installed_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    base = doctor.environment_fingerprint()
    assert base == doctor.environment_fingerprint()
    monkeypatch.setitem(doctor.IMPORT_CHECKS, "extra", "import json")
    assert doctor.environment_fingerprint() != base
