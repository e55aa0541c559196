"""Native unit tests of the adapter (no wasm): the same code as the component.

They need the Python bindings of the WIT world on the path:

    componentize-py -d ../../plugin-sdk/wit -w adapter bindings bindings
    PYTHONPATH=bindings python3 -m unittest test_app
"""

import json
import unittest

import app
from componentize_py_types import Err
from wit_world.imports import types

SAMPLE = open(__file__.replace("test_app.py", "sample.csv"), "rb").read()


def message(payload, charset=None):
    return types.InboundMessage(
        payload=payload,
        content_type="text/csv",
        source="test",
        received_at="2026-01-01T00:00:00Z",
        charset=charset,
    )


def adapt(payload, charset=None):
    world = app.WitWorld()
    world.configure("{}")
    return world.adapt(message(payload, charset))


def error_of(payload):
    try:
        adapt(payload)
    except Err as err:
        return err.value
    raise AssertionError("no error")


class AdaptTest(unittest.TestCase):
    def test_sample_gives_one_record(self):
        out = adapt(SAMPLE)
        self.assertEqual(len(out.records), 1)
        record = out.records[0]
        self.assertIsInstance(record.kind, types.RecordKind_LabResult)
        self.assertEqual(record.patient.local_ids[0].value, "IPP123")
        self.assertEqual([c.code for c in record.codes], ["2345-7", "2823-3"])
        self.assertEqual(record.event_time, "2024-01-31T08:10:00+01:00")
        bundle = json.loads(record.bundle)
        self.assertEqual(bundle["resourceType"], "Bundle")
        self.assertEqual(
            [e["resource"]["resourceType"] for e in bundle["entry"]],
            ["Patient", "Observation", "Observation"],
        )
        patient_url = bundle["entry"][0]["fullUrl"]
        self.assertTrue(patient_url.startswith("urn:uuid:"))
        self.assertEqual(bundle["entry"][1]["resource"]["subject"]["reference"], patient_url)
        self.assertEqual(bundle["entry"][1]["resource"]["valueQuantity"]["value"], 5.4)
        # Deterministic: the same message gives the same bundle.
        self.assertEqual(adapt(SAMPLE).records[0].bundle, record.bundle)

    def test_bad_input_says_where(self):
        err = error_of(b"patient_id,loinc,display,value,unit,effective\nIPP1,2345-7,G,abc,mmol/L,\n")
        self.assertIsInstance(err, types.AdaptError_Malformed)
        self.assertEqual(err.value.location, "line 2 value")
        err = error_of(b"a,b\n")
        self.assertEqual(err.value.location, "line 1")
        err = error_of(b"patient_id,loinc,display,value,unit,effective\nIPP1,1,,1,,\nIPP2,2,,2,,\n")
        self.assertEqual(err.value.location, "line 3")
        err = error_of(b"patient_id,loinc,display,value,unit,effective\nIPP1,1,,1,,2024-01-31T08:10\n")
        self.assertEqual(err.value.location, "line 2 effective")
        err = error_of(b"\xff\xfe")
        self.assertEqual(err.value.location, "payload")

    def test_settings(self):
        world = app.WitWorld()
        world.configure('{"ipp_system": "urn:oid:1.2.3"}')
        self.assertEqual(world.adapt(message(SAMPLE)).records[0].patient.local_ids[0].system, "urn:oid:1.2.3")
        for bad in ['{"ipp_system": ""}', '{"other": 1}', "[1]", "{"]:
            with self.assertRaises(Err):
                world.configure(bad)
        world.configure("{}")

    def test_describe(self):
        info = app.WitWorld().describe()
        self.assertEqual(info.name, "python-example")
        self.assertEqual(info.content_types, ["text/csv"])


if __name__ == "__main__":
    unittest.main()
