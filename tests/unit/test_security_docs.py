"""docs/security.md lists the ACLs of ``streamer.kafka.acls``, no more and no fewer, in both
of its forms: ``kafka-acls`` lines and AdminClient bindings. The integration test grants
``app_acls`` + ``ops_acls`` to the principal it runs the app as, so the page is what was
proven on the broker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from streamer.kafka.acls import app_acls, kafka_acls_lines, ops_acls

PAGE = Path(__file__).resolve().parents[2] / "docs" / "security.md"
PRINCIPAL = "User:fraud"
APP = app_acls("fraud", inputs=["transactions"], outputs=["alerts"])
EXAMPLE = APP + ops_acls("fraud")


def blocks(language: str) -> list[str]:
    text = PAGE.read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def as_tuple(binding: Any) -> tuple[Any, ...]:
    return (
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )


def test_the_kafka_acls_lines_are_the_app_and_ops_acls() -> None:
    (script,) = [b for b in blocks("bash") if "kafka-acls" in b]
    lines = [line.removeprefix("$acls ") for line in script.splitlines() if line.startswith("$")]
    ops = kafka_acls_lines(PRINCIPAL, ops_acls("fraud"))
    assert lines == kafka_acls_lines(PRINCIPAL, APP) + ops


def test_the_admin_client_bindings_are_the_app_and_ops_acls() -> None:
    namespace: dict[str, Any] = {}
    for code in blocks("python"):
        exec(compile(code, str(PAGE), "exec"), namespace)
    documented = sorted(map(as_tuple, namespace["bindings"]), key=repr)
    expected = sorted((as_tuple(acl.binding(PRINCIPAL)) for acl in EXAMPLE), key=repr)
    assert documented == expected
