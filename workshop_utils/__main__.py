"""Command line: ``python -m workshop_utils {doctor,prefetch,verify,run}``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import data, manifests
from .errors import WorkshopError


def _doctor(args: argparse.Namespace) -> int:
    from . import doctor

    report = doctor.diagnose(deep=not args.quick)
    print(json.dumps(report, indent=2) if args.json else doctor.render(report))
    return 0 if doctor.healthy(report) else 1


def _prefetch(args: argparse.Namespace) -> int:
    fetched = data.prefetch(lab=args.lab, manifest=args.manifest, profile=args.profile)
    print(f"{len(fetched)} file(s) ready in the cache.")
    return 0


def _verify(args: argparse.Namespace) -> int:
    datasets = manifests.load_all()
    print(f"{len(datasets)} manifest(s) pass the schema check.")
    bad = 0
    for state in data.cache_state():
        if not state.present:
            print(f"absent   {state.dataset}/{state.file}")
            continue
        actual = data.sha256_of(Path(state.location))
        expected = datasets[state.dataset].file(state.file).sha256
        ok = actual == expected
        bad += not ok
        print(f"{'ok      ' if ok else 'CORRUPT '} {state.dataset}/{state.file}" + ("" if ok else f" (got {actual[:12]}…)"))
    if bad:
        print(f"{bad} cached file(s) do not match their manifest: delete them and run `python -m workshop_utils prefetch`.")
    return 1 if bad else 0


def _run(args: argparse.Namespace) -> int:
    from .runner import run_labs

    runs = run_labs(profile=args.profile, selection=args.labs or None, cell_timeout_s=args.cell_timeout)
    return 0 if all(run.ok for run in runs) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workshop_utils", description="Accelerated AI Workshop tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doctor", help="check this machine for the labs")
    doc.add_argument("--json", action="store_true", help="machine-readable output")
    doc.add_argument("--quick", action="store_true", help="skip the import checks")
    doc.set_defaults(func=_doctor)
    pre = sub.add_parser("prefetch", help="download and verify data into the cache")
    pre.add_argument("--lab", type=int, help="only what this lab number uses")
    pre.add_argument("--manifest", type=Path, help="only this manifest file")
    pre.add_argument("--profile", choices=["smoke", "cpu", "gpu"], help="only what this profile needs")
    pre.set_defaults(func=_prefetch)
    ver = sub.add_parser("verify", help="check the manifests and re-hash cached files")
    ver.set_defaults(func=_verify)
    run = sub.add_parser("run", help="execute the lab notebooks and write build/summary.md")
    run.add_argument("--profile", default="auto", help="smoke, cpu, gpu or auto (default)")
    run.add_argument("--labs", nargs="*", help="lab prefixes, e.g. 00 01")
    run.add_argument("--cell-timeout", type=int, default=1800, help="seconds one cell may run")
    run.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except WorkshopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
