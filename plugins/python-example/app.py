"""A Passerelle adapter written in Python: a tiny CSV lab-result format.

Built into a WebAssembly component by componentize-py against the same WIT contract as the
Rust adapters (`plugin-sdk/wit/adapter.wit`, world `adapter`): see `build.sh` and README.md.

The format (content type `text/csv`): a header line, then one row per result, all for one
patient:

    patient_id,loinc,display,value,unit,effective
    IPP123,2345-7,Glucose,5.4,mmol/L,2024-01-31T08:10:00+01:00
    IPP123,2823-3,Potassium,4.2,mmol/L,2024-01-31T08:10:00+01:00

One message gives one `lab-result` record whose FHIR R4 Bundle (type `collection`) holds the
Patient and one Observation per row. Bad input is answered with `malformed` naming the line.

Settings (`[plugins.NAME.settings]`, all optional):
    ipp_system   identifier system of the patient ids (default `urn:oid:1.2.250.1.71.4.2.7`)

The sandbox gives no clock, no files and no network: everything the adapter needs is in the
message (`received_at` is the time to use).
"""

import json
import re

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types

NAME = "python-example"
VERSION = "0.1.0"
CONTENT_TYPE = "text/csv"
COLUMNS = ["patient_id", "loinc", "display", "value", "unit", "effective"]
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DEFAULT_IPP_SYSTEM = "urn:oid:1.2.250.1.71.4.2.7"
# FHIR dateTime with a time zone (the host refuses event times without one).
DATETIME = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?)?$"
)
DECIMAL = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?$")


def malformed(location, reason):
    return Err(types.AdaptError_Malformed(types.MalformedInput(location=location, reason=reason)))


def log(level, message):
    """Logs through the host; a no-op when run natively (unit tests)."""
    try:
        host.log(level, message)
    except NotImplementedError:
        pass


def parse_rows(text):
    """The data rows as dicts with their line numbers; raises Err(malformed) on bad input."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise malformed("line 1", "empty message")
    n, header = lines[0]
    if [c.strip().lower() for c in header.split(",")] != COLUMNS:
        raise malformed(f"line {n}", "expected the header " + ",".join(COLUMNS))
    rows = []
    for n, line in lines[1:]:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(COLUMNS):
            raise malformed(f"line {n}", f"expected {len(COLUMNS)} fields, found {len(fields)}")
        row = dict(zip(COLUMNS, fields))
        for column in ("patient_id", "loinc", "value"):
            if not row[column]:
                raise malformed(f"line {n}", f"{column} is empty")
        if not DECIMAL.match(row["value"]):
            raise malformed(f"line {n} value", f"{row['value']!r} is not a decimal number")
        if row["effective"] and not DATETIME.match(row["effective"]):
            raise malformed(f"line {n} effective", f"{row['effective']!r} is not a FHIR dateTime with a time zone")
        if rows and row["patient_id"] != rows[0][1]["patient_id"]:
            raise malformed(f"line {n}", "all rows of a message must be for the same patient")
        rows.append((n, row))
    if not rows:
        raise malformed(f"line {lines[0][0]}", "no result row after the header")
    return rows


def full_url(seed, *parts):
    """A deterministic `urn:uuid:` (the same message gives the same ids): a version-8 UUID from
    the 128-bit FNV-1a hash of the parts. (The component's Python has no `hashlib`, so no
    `uuid.uuid5`.)"""
    h = 0x6C62272E07BB014262B821756295C58D
    for byte in "\x1f".join((seed,) + parts).encode("utf-8"):
        h = ((h ^ byte) * 0x0000000001000000000000000000013B) & ((1 << 128) - 1)
    h = (h & ~(0xF << 76)) | (0x8 << 76)  # version 8 (custom)
    h = (h & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    x = f"{h:032x}"
    return f"urn:uuid:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def bundle_json(rows, ipp_system, seed):
    """The FHIR R4 Bundle (collection): one Patient, one Observation per row."""
    ipp = rows[0][1]["patient_id"]
    patient_url = full_url(seed, "Patient", ipp)
    entries = [
        {
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": ipp_system, "value": ipp}],
            },
        }
    ]
    for n, row in rows:
        coding = {"system": LOINC, "code": row["loinc"]}
        if row["display"]:
            coding["display"] = row["display"]
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
            "code": {"coding": [coding]},
            "subject": {"reference": patient_url},
        }
        if row["effective"]:
            observation["effectiveDateTime"] = row["effective"]
        quantity = {"value": json.loads(row["value"])}
        if row["unit"]:
            quantity.update({"unit": row["unit"], "system": UCUM, "code": row["unit"]})
        observation["valueQuantity"] = quantity
        entries.append({"fullUrl": full_url(seed, "Observation", str(n)), "resource": observation})
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})


def parse_settings(settings):
    """The identifier system from the settings JSON; raises Err(str) on bad settings."""
    try:
        parsed = json.loads(settings) if settings.strip() else {}
    except ValueError as error:
        raise Err(f"invalid settings: {error}")
    if not isinstance(parsed, dict):
        raise Err("invalid settings: expected a table")
    unknown = sorted(set(parsed) - {"ipp_system"})
    if unknown:
        raise Err(f"invalid settings: unknown key(s) {', '.join(unknown)}")
    system = parsed.get("ipp_system", DEFAULT_IPP_SYSTEM)
    if not isinstance(system, str) or not system.strip():
        raise Err("invalid settings: ipp_system must be a non-empty string")
    return system


def adapt(message, ipp_system):
    """One message to one record; raises Err(adapt-error) on bad input."""
    charset = message.charset or "utf-8"
    try:
        text = bytes(message.payload).decode(charset)
    except (UnicodeDecodeError, LookupError) as error:
        raise malformed("payload", f"cannot decode as {charset}: {error}")
    text = text.lstrip("\ufeff")
    rows = parse_rows(text)
    log(types.LogLevel.DEBUG, f"{len(rows)} result row(s)")
    first = rows[0][1]
    record = types.Record(
        kind=types.RecordKind_LabResult(),
        patient=types.PatientIdentity(
            ins=None, local_ids=[types.Identifier(system=ipp_system, value=first["patient_id"])]
        ),
        event_time=first["effective"] or None,
        status=types.RecordStatus.FINAL,
        confidentiality=types.Confidentiality(level=types.ConfidentialityLevel.NORMAL, flags=[]),
        codes=[
            types.Coding(system=LOINC, code=row["loinc"], display=row["display"] or None)
            for _, row in rows
        ],
        bundle=bundle_json(rows, ipp_system, seed=f"{message.source}|{text}"),
    )
    return types.Adapted(source_message_id=None, message_type=None, records=[record])


class WitWorld(wit_world.WitWorld):
    """The component's exports: `describe`, `configure`, `adapt`.

    An exception other than `Err` would trap the instance (the host reports a crash and throws
    the instance away): unexpected ones are turned into errors that say what happened.
    """

    ipp_system = DEFAULT_IPP_SYSTEM

    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=NAME, version=VERSION, content_types=[CONTENT_TYPE], message_types=[]
        )

    def configure(self, settings: str) -> None:
        try:
            system = parse_settings(settings)
        except Err:
            raise
        except Exception as error:
            raise Err(f"{type(error).__name__}: {error}")
        # Class attribute: the settings hold for every call of this instance.
        WitWorld.ipp_system = system

    def adapt(self, message: types.InboundMessage) -> types.Adapted:
        try:
            return adapt(message, WitWorld.ipp_system)
        except Err:
            raise
        except Exception as error:
            raise Err(types.AdaptError_Internal(f"{type(error).__name__}: {error}"))
