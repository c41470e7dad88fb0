"""Rubrics as data: load a course year's rubric (TOML), check it, and print it back.

Strategy: a rubric file (tools/grading/rubrics/<lab>.toml, or an instructor's own via --rubric)
names the modes a course year requires, the interpreter it runs servers with, and its items: each
item defined once in an `[item.<id>]` table (here or in an `include`d file) says which suite
records decide it (lab keys of harness/lab_rules.toml, narrowed or widened by case, category,
nodeid and finding patterns), in which modes, and how many distinct failing checks it forgives;
the `[points]` and `[extra]` tables choose the items, their order and their points. Every error
in a rubric is one line naming the file and the field. `rubric_toml` writes the resolved rubric
as one self-contained file an instructor can copy and edit.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

RUBRICS = Path(__file__).resolve().parent / "rubrics"
LAB_RULES = Path(__file__).resolve().parents[2] / "harness" / "lab_rules.toml"
DEFAULT_LAB = "seed"
DEFAULT_MODE = "default"
ALL_REQUIRED, ALL_GRADED = "required", "graded"
_PROFILE_FIELDS = {"title", "include", "required_modes", "python", "points", "extra", "item"}
_ITEM_FIELDS = {
    "title",
    "lab",
    "case",
    "category",
    "nodeid",
    "finding",
    "modes",
    "max_failed",
    "benchmark",
    "quote",
    "why",
}
_PATTERN_FIELDS = ("case", "category", "nodeid", "finding")


class RubricError(Exception):
    """A rubric that cannot be used; the message is one line naming the file and the field."""


@dataclass(frozen=True)
class Item:
    """One rubric item: a requirement, its points, and the rule deciding it from records.

    `lab` selects records by lab key; `case`, `category`, `nodeid` (glob patterns) and `finding`
    (ids) narrow the selection, and an item naming them gets first pick of the records they
    match. `modes` is "required" (the profile's required modes), "graded" (every graded mode)
    or a list. The item is lost when more than `max_failed` distinct checks fail, or when
    benchmark.md lacks a result for one of the `benchmark` modes. An item selecting by finding
    ids alone is earned when no record reports one (the suite marks only the failure).
    """

    id: str
    title: str
    points: float
    extra: bool = False
    lab: tuple[str, ...] = ()
    case: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    nodeid: tuple[str, ...] = ()
    finding: tuple[str, ...] = ()
    modes: str | tuple[str, ...] = ALL_REQUIRED
    max_failed: int = 0
    benchmark: str | tuple[str, ...] = ()
    quotes: tuple[str, ...] = ()
    why: str = ""

    @property
    def judged_by_records(self) -> bool:
        """Whether suite records decide this item (else benchmark.md alone does)."""
        return bool(self.lab or any(getattr(self, name) for name in _PATTERN_FIELDS))

    @property
    def by_finding_only(self) -> bool:
        """Whether only finding ids select records: earned unless a record reports one."""
        return bool(self.finding) and not (self.lab or self.case or self.category or self.nodeid)

    @property
    def specific(self) -> bool:
        """Whether the item names patterns, so it picks its records before lab-key-only items."""
        return any(getattr(self, name) for name in _PATTERN_FIELDS)


@dataclass(frozen=True)
class Rubric:
    """A course year's rubric: its name, required modes, interpreter and items (extras last)."""

    name: str
    title: str
    required_modes: tuple[str, ...]
    items: tuple[Item, ...]
    python: str = ""
    source: str = ""
    definitions: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def max_points(self) -> float:
        """The points of the regular items (the score is out of this)."""
        return sum(item.points for item in self.items if not item.extra)

    @property
    def extra_points(self) -> float:
        """The extra-credit points on offer, on top of max_points."""
        return sum(item.points for item in self.items if item.extra)

    def modes_of(self, item: Item) -> tuple[str, ...]:
        """Return the explicit modes an item names (empty for "required" and "graded")."""
        return () if isinstance(item.modes, str) else item.modes

    def modes_to_grade(self) -> tuple[str, ...]:
        """Return the modes worth running: the required ones, then those items name explicitly."""
        named = [mode for item in self.items for mode in self.modes_of(item)]
        return tuple(dict.fromkeys([*self.required_modes, *named]))


def lab_rules(path: Path = LAB_RULES) -> dict[str, str]:
    """Return the lab sentences by key, from harness/lab_rules.toml."""
    with path.open("rb") as handle:
        table = tomllib.load(handle)
    return {key: rule["quote"] for key, rule in table.get("rule", {}).items()}


def rubric_path(lab: str) -> Path:
    """Return the file of a built-in rubric (a course year), or raise RubricError."""
    path = RUBRICS / f"{lab}.toml"
    if not path.is_file() or lab.startswith("_"):
        raise RubricError(f"no rubric for --lab {lab!r} (choose from: {', '.join(labs())})")
    return path


def labs() -> list[str]:
    """Return the names of the built-in rubrics (files in tools/grading/rubrics/ not starting _)."""
    return sorted(path.stem for path in RUBRICS.glob("*.toml") if not path.stem.startswith("_"))


def load_rubric(path: Path | str, quotes: dict[str, str] | None = None) -> Rubric:
    """Load and check a rubric file (and its includes); raise RubricError on any problem."""
    path = Path(path)
    quotes = lab_rules() if quotes is None else quotes
    document = _read(path)
    definitions = dict(_included_items(path, document))
    definitions |= _table(document, "item", path)
    points, extra = _table(document, "points", path), _table(document, "extra", path)
    if not points:
        raise RubricError(f"{path}: [points] lists no item")
    items = [
        _item(item_id, definitions, value, is_extra, path, quotes)
        for table, is_extra in ((points, False), (extra, True))
        for item_id, value in table.items()
    ]
    required = _strings(document.get("required_modes", []), "required_modes", path)
    if not required:
        raise RubricError(f"{path}: required_modes must name at least one mode")
    return Rubric(
        name=path.stem,
        title=str(document.get("title", path.stem)),
        required_modes=required,
        items=tuple(items),
        python=str(document.get("python", "")),
        source=str(path),
        definitions={item.id: definitions[item.id] for item in items},
    )


def _read(path: Path) -> dict:
    """Parse one rubric file; reject unknown top-level fields."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise RubricError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RubricError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(document) - _PROFILE_FIELDS)
    if unknown:
        raise RubricError(f"{path}: unknown field {unknown[0]!r}")
    return document


def _included_items(path: Path, document: dict) -> dict[str, dict]:
    """Return the item definitions of the files `include` names (relative to this file)."""
    definitions: dict[str, dict] = {}
    for name in _strings(document.get("include", []), "include", path):
        included = path.parent / name
        if not included.is_file():
            included = RUBRICS / name
        sub = _read(included)
        definitions |= _included_items(included, sub) | _table(sub, "item", included)
    return definitions


def _table(document: dict, name: str, path: Path) -> dict:
    """Return a table of the document (empty if absent), or raise if it is not a table."""
    value = document.get(name, {})
    if not isinstance(value, dict):
        raise RubricError(f"{path}: {name} must be a table")
    return value


def _item(
    item_id: str,
    definitions: dict,
    points: object,
    extra: bool,
    path: Path,
    quotes: dict[str, str],
) -> Item:
    """Build one Item from its definition and its points, checking every field."""
    where = f"{path}: item {item_id!r}"
    if item_id not in definitions:
        raise RubricError(f"{where} has points but no [item.{item_id}] definition")
    if not isinstance(points, int | float) or isinstance(points, bool) or points < 0:
        raise RubricError(f"{where}: points must be a number >= 0, not {points!r}")
    spec = definitions[item_id]
    unknown = sorted(set(spec) - _ITEM_FIELDS)
    if unknown:
        raise RubricError(f"{where}: unknown field {unknown[0]!r}")
    lab = _strings(spec.get("lab", []), "lab", path, where)
    quote_keys = _strings(spec.get("quote", list(lab)), "quote", path, where)
    for key in (*lab, *quote_keys):
        if key not in quotes:
            raise RubricError(f"{where}: lab key {key!r} is not in harness/lab_rules.toml")
    max_failed = spec.get("max_failed", 0)
    if not isinstance(max_failed, int) or isinstance(max_failed, bool) or max_failed < 0:
        raise RubricError(f"{where}: max_failed must be a whole number >= 0")
    item = Item(
        id=item_id,
        title=str(spec.get("title", item_id)),
        points=float(points),
        extra=extra,
        lab=lab,
        **{name: _strings(spec.get(name, []), name, path, where) for name in _PATTERN_FIELDS},
        modes=_modes(spec.get("modes", ALL_REQUIRED), "modes", where),
        max_failed=max_failed,
        benchmark=_modes(spec.get("benchmark", []), "benchmark", where),
        quotes=tuple(quotes[key] for key in quote_keys),
        why=str(spec.get("why", "")),
    )
    if not item.judged_by_records and not item.benchmark:
        raise RubricError(f"{where}: names no lab key, pattern or benchmark to decide it")
    return item


def _strings(value: object, name: str, path: Path, where: str = "") -> tuple[str, ...]:
    """Return a list of strings as a tuple, or raise naming the field."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RubricError(f"{where or path}: {name} must be a list of non-empty strings")
    return tuple(value)


def _modes(value: object, name: str, where: str) -> str | tuple[str, ...]:
    """Return "required", "graded", or a tuple of mode names."""
    if value in (ALL_REQUIRED, ALL_GRADED):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise RubricError(f'{where}: {name} must be "required", "graded" or a list of modes')


def rubric_toml(rubric: Rubric) -> str:
    """Return the rubric as one self-contained TOML file (includes resolved) for --rubric."""
    document: dict = {"title": rubric.title, "required_modes": list(rubric.required_modes)}
    if rubric.python:
        document["python"] = rubric.python
    document["points"] = {item.id: _number(item.points) for item in rubric.items if not item.extra}
    extra = {item.id: _number(item.points) for item in rubric.items if item.extra}
    if extra:
        document["extra"] = extra
    document["item"] = rubric.definitions
    header = (
        f"# Rubric {rubric.name!r}: {rubric.title}\n"
        f"# {rubric.max_points:g} points, plus {rubric.extra_points:g} extra credit. "
        "Edit a copy and pass it with --rubric FILE.\n"
        "# An item is lost when more than max_failed (default 0) distinct checks fail among the\n"
        "# required-tier records it selects: lab keys (harness/lab_rules.toml), narrowed by\n"
        "# case / category / nodeid globs and finding ids, in `modes` (required, graded or a\n"
        "# list); or when benchmark.md lacks a number for a mode in `benchmark`.\n\n"
    )
    return header + tomli_w.dumps(document)


def _number(value: float) -> int | float:
    """Return a whole number as an int (so TOML shows 5, not 5.0)."""
    return int(value) if value.is_integer() else value


def rubric_table(rubric: Rubric) -> str:
    """Return a short text table of a rubric's items (for --help)."""
    lines = [f"Rubric {rubric.name!r} ({rubric.title}); modes required: "]
    lines[0] += ", ".join(rubric.required_modes)
    for item in rubric.items:
        points = f"+{item.points:g}" if item.extra else f"{item.points:g}"
        lines.append(f"  {points:>4}  {item.id:<24} {item.title}")
    lines.append(f"  {rubric.max_points:g} points, plus {rubric.extra_points:g} extra credit.")
    return "\n".join(lines)
