"""Security defaults: loopback binds with tokens, no pickle loading, nothing used before its checksum matches."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "workshop_utils").rglob("*.py"))


def test_every_torch_load_refuses_pickles() -> None:
    for source in SOURCES:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert keywords.get("weights_only") == "True", f"{source.name}:{node.lineno} torch.load without weights_only=True"


def test_make_lab_binds_loopback_with_a_token() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^HOST\s*\?=\s*127\.0\.0\.1$", makefile, re.M)
    recipe = makefile.split("\nlab:")[1].split("\n\n")[0]
    assert "--ip=$(HOST)" in recipe and "IdentityProvider.token=" in recipe
    assert "token=''" not in recipe and 'token=""' not in recipe


def test_triton_worker_binds_loopback_only() -> None:
    worker = (ROOT / "workshop_utils" / "serving/worker.py").read_text()
    addresses = re.findall(r"(?:http|grpc|metrics)_address\s*=\s*([^,\n)]+)", worker)
    assert addresses, "the worker must set its bind addresses explicitly"
    for value in addresses:
        assert "0.0.0.0" not in value, f"Triton would listen on every interface: {value}"
    assert "0.0.0.0" not in worker
