"""Topic and workflow configuration: load YAML, validate against the JSON Schemas in
workflow/schemas (every key has a description and a default), fill in the defaults.

Errors name the file, the key and, where the YAML allows, the line.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cmosynth.errors import ConfigError

SCHEMA_PACKAGE = "cmosynth.schemas"


def load_schema(name: str) -> dict:
    """Load a schema shipped with the package (`topic`, `config`, `codebook`)."""
    text = resources.files(SCHEMA_PACKAGE).joinpath(f"{name}.schema.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _extend_with_defaults(validator_class):
    """The jsonschema recipe for filling `default` values in while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if "default" in subschema and prop not in instance:
                    instance[prop] = _copy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _copy(value):
    return yaml.safe_load(yaml.safe_dump(value))


_DefaultFillingValidator = _extend_with_defaults(jsonschema.Draft202012Validator)


def _yaml_line(path: Path, key_path: Sequence[Any]) -> int | None:
    """1-based line of the node at `key_path` in a YAML file (deepest existing parent)."""
    try:
        node = yaml.compose(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for key in key_path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(path, None, "file not found; check the path") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        error = ConfigError(f"{path}:{mark.line + 1}" if mark else path, None,
                            f"{problem}; fix the YAML syntax")
        error.line = mark.line + 1 if mark else None
        raise error from None


ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topic or its codebook, as one line for a person."""

    path: str
    line: int | None
    key: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        key = f" {self.key}:" if self.key else ""
        label = "warning: " if self.severity == WARNING else ""
        return f"{where}:{key} {label}{self.message}"


def _schema_at(schema: dict, key_path: list) -> dict:
    """The subschema that describes the value at `key_path`."""
    node = schema
    for key in key_path:
        if isinstance(key, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(key, {})
    return node


def schema_problems(data: Any, schema: dict, path: Path) -> list[Problem]:
    """Every schema error in `data`, each with its key path and the line it is on."""
    problems = []
    validator = _DefaultFillingValidator(schema)
    for error in sorted(validator.iter_errors(copy.deepcopy(data)),
                        key=lambda e: [str(k) for k in e.absolute_path]):
        key_path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = sorted(_schema_at(schema, key_path).get("properties", {}))
            for extra in sorted(set(error.instance) - set(allowed)):
                near = difflib.get_close_matches(extra, allowed, n=1, cutoff=0.6)
                hint = (f"did you mean {near[0]!r}?" if near else
                        f"allowed: {', '.join(allowed)}")
                problems.append(Problem(str(path), _yaml_line(path, key_path + [extra]),
                                        ".".join(map(str, key_path + [extra])),
                                        f"unknown key; {hint}"))
            continue
        if error.validator == "required":
            missing = error.message.split("'")[1]
            key_path.append(missing)
            description = _schema_at(schema, key_path).get("description", "")
            message = ("required key is missing"
                       + (f" ({' '.join(description.split())[:120]})" if description else ""))
        elif error.validator == "enum":
            message = (f"{error.instance!r} is not allowed; allowed: "
                       f"{', '.join(map(str, error.validator_value))}")
        elif error.validator == "pattern" and key_path and key_path[-1] in ("name", "id"):
            message = (f"{error.instance!r} is not a safe name: lower-case letters, digits, "
                       f"'-' and '_', starting with a letter or digit")
        elif error.validator == "type":
            message = f"{error.instance!r} is not of type {error.validator_value}"
        else:
            message = error.message
        problems.append(Problem(str(path), _yaml_line(path, key_path),
                                ".".join(map(str, key_path)), message))
    return problems


def validate(data: Any, schema: dict, path: str | Path) -> dict:
    """Validate `data` (filling defaults in place) or raise ConfigError for the first
    problem, with its key path and the line of the key itself."""
    path = Path(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, None, f"holds a YAML {type(data).__name__}, not keys and "
                          "values; start from a copy of config/topics/coproduction.yaml")
    problems = schema_problems(data, schema, path)
    if problems:
        first = problems[0]
        message = first.message + (f" (line {first.line})" if first.line else "")
        raise ConfigError(path, first.key or None, message)
    _DefaultFillingValidator(schema).validate(data)  # fills every default in
    return data


def load_topic(path: str | Path) -> dict:
    """Read and validate a topic file; the result has every default filled in.

    Derived values: `_path` (the topic file), `codebook` (defaults to
    config/codebooks/<name>.yaml beside the topics folder).
    """
    path = Path(path)
    topic = with_derived_values(validate(read_yaml(path), load_schema("topic"), path), path)
    # an impossible date (2020/13/45) or a blank query is refused here, by every command,
    # not at search time
    parse_date(topic["search"]["pubmed"]["mindate"], "search.pubmed.mindate", path)
    if not topic["search"]["pubmed"]["query"].strip():
        raise ConfigError(path, "search.pubmed.query", "the query is empty")
    return topic


def with_derived_values(topic: dict, path: Path) -> dict:
    """`_path`, and the codebook beside the topics folder when the topic names none."""
    topic["_path"] = str(path)
    if not topic.get("codebook"):
        topic["codebook"] = str(path.resolve().parent.parent / "codebooks" / f"{topic['name']}.yaml")
    return topic


def holds_nothing(path: Path) -> bool:
    """A file that is missing, empty or blank (its first 64 KiB read, not all of it)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return not handle.read(65536).strip()
    except OSError:
        return True


def load_workflow_config(path: str | Path) -> dict:
    path = Path(path)
    return validate(read_yaml(path), load_schema("config"), path)


def parse_date(value: str | dt.date | None, key: str, path: str | Path = "command line") -> dt.date | None:
    """Accept YYYY, YYYY/MM, YYYY/MM/DD or the same with dashes (PubMed's forms)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    text = str(value).strip().replace("/", "-")
    parts = text.split("-")
    try:
        numbers = [int(p) for p in parts]
        if len(numbers) == 1:
            return dt.date(numbers[0], 1, 1)
        if len(numbers) == 2:
            return dt.date(numbers[0], numbers[1], 1)
        if len(numbers) == 3:
            return dt.date(*numbers)
    except ValueError:
        pass
    raise ConfigError(path, key, f"'{value}' is not a date; use YYYY-MM-DD (or YYYY/MM/DD)")
