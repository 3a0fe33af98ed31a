"""Validates an Infusafe FHIR export with the independent `fhir.resources` package (R4B models, the
closest it ships to R4) and checks the required-binding codes that package leaves unchecked.
Usage: validate_fhir.py BUNDLE.json  — prints a JSON summary on success, exits non-zero on failure."""
import json
import sys

try:
    from fhir.resources.R4B.bundle import Bundle
except ImportError as error:  # pragma: no cover - the Rust test turns this into a clear failure
    print(f"IMPORT FAILED: {error}: pip install fhir.resources")
    sys.exit(3)

# Required bindings in R4 (value sets the validator does not enforce).
CODES = {
    ("Bundle", "type"): {"document", "message", "transaction", "transaction-response", "batch",
                         "batch-response", "history", "searchset", "collection"},
    ("MedicationAdministration", "status"): {"in-progress", "not-done", "on-hold", "completed",
                                             "entered-in-error", "stopped", "unknown"},
    ("Observation", "status"): {"registered", "preliminary", "final", "amended", "corrected",
                                "cancelled", "entered-in-error", "unknown"},
    ("Communication", "status"): {"preparation", "in-progress", "not-done", "on-hold", "stopped",
                                  "completed", "entered-in-error", "unknown"},
    ("Communication", "priority"): {"routine", "urgent", "asap", "stat"},
    ("Device", "deviceName.type"): {"udi-label-name", "user-friendly-name", "patient-reported-name",
                                    "manufacturer-name", "model-name", "other"},
}

raw = json.load(open(sys.argv[1]))
bundle = Bundle.model_validate(raw)
problems = []
if raw["type"] not in CODES[("Bundle", "type")]:
    problems.append(f"Bundle.type {raw['type']!r}")
urls = set()
counts = {}
for entry in raw.get("entry", []):
    resource = entry["resource"]
    kind = resource["resourceType"]
    counts[kind] = counts.get(kind, 0) + 1
    if entry["fullUrl"] in urls:
        problems.append(f"duplicate fullUrl {entry['fullUrl']}")
    urls.add(entry["fullUrl"])
    for (rtype, field), allowed in CODES.items():
        if rtype != kind:
            continue
        if field == "deviceName.type":
            values = [n["type"] for n in resource.get("deviceName", [])]
        else:
            values = [resource[field]] if field in resource else []
        for value in values:
            if value not in allowed:
                problems.append(f"{kind}.{field} {value!r} is not in the R4 value set")


def references(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


for ref in references(raw):
    if ref not in urls:
        problems.append(f"reference {ref} does not resolve inside the Bundle")
if problems:
    print("PROBLEMS: " + "; ".join(problems))
    sys.exit(1)
administrations = [e["resource"] for e in raw["entry"]
                   if e["resource"]["resourceType"] == "MedicationAdministration"]
print(json.dumps({
    "counts": counts,
    "validated_entries": len(bundle.entry or []),
    "administrations": [[a["status"], a["dosage"].get("dose", {}).get("value"),
                         a["effectivePeriod"].get("end") is not None] for a in administrations],
}, sort_keys=True))
