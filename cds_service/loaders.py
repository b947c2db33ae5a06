"""Reading the bundled data files into the pure core's immutable tables.

The pure core (``fhir_mappers``, ``cards``, ``cds_service.patterns``) never reads a file, YAML or
CSV: these loaders do, once at start-up (``web.app.create_app``, the CLI, the backtest), and hand
it plain frozen objects.

- ``config/ingredients.csv`` -> ``fhir_mappers.medications.IngredientTable``
- ``config/codes.yaml``      -> ``fhir_mappers.codes.CodeLists``
- ``cards/wording/*.yaml``   -> ``{pattern_id: cards.wording.Wording}``

Each names the file in its error: ``load_wording`` raises ``WordingError`` (a ``ConfigError``)
listing every problem; the ingredient and code-list loaders raise the pure core's own
``IngredientTableError`` / ``CodeListError`` (``ValueError`` subclasses) at the first problem. A
file that cannot be opened raises ``OSError``.
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
from cds_service.settings import deep_merge
from config import CONFIG_DIR
from fhir_mappers.codes import CodeListError, CodeLists
from fhir_mappers.medications import IngredientTable

INGREDIENTS_CSV = CONFIG_DIR / "ingredients.csv"
PRODUCTS_CSV = CONFIG_DIR / "rxnorm_products.csv"
CODES_YAML = CONFIG_DIR / "codes.yaml"

_WORDING_SCHEMA: TypeAdapter[Wording] = TypeAdapter(Wording)


class WordingError(ConfigError):
    """The card wording files are invalid; ``problems`` name file and key."""


def load_ingredient_table(
    path: Path | None = None, products_path: Path | None = None
) -> IngredientTable:
    """The ingredient table from CSV, with its RxNorm product table.

    ``path`` defaults to ``config/ingredients.csv``; ``products_path`` to ``rxnorm_products.csv``
    beside it (absent file: no product rows). ``#`` lines are comments. Raises
    ``IngredientTableError`` (a ValueError) naming the file and row, ``OSError`` when the table
    cannot be read.
    """
    source = path or INGREDIENTS_CSV
    products_source = products_path or source.with_name(PRODUCTS_CSV.name)
    products = _csv_rows(products_source) if products_source.exists() else []
    return IngredientTable.from_rows(
        _csv_rows(source),
        source=str(source),
        products=products,
        products_source=str(products_source),
    )


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines))


def load_code_lists(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> CodeLists:
    """The code lists (stop reasons, score LOINCs, encounter classes...) from ``path`` (default
    ``config/codes.yaml``), with a site's ``codes`` section (``Settings.codes``) deep-merged on
    top: mappings merge key by key, a list replaces the bundled list.

    Raises ``CodeListError`` naming the file (and "site codes" when the site section is at
    fault) and the entry for a missing or unknown key or a bad value, ``yaml.YAMLError`` when the
    file is not YAML, and ``OSError`` when it cannot be read.
    """
    source = path or CODES_YAML
    with source.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, Mapping):
        raise CodeListError(f"{source}: expected a mapping at the top level")
    if overrides:
        data = deep_merge(data, overrides)
        source = Path(f"{source} + site codes")
    try:
        return CodeLists.from_mapping(data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # A list where a mapping belongs surfaces as AttributeError: still the file's fault.
        raise CodeListError(f"{source}: {exc}") from exc


def load_wording(directory: Path | None = None) -> Mapping[str, Wording]:
    """Every pattern's wording by pattern id (kebab-case), read from ``directory`` (default
    ``cards/wording/``), one ``<pattern-id>.yaml`` per pattern; a read-only mapping.

    Raises ``WordingError`` listing every problem in every file: unreadable or invalid YAML,
    unknown keys, an unknown pattern id, a placeholder no fact provides, a missing file.
    """
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
    allowed becomes one variant, and one ``source`` mapping a list of one: the common cases."""
    data = _stripped(raw)
    for key in VARIANT_KEYS:
        if isinstance(data.get(key), str):
            data[key] = [{"text": data[key]}]
    if isinstance(data.get("source"), dict):  # one source for every card of the pattern
        data["source"] = [data["source"]]
    return data


def _stripped(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {k: _stripped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stripped(v) for v in value]
    return value
