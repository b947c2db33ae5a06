"""Codes the synthetic population is written with: real psychotropics, noise drugs, LOINC, SNOMED.

Every RxNorm code here is copied from /work/shared/reference/psychotropic-domain.md (§1.3 ingredient
table and the SCD codes named in §4.2) or, for metformin, from the CDS Hooks sandbox traffic; the
generator never invents a code. Where the reference names no SCD for a strength, the product is
written the way many EHRs send it: the ingredient code with an RxNorm-style display as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
STATUS_REASON = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MEDREQ_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
PHARMACY_SUPPLY = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

PHQ9_LOINC = "44261-6"


@dataclass(frozen=True)
class Drug:
    """An ingredient as the generator prescribes it."""

    name: str  # lower-case ingredient, as RxNorm displays start
    rxcui: str  # RxNorm IN
    atc4: str  # ATC level 4, to build intolerances across classes on purpose
    form: str  # "Oral Tablet", "Oral Capsule"
    scd: dict[float, str] = field(default_factory=dict)  # strength mg -> SCD RxCUI (reference only)
    psychotropic: bool = True
    # The class repeated-intolerance counts it in when that is wider than its ATC level 4
    # (config/default.yaml pharmacological_classes: every N05A antipsychotic is one class)
    pharmacological_class: str = ""

    @property
    def intolerance_class(self) -> str:
        """The class the generator spreads intolerances across: ``pharmacological_class``,
        else the ATC level-4 group."""
        return self.pharmacological_class or self.atc4

    def display(self, strength_mg: float) -> str:
        """RxNorm-style text for a strength in mg, e.g. ``sertraline 50 MG Oral Tablet``."""
        strength = f"{strength_mg:g}"
        return f"{self.name} {strength} MG {self.form}"


ANTIPSYCHOTIC = "antipsychotic"

DRUGS: dict[str, Drug] = {
    d.name: d
    for d in (
        Drug("sertraline", "36437", "N06AB", "Oral Tablet", {50: "312941", 100: "312938"}),
        Drug("escitalopram", "321988", "N06AB", "Oral Tablet", {10: "349332"}),
        Drug("fluoxetine", "4493", "N06AB", "Oral Capsule", {20: "310385"}),
        Drug("paroxetine", "32937", "N06AB", "Oral Tablet"),
        Drug("citalopram", "2556", "N06AB", "Oral Tablet"),
        Drug("venlafaxine", "39786", "N06AX", "Oral Capsule"),
        Drug("duloxetine", "72625", "N06AX", "Oral Capsule"),
        Drug("bupropion", "42347", "N06AX", "Oral Tablet"),
        Drug("mirtazapine", "15996", "N06AX", "Oral Tablet"),
        Drug("trazodone", "10737", "N06AX", "Oral Tablet"),
        Drug("quetiapine", "51272", "N05AH", "Oral Tablet", {100: "312743"},
             pharmacological_class=ANTIPSYCHOTIC),
        Drug("olanzapine", "61381", "N05AH", "Oral Tablet", pharmacological_class=ANTIPSYCHOTIC),
        Drug("aripiprazole", "89013", "N05AX", "Oral Tablet", pharmacological_class=ANTIPSYCHOTIC),
        Drug("risperidone", "35636", "N05AX", "Oral Tablet", pharmacological_class=ANTIPSYCHOTIC),
        Drug("lithium carbonate", "6448", "N05AN", "Oral Capsule", {300: "197890"}),
        Drug("lamotrigine", "28439", "N03AX", "Oral Tablet", {100: "198427"}),
        Drug("lorazepam", "6470", "N05BA", "Oral Tablet"),
        Drug("metformin hydrochloride", "", "A10BA", "Oral Tablet", {500: "861007"}, False),
        Drug("lisinopril", "", "C09AA", "Oral Tablet", psychotropic=False),
        Drug("atorvastatin", "", "C10AA", "Oral Tablet", psychotropic=False),
    )
}

NOISE_DRUGS: tuple[tuple[str, float, int], ...] = (
    # (drug, strength mg per dose, doses per day)
    ("metformin hydrochloride", 500, 2),
    ("lisinopril", 10, 1),
    ("atorvastatin", 20, 1),
)

# Drugs a patient may have "not tolerated" in the intolerance archetypes; the current drug that
# follows is chosen outside this list so that it never repeats an intolerance.
INTOLERANCE_CANDIDATES: tuple[tuple[str, float], ...] = (
    ("sertraline", 50),
    ("escitalopram", 10),
    ("fluoxetine", 20),
    ("paroxetine", 20),
    ("venlafaxine", 75),
    ("duloxetine", 60),
    ("bupropion", 150),
    ("aripiprazole", 5),
    ("quetiapine", 50),
)

# Non-immune ("nocebo profile") reactions and immune reactions, SNOMED CT (reference §3.3).
NOCEBO_REACTIONS: tuple[tuple[str, str], ...] = (
    ("422587007", "Nausea"),
    ("25064002", "Headache"),
    ("404640003", "Dizziness"),
    ("84229001", "Fatigue"),
    ("48694002", "Anxiety"),
    ("193462001", "Insomnia"),
    ("80313002", "Palpitations"),
)
IMMUNE_REACTIONS: tuple[tuple[str, str], ...] = (
    ("126485001", "Urticaria"),
    ("41291007", "Angioedema"),
    ("39579001", "Anaphylaxis"),
)

VISIT_TYPES: tuple[tuple[str, str], ...] = (
    ("99213", "Office or other outpatient visit, established patient, low complexity"),
    ("99214", "Office or other outpatient visit, established patient, moderate complexity"),
    ("90792", "Psychiatric diagnostic evaluation with medical services"),
    ("90833", "Psychotherapy, 30 minutes, with evaluation and management"),
)

DEPRESSION_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("F32.1", "Major depressive disorder, single episode, moderate"),
    ("F33.1", "Major depressive disorder, recurrent, moderate"),
    ("F33.2", "Major depressive disorder, recurrent severe without psychotic features"),
)
PSYCHOSIS_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("F25.0", "Schizoaffective disorder, bipolar type"),
    ("F31.81", "Bipolar II disorder"),
)
NOISE_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("E78.5", "Hyperlipidemia, unspecified"),
)

STOP_INTOLERANCE = (STATUS_REASON, "sintol", "suspected intolerance")
STOP_NO_RESPONSE = (SNOMED, "266721009", "No response to treatment")

FAKE_GIVEN_NAMES = ("Testa", "Sample", "Demo", "Mockery", "Placeholder", "Dummy")
