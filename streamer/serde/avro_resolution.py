"""Avro schema resolution: can data written with one schema be read with another?

Pure functions over parsed schemas (``fastavro.parse_schema`` output), following the Avro
specification's resolution rules; :func:`streamer.serde.avro_schema.compatibility_problems` is the
public entry point that also accepts schema text, dicts and files.
"""

from __future__ import annotations

from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_PROMOTIONS = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


def _named_types(parsed: Any) -> dict[str, dict[str, Any]]:
    named: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in _NAMED and isinstance(node.get("name"), str):
                if node["name"] in named:
                    return
                named[node["name"]] = node
            if kind in ("record", "error"):
                for field in node.get("fields", []):
                    walk(field.get("type"))
            elif kind == "array":
                walk(node.get("items"))
            elif kind == "map":
                walk(node.get("values"))
            elif isinstance(kind, dict | list):
                walk(kind)

    walk(parsed)
    return named


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Checker:
    def __init__(
        self, writer_named: dict[str, dict[str, Any]], reader_named: dict[str, dict[str, Any]]
    ) -> None:
        self.writer_named = writer_named
        self.reader_named = reader_named
        self.problems: list[str] = []
        self._seen: set[tuple[str, str]] = set()

    def _resolve(self, node: Any, named: dict[str, dict[str, Any]]) -> Any:
        """Named references replaced by their definitions; ``{"type": X}`` wrappers
        unwrapped (logical types keep their underlying type)."""
        while True:
            if isinstance(node, str):
                if node in PRIMITIVES:
                    return node
                if node in named:
                    return named[node]
                return node
            if isinstance(node, dict):
                kind = node.get("type")
                if kind in PRIMITIVES:
                    return kind
                if isinstance(kind, dict | list) or (
                    isinstance(kind, str) and kind not in _NAMED and kind not in ("array", "map")
                ):
                    node = kind
                    continue
            return node

    @staticmethod
    def _kind(node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            return "union"
        kind = node.get("type")
        return "record" if kind == "error" else str(kind)

    def _describe(self, node: Any) -> str:
        kind = self._kind(node)
        if isinstance(node, dict) and kind in ("record", "enum", "fixed"):
            return f"{kind} {_short(node['name'])}"
        if kind == "union":
            return "union [" + ", ".join(self._describe(self._resolve(b, {})) for b in node) + "]"
        return kind

    def _where(self, path: str) -> str:
        return f"field {path!r}" if path else "the top-level type"

    def add(self, path: str, problem: str) -> None:
        self.problems.append(f"{self._where(path)}: {problem}")

    def _names_match(self, w: dict[str, Any], r: dict[str, Any]) -> bool:
        names = {_short(r["name"]), *(_short(a) for a in r.get("aliases", []))}
        return _short(w["name"]) in names

    def matches(self, w: Any, r: Any) -> bool:
        """Whether a writer type could resolve to this reader type at all (for unions)."""
        wk, rk = self._kind(w), self._kind(r)
        if wk in PRIMITIVES and rk in PRIMITIVES:
            return wk == rk or rk in _PROMOTIONS.get(wk, frozenset())
        if wk != rk:
            return False
        if wk in ("record", "enum", "fixed"):
            return self._names_match(w, r)
        return True

    def check(self, writer: Any, reader: Any, path: str) -> None:
        """Record every reason data of ``writer`` at ``path`` cannot be read as ``reader``."""
        w = self._resolve(writer, self.writer_named)
        r = self._resolve(reader, self.reader_named)
        wk, rk = self._kind(w), self._kind(r)
        if wk == "union":
            for branch in w:
                self.check(branch, reader, path)
        elif rk == "union":
            self._check_against_reader_union(w, r, path)
        elif wk in PRIMITIVES or rk in PRIMITIVES:
            self._check_primitive(w, r, path)
        elif wk != rk:
            self.add(path, f"type changed from {self._describe(w)} to {self._describe(r)}")
        elif wk in ("record", "enum", "fixed") and not self._names_match(w, r):
            self.add(
                path,
                f"the writer's {wk} {_short(w['name'])} and the reader's {rk} "
                f"{_short(r['name'])} have different names (add an alias to the reader)",
            )
        else:
            self._check_same_kind(wk, w, r, path)

    def _check_against_reader_union(self, w: Any, r: list[Any], path: str) -> None:
        """A non-union writer type resolves to the first reader branch it matches."""
        for branch in r:
            candidate = self._resolve(branch, self.reader_named)
            if self.matches(w, candidate):
                self.check(w, candidate, path)
                return
        self.add(
            path,
            f"the writer's {self._describe(w)} matches no branch of the reader's "
            f"{self._describe(r)}",
        )

    def _check_primitive(self, w: Any, r: Any, path: str) -> None:
        if not self.matches(w, r):
            self.add(
                path,
                f"type changed from {self._describe(w)} to {self._describe(r)}, "
                "which is not a permitted promotion",
            )

    def _check_same_kind(self, kind: str, w: Any, r: Any, path: str) -> None:
        """Writer and reader are complex types of the same kind (and name, when named)."""
        if kind == "record":
            key = (w["name"], r["name"])
            if key in self._seen:
                return
            self._seen.add(key)
            self._record(w, r, path)
        elif kind == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                listed = ", ".join(repr(s) for s in missing)
                self.add(
                    path,
                    f"enum {_short(r['name'])}: the writer's symbol(s) {listed} are missing "
                    "from the reader schema, which has no default symbol",
                )
        elif kind == "fixed":
            if w["size"] != r["size"]:
                self.add(
                    path,
                    f"fixed {_short(r['name'])} changed size from {w['size']} to {r['size']}",
                )
        elif kind == "array":
            self.check(w["items"], r["items"], f"{path}[]")
        elif kind == "map":
            self.check(w["values"], r["values"], f"{path}{{}}")

    def _record(self, w: dict[str, Any], r: dict[str, Any], path: str) -> None:
        writer_fields = {f["name"]: f for f in w.get("fields", [])}
        for field in r.get("fields", []):
            name = field["name"]
            here = f"{path}.{name}" if path else name
            found = writer_fields.get(name)
            if found is None:
                for alias in field.get("aliases", []):
                    found = writer_fields.get(alias)
                    if found is not None:
                        break
            if found is not None:
                self.check(found["type"], field["type"], here)
            elif "default" not in field:
                self.problems.append(
                    f"field {here!r} has no default in the reader schema and is missing "
                    "from the writer schema"
                )


# --- entry point ----------------------------------------------------------------------------


def resolution_problems(writer: Any, reader: Any) -> list[str]:
    """Why data written with the parsed ``writer`` schema cannot be read with ``reader``."""
    checker = _Checker(_named_types(writer), _named_types(reader))
    checker.check(writer, reader, "")
    return checker.problems
