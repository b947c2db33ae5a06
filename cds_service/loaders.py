"""Reading the bundled data files into the pure core's immutable tables.

The pure core (``fhir_mappers``, ``cards``, ``cds_service.patterns``) never reads a file, YAML or
CSV: these loaders do, once at start-up (``web.app.create_app``, the CLI, the backtest), and hand
it plain frozen objects.

- ``config/ingredients.csv`` -> ``fhir_mappers.medications.IngredientTable``
- ``config/codes.yaml``      -> ``fhir_mappers.codes.CodeLists``
- ``cards/wording/*.yaml``   -> ``{pattern_id: cards.wording.Wording}``

Each raises a ``ConfigError`` subclass naming the file and every problem it found.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from cards.facts import FACT_KINDS
from cards.wording import VARIANT_KEYS, WORDING_DIR, Wording, check_wording
from cds_service.errors import ConfigError
from config import CONFIG_DIR
from fhir_mappers.codes import CodeListError, CodeLists
from fhir_mappers.medications import IngredientTable

INGREDIENTS_CSV = CONFIG_DIR / "ingredients.csv"
CODES_YAML = CONFIG_DIR / "codes.yaml"

_WORDING_SCHEMA: TypeAdapter[Wording] = TypeAdapter(Wording)


class WordingError(ConfigError):
    """The card wording files are invalid; ``problems`` name file and key."""


def load_ingredient_table(path: Path | None = None) -> IngredientTable:
    """The ingredient table from CSV (``#`` lines are comments); raises IngredientTableError."""
    source = path or INGREDIENTS_CSV
    with source.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    return IngredientTable.from_rows(list(csv.DictReader(lines)), source=str(source))


def load_code_lists(path: Path | None = None) -> CodeLists:
    """The code lists from YAML; raises CodeListError naming the file and the entry."""
    source = path or CODES_YAML
    with source.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, Mapping):
        raise CodeListError(f"{source}: expected a mapping at the top level")
    try:
        return CodeLists.from_mapping(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CodeListError(f"{source}: {exc}") from exc


def load_wording(directory: Path | None = None) -> Mapping[str, Wording]:
    """Every pattern's wording by pattern id; raises WordingError listing all problems."""
    directory = WORDING_DIR if directory is None else directory
    problems: list[str] = []
    result: dict[str, Wording] = {}
    paths = sorted(directory.glob("*.yaml"))
    for path in paths:
        wording = _load_wording_file(path, problems)
        if wording is not None:
            result[wording.pattern_id] = wording
    for missing in sorted(set(FACT_KINDS) - {p.stem for p in paths}):
        problems.append(f"{directory / missing}.yaml: missing wording file for pattern {missing}")
    if problems:
        raise WordingError(f"{directory}: invalid card wording", problems=problems)
    return MappingProxyType(result)


def _load_wording_file(path: Path, problems: list[str]) -> Wording | None:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return None
    if path.stem not in FACT_KINDS:
        problems.append(f"{path}: file name is not a known pattern id; known: {sorted(FACT_KINDS)}")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{path}: top level must be a mapping")
        return None
    try:
        wording = _WORDING_SCHEMA.validate_python(_normalised(raw))
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = "unknown key" if err["type"] == "unexpected_keyword_argument" else err["msg"]
            problems.append(f"{path}: {key}: {message}")
        return None
    found = [f"{path}: {p}" for p in check_wording(wording, path.stem)]
    problems.extend(found)
    return None if found else wording


def _normalised(raw: dict[str, Any]) -> dict[str, Any]:
    """Strings stripped (YAML block scalars end in a newline); a plain string where variants are
    allowed becomes one variant, which is the common case."""
    data = _stripped(raw)
    for key in VARIANT_KEYS:
        if isinstance(data.get(key), str):
            data[key] = [{"text": data[key]}]
    return data


def _stripped(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {k: _stripped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stripped(v) for v in value]
    return value
