"""Which psychotropic ingredients a medication contains, from codes or from its name.

The table (``config/ingredients.csv``, read by ``cds_service.loaders``) is an immutable lookup
passed in, with the product table (``config/rxnorm_products.csv``: RxNorm SCD/SBD codes of those
ingredients, with their strength), because pharmacy systems send product codes without a display.
Classification tries RxNorm codes (ingredient, salt or product codes), then WHO ATC codes, and
only then the ingredient names: RxNorm display strings start with the ingredient ("sertraline 50
MG Oral Tablet"), and EHRs often send text only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, cast, get_args

from fhir_mappers.accessors import text
from fhir_mappers.record import DrugClass, Ingredient

RXNORM_SYSTEMS = frozenset(
    {"http://www.nlm.nih.gov/research/umls/rxnorm", "urn:oid:2.16.840.1.113883.6.88"}
)
ATC_SYSTEMS = frozenset({"http://www.whocc.no/atc", "urn:oid:2.16.840.1.113883.6.73"})

_WORD = re.compile(r"[a-z0-9]+")
# One strength in a display: "50 MG", "0.5 MG", "100 MCG", "300 MG/5ML", "1.1 MG/HR".
_STRENGTH = re.compile(
    r"(\d+(?:\.\d+)?)\s*(mg|mcg|ug|g)(?![a-z])(?:\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+))?",
    re.IGNORECASE,
)
_TO_MG = {"mg": 1.0, "mcg": 0.001, "ug": 0.001, "g": 1000.0}
_DRUG_CLASSES = frozenset(get_args(DrugClass))
_MEMO_SIZE = 4096

# A synonym as its words, and the ingredient it names.
_NameEntry = tuple[tuple[str, ...], Ingredient]
_CodingKey = tuple[str, str, str]  # system, code, display


class IngredientTableError(ValueError):
    """The ingredient table file is malformed (raised at startup, naming the row)."""


@dataclass(frozen=True, slots=True)
class IngredientTable:
    """The psychotropic ingredient families (``config/ingredients.csv``) and the RxNorm product
    table, indexed for classification: by ingredient/salt RxCUI, by ATC code, by combination
    product code, by product (SCD/SBD code -> ingredients and mg per unit) and by the first word
    of each name and synonym. Immutable apart from a private memo of earlier classifications.
    Build it with ``from_rows`` (``cds_service.loaders.load_ingredient_table`` reads the files).
    """

    ingredients: tuple[Ingredient, ...]
    by_rxcui: Mapping[str, Ingredient] = field(repr=False)
    by_atc: Mapping[str, tuple[Ingredient, ...]] = field(repr=False)
    # Combination product codes (RxNorm SCD) -> every component ingredient.
    by_product: Mapping[str, tuple[Ingredient, ...]] = field(repr=False)
    # Names indexed by their first word, so matching a display costs one dict lookup per word.
    by_first_word: Mapping[str, tuple[_NameEntry, ...]] = field(repr=False)
    # RxNorm SCD/SBD code -> (its ingredients, mg per unit or None), from the product table.
    products: Mapping[str, tuple[tuple[Ingredient, ...], float | None]] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )
    # RxNorm SCD/SBD code -> its name in the product table ("1 ML paliperidone palmitate 156
    # MG/ML Prefilled Syringe"): what a bare code says of the product's form.
    product_names: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )
    # Results by (codings, text): a patient's history names the same few products again and again.
    _memo: dict[tuple[str, tuple[_CodingKey, ...]], tuple[Ingredient, ...]] = field(
        default_factory=dict, repr=False, compare=False, hash=False
    )

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, str]],
        source: str = "<rows>",
        products: Iterable[Mapping[str, str]] = (),
        products_source: str = "<product rows>",
    ) -> IngredientTable:
        """The table from ingredient rows (``ingredients.csv``) and, optionally, product rows
        (``rxnorm_products.csv``: rxcui, name, ingredient ("a|b" for combinations), strength_mg,
        source). Raises IngredientTableError naming the row."""
        ingredients: list[Ingredient] = []
        by_rxcui: dict[str, Ingredient] = {}
        by_atc: dict[str, list[Ingredient]] = {}
        by_product: dict[str, list[Ingredient]] = {}
        names: dict[str, list[_NameEntry]] = {}
        for number, row in enumerate(rows, start=1):
            ingredient = _parse_row(row, f"{source} row {number}")
            ingredients.append(ingredient)
            codes = [ingredient.rxcui, *_split(row.get("extra_rxcuis"))]
            for code in filter(None, codes):
                if by_rxcui.setdefault(code, ingredient) is not ingredient:
                    raise IngredientTableError(f"{source} row {number}: RxCUI {code} repeated")
            by_atc.setdefault(ingredient.atc, []).append(ingredient)
            for code in _split(row.get("combination_codes")):
                target = by_product if code.isdigit() else by_atc
                components = target.setdefault(code.upper(), [])
                if ingredient not in components:
                    components.append(ingredient)
            for name in [ingredient.name, *_split(row.get("synonyms"))]:
                words = tuple(_WORD.findall(name.lower()))
                if words:
                    names.setdefault(words[0], []).append((words, ingredient))
        by_name = {i.name: i for i in ingredients}
        product_index: dict[str, tuple[tuple[Ingredient, ...], float | None]] = {}
        product_names: dict[str, str] = {}
        for number, row in enumerate(products, start=1):
            code, entry = _parse_product(row, by_name, f"{products_source} row {number}")
            # A code the ingredient table also lists (extra_rxcuis) classifies the same way; the
            # product row still gives its strength.
            if product_index.setdefault(code, entry) is not entry:
                raise IngredientTableError(
                    f"{products_source} row {number}: RxCUI {code} repeated"
                )
            product_names[code] = _str(row.get("name"))
        return cls(
            ingredients=tuple(ingredients),
            products=MappingProxyType(product_index),
            product_names=MappingProxyType(product_names),
            by_rxcui=MappingProxyType(by_rxcui),
            by_atc=MappingProxyType({k: tuple(v) for k, v in by_atc.items()}),
            by_product=MappingProxyType({k: tuple(v) for k, v in by_product.items()}),
            # Longest names first, so "valproic acid" wins over a shorter entry at the same word.
            by_first_word=MappingProxyType(
                {k: tuple(sorted(v, key=lambda e: -len(e[0]))) for k, v in names.items()}
            ),
        )

    def product_strength_mg(self, rxcui: str) -> float | None:
        """mg per unit of a single-ingredient product code in the product table, else None."""
        entry = self.products.get(rxcui)
        return entry[1] if entry is not None and len(entry[0]) == 1 else None

    def get(self, name: str) -> Ingredient | None:
        """The ingredient family with this canonical name ("lithium")."""
        return next((i for i in self.ingredients if i.name == name), None)

    def classify(
        self, codings: Iterable[Mapping[str, Any]], text: str = ""
    ) -> tuple[Ingredient, ...]:
        """The ingredient families of a medication; ``()`` when nothing is recognised."""
        coding_keys = tuple(_coding_key(c) for c in codings)
        key = (text, coding_keys)
        cached = self._memo.get(key)
        if cached is None:
            cached = self._classify(coding_keys, text)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = cached
        return cached

    def _classify(self, codings: tuple[_CodingKey, ...], text: str) -> tuple[Ingredient, ...]:
        found: dict[str, Ingredient] = {}
        displays: list[str] = [text]
        for system, code, display in codings:
            if system in RXNORM_SYSTEMS and code in self.by_rxcui:
                ingredient = self.by_rxcui[code]
                found.setdefault(ingredient.name, ingredient)
            elif system in RXNORM_SYSTEMS and code in self.products:
                for ingredient in self.products[code][0]:
                    found.setdefault(ingredient.name, ingredient)
            elif system in RXNORM_SYSTEMS and code in self.by_product:
                for ingredient in self.by_product[code]:
                    found.setdefault(ingredient.name, ingredient)
            elif system in ATC_SYSTEMS:
                for ingredient in self.by_atc.get(code.upper(), ()):
                    found.setdefault(ingredient.name, ingredient)
            displays.append(display)
        if found:
            return tuple(found.values())
        for display in displays:
            for ingredient in self.match_names(display):
                found.setdefault(ingredient.name, ingredient)
        return tuple(found.values())

    def match_names(self, value: str) -> tuple[Ingredient, ...]:
        """Ingredients named as whole words in free text, in order of appearance."""
        words = _WORD.findall(value.lower())
        found: list[Ingredient] = []
        for index, word in enumerate(words):
            matched = 0  # length of the longest name matched here; a brand may name several
            for name_words, ingredient in self.by_first_word.get(word, ()):
                if len(name_words) < matched:
                    break
                if tuple(words[index : index + len(name_words)]) == name_words:
                    matched = len(name_words)
                    if ingredient not in found:
                        found.append(ingredient)
        return tuple(found)


@lru_cache(maxsize=4096)
def strength_mg(text: str) -> float | None:
    """The strength of a single-ingredient product display, in mg per unit ("50 MG" -> 50.0).

    ``None`` for liquids and rates ("300 MG/5ML", "1.1 MG/HR") and for several strengths
    (combination products), where a tablet count cannot be turned into milligrams.
    """
    matches = _STRENGTH.findall(text)
    if len(matches) != 1:
        return None
    amount, unit, _per_amount, per_unit = matches[0]
    if per_unit:
        return None
    return float(amount) * _TO_MG[unit.lower()]


@lru_cache(maxsize=4096)
def concentration_mg_per_ml(text: str) -> float | None:
    """mg per mL of a single-ingredient liquid display ("300 MG/5ML" -> 60.0, "2 MG/ML" -> 2.0)."""
    matches = _STRENGTH.findall(text)
    if len(matches) != 1:
        return None
    amount, unit, per_amount, per_unit = matches[0]
    if per_unit.lower() != "ml":
        return None
    volume = float(per_amount) if per_amount else 1.0
    return float(amount) * _TO_MG[unit.lower()] / volume if volume else None


def _parse_row(row: Mapping[str, str], where: str) -> Ingredient:
    name, rxcui, atc = (_str(row.get(k)).lower() for k in ("name", "rxcui", "atc"))
    drug_class = _str(row.get("drug_class"))
    psychotropic = _str(row.get("is_psychotropic")).lower()
    if not name or not (rxcui.isdigit() or (not rxcui and atc)):
        raise IngredientTableError(
            f"{where}: name and a numeric rxcui (or, without one, an atc code) are required"
        )
    if drug_class not in _DRUG_CLASSES:
        raise IngredientTableError(f"{where}: unknown drug_class {drug_class!r}")
    if psychotropic not in {"true", "false"}:
        raise IngredientTableError(f"{where}: is_psychotropic must be true or false")
    min_effective = _mg(row.get("min_effective_mg_per_day"), where, "min_effective_mg_per_day")
    return Ingredient(
        titration_targets=_titration_targets(row.get("titration_targets"), where),
        sleep_max_mg_per_day=_mg(row.get("sleep_max_mg_per_day"), where, "sleep_max_mg_per_day"),
        name=name,
        rxcui=rxcui,
        atc=atc.upper(),
        drug_class=cast(DrugClass, drug_class),
        subclass=_str(row.get("subclass")),
        is_psychotropic=psychotropic == "true",
        min_effective_mg_per_day=min_effective,
    )


def _mg(value: Any, where: str, column: str) -> float | None:
    raw = _str(value)
    try:
        return float(raw) if raw else None
    except ValueError:
        raise IngredientTableError(f"{where}: {column} is not a number") from None


def _titration_targets(value: Any, where: str) -> tuple[tuple[str, float | None], ...]:
    """``"bipolar:300|default:level"`` -> (("bipolar", 300.0), ("default", None)); None = level."""
    targets: list[tuple[str, float | None]] = []
    for part in _split(_str(value)):
        indication, _, dose = part.partition(":")
        if not indication or not dose:
            raise IngredientTableError(f"{where}: titration target {part!r} is not indication:dose")
        level = dose.strip().lower() == "level"
        targets.append((indication.strip(), None if level else _mg(dose, where, "titration")))
    return tuple(targets)


def _parse_product(
    row: Mapping[str, str], by_name: Mapping[str, Ingredient], where: str
) -> tuple[str, tuple[tuple[Ingredient, ...], float | None]]:
    code = _str(row.get("rxcui"))
    if not code.isdigit():
        raise IngredientTableError(f"{where}: a numeric rxcui is required")
    names = [n.lower() for n in _split(row.get("ingredient"))]
    missing = [n for n in names if n not in by_name]
    if not names or missing:
        raise IngredientTableError(f"{where}: unknown ingredient {', '.join(missing) or '(none)'}")
    mg = _mg(row.get("strength_mg"), where, "strength_mg")
    return code, (tuple(by_name[n] for n in names), mg if len(names) == 1 else None)


def _coding_key(coding: Any) -> _CodingKey:
    if not isinstance(coding, Mapping):
        return ("", "", "")
    return (_str(coding.get("system")), _str(coding.get("code")), _str(coding.get("display")))


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split("|") if part.strip()]


def _str(value: Any) -> str:
    return text(value)
