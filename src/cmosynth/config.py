"""Topic and workflow configuration: load YAML, validate against the JSON Schemas in
workflow/schemas (every key has a description and a default), fill in the defaults.

Errors name the file, the key and, where the YAML allows, the line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(path, None, f"{where}{problem}; fix the YAML syntax") from None


def validate(data: Any, schema: dict, path: str | Path) -> dict:
    """Validate `data` (filling defaults in place) or raise ConfigError for the first error."""
    path = Path(path)
    if data is None:
        data = {}
    validator = _DefaultFillingValidator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        key_path = list(error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else None
            key_path = key_path + ([missing] if missing else [])
            message = "required key is missing; add it (see workflow/schemas for its description)"
        elif error.validator == "additionalProperties":
            message = f"{error.message}; check the spelling against workflow/schemas"
        else:
            message = error.message
        key = ".".join(str(k) for k in key_path) or None
        line = _yaml_line(path, key_path) if path.exists() else None
        if line is not None:
            message = f"{message} (line {line})"
        raise ConfigError(path, key, message)
    return data


def load_topic(path: str | Path) -> dict:
    """Read and validate a topic file; the result has every default filled in.

    Derived values: `_path` (the topic file), `codebook` (defaults to
    config/codebooks/<name>.yaml beside the topics folder).
    """
    path = Path(path)
    topic = validate(read_yaml(path), load_schema("topic"), path)
    topic["_path"] = str(path)
    if not topic.get("codebook"):
        topic["codebook"] = str(path.resolve().parent.parent / "codebooks" / f"{topic['name']}.yaml")
    return topic


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
