"""Command line: ``python -m workshop_utils {doctor,prefetch,verify,run,serve}``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workshop_utils.core import contract, data, data_cache, data_store, manifests, paths
from workshop_utils.core.errors import WorkshopError
from workshop_utils.core.inputs import bad_input, describe
from workshop_utils.core.profiles import PROFILES


def _doctor(args: argparse.Namespace) -> int:
    from workshop_utils.instructor import doctor

    report = doctor.diagnose(deep=not args.quick, fresh=True)  # asked for by hand: check now
    print(json.dumps(report, indent=2) if args.json else doctor.render(report))
    return 0 if doctor.healthy(report) else 1


def _prefetch(args: argparse.Namespace) -> int:
    if args.dry_run:
        plan = data_cache.prefetch_plan(lab=args.lab, manifest=args.manifest, profile=args.profile)
        for ds, entry in plan:
            print(f"{ds.name}/{entry.name}  ({entry.size_text}) from {entry.source_text}")
        print(f"prefetch{f' --profile {args.profile}' if args.profile else ''}: {data_cache.total_text(plan)}")
        return 0
    fetched = data_cache.prefetch(lab=args.lab, manifest=args.manifest, profile=args.profile)
    print(f"{len(fetched)} file(s) ready in the cache.")
    return 0


def _verify(args: argparse.Namespace) -> int:
    datasets = manifests.load_all()
    print(f"{len(datasets)} manifest(s) pass the schema check.")
    bad = 0
    for state in data_cache.cache_state():
        if not state.present:
            print(f"absent   {state.dataset}/{state.file}")
            continue
        entry = datasets[state.dataset].file(state.file)
        known = data_store.known_hash_for(entry, None if entry.from_package else paths.data_cache_dir() / state.dataset) or ""
        ok = data.hash_matches(Path(state.location), known)
        bad += not ok
        print(f"{'ok      ' if ok else 'CORRUPT '} {state.dataset}/{state.file}" + ("" if ok else f" (expected {known[:19]}…)"))
    if bad:
        print(f"{bad} cached file(s) do not match their manifest: delete them and run `python -m workshop_utils prefetch`.")
    return 1 if bad else 0


def _run(args: argparse.Namespace) -> int:
    from workshop_utils.instructor.runner import run_labs

    runs = run_labs(profile=args.profile, selection=args.labs or None, cell_timeout_s=args.cell_timeout)
    return 0 if all(run.ok for run in runs) else 1


def _student(args: argparse.Namespace) -> int:
    from workshop_utils.instructor.student import make_student_notebooks

    for name, count in make_student_notebooks(args.out).items():
        print(f"{name}: {count} exercise(s)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from workshop_utils.instructor.report import collect, write_report

    path = write_report()
    rows = collect()
    for row in rows:
        print(f"{row.lab:<32} {row.profile:<5} {row.wall_s:>6.0f} s  {'pass' if row.passed and row.within_budget else 'FAIL'}")
    print(f"Report: {path}")
    return 0 if all(r.passed and r.within_budget for r in rows) else 1


def _serve(args: argparse.Namespace) -> int:
    from workshop_utils.serving.launch import serve_until_interrupted

    return serve_until_interrupted(args.profile, http_port=args.http_port, grpc_port=args.grpc_port,
                                   metrics_port=args.metrics_port, models=args.models)


def _slides(args: argparse.Namespace) -> int:
    from workshop_utils.instructor.slides import build_slides

    decks = build_slides()
    print(f"{len(decks)} deck(s) in {decks[0].parent if decks else 'build/slides'}: open index.html from file://")
    return 0


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
    pre.add_argument("--profile", choices=list(PROFILES), help="only what this profile needs")
    pre.add_argument("--dry-run", action="store_true", help="list the files and the total size; fetch nothing")
    pre.set_defaults(func=_prefetch)
    ver = sub.add_parser("verify", help="check the manifests and re-hash cached files")
    ver.set_defaults(func=_verify)
    run = sub.add_parser("run", help="execute the lab notebooks and write build/summary.md")
    run.add_argument("--profile", default="auto", help="smoke, cpu, gpu or auto (default)")
    run.add_argument("--labs", nargs="*", help="lab prefixes, e.g. 00 01")
    run.add_argument("--cell-timeout", type=int, default=1800, help="seconds one cell may run")
    run.set_defaults(func=_run)
    stu = sub.add_parser("student", help="write attendee copies of the labs (solutions replaced by stubs)")
    stu.add_argument("--out", type=Path, default=None, help="folder (default: student/)")
    stu.set_defaults(func=_student)
    sli = sub.add_parser("slides", help="build offline reveal.js decks into build/slides/")
    sli.set_defaults(func=_slides)
    rep = sub.add_parser("report", help="write build/report.html from build/results/*.json")
    rep.set_defaults(func=_report)
    srv = sub.add_parser("serve", help="serve the nuclei model with Triton on 127.0.0.1 until Ctrl-C")
    srv.add_argument("--profile", default="auto", help="profile used if the model must be built first")
    srv.add_argument("--http-port", type=int, default=8000)
    srv.add_argument("--grpc-port", type=int, default=8001)
    srv.add_argument("--metrics-port", type=int, default=8002)
    srv.add_argument("--models", nargs="+", default=[contract.NUCLEI_MODEL], choices=list(contract.MODELS))
    srv.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; argparse reports a bad command line (exit 2), a WorkshopError is printed (exit 2)."""
    if argv is not None and (isinstance(argv, str) or not isinstance(argv, (list, tuple))
                             or not all(isinstance(arg, str) for arg in argv)):
        raise bad_input("__main__.main", "argv as a list of strings (or None for sys.argv)", describe(argv),
                        "Split the command line, e.g. main(['doctor', '--quick']).")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except WorkshopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
