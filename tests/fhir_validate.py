#!/usr/bin/env python3
"""Validate FHIR JSON Bundles with the `fhir.resources` package (R4B models).

Usage:
    python3 tests/fhir_validate.py FILE...   # each file: one JSON Bundle, or one per line
    python3 tests/fhir_validate.py < FILE    # one JSON Bundle per line on stdin

Prints "N valid" and exits 0 when every bundle validates; prints the first error and exits 1
otherwise; exits 2 when `fhir.resources` is missing (pip install 'fhir.resources>=8,<9').

R4B is structurally close enough to R4 for the resources Passerelle builds (Patient,
Observation, DiagnosticReport, Composition, DocumentReference, MedicationRequest...).
"""

import json
import sys


def bundles(args):
    """Yields (label, json_text) for every bundle of the inputs."""
    sources = [(path, open(path, encoding="utf-8").read()) for path in args] if args else [("<stdin>", sys.stdin.read())]
    for name, text in sources:
        stripped = text.strip()
        if not stripped:
            continue
        try:
            json.loads(stripped)
            yield name, stripped
            continue
        except json.JSONDecodeError:
            pass
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield f"{name}:{number}", line


def main(args):
    try:
        from fhir.resources.R4B.bundle import Bundle
    except ImportError as error:
        print(f"fhir.resources is not installed: {error}", file=sys.stderr)
        return 2
    count = 0
    for label, text in bundles(args):
        try:
            bundle = Bundle.model_validate_json(text)
        except Exception as error:  # pydantic.ValidationError, json errors...
            print(f"{label}: INVALID\n{error}", file=sys.stderr)
            return 1
        if bundle.get_resource_type() != "Bundle":
            print(f"{label}: INVALID: not a Bundle", file=sys.stderr)
            return 1
        count += 1
    print(f"{count} valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
