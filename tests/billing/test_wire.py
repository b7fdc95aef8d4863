"""The API's two decoding paths of a batch accept and reject exactly the same contacts.

``decode_batch`` turns a batch whose JSON types fit into ``ContactWire`` structs (parsed in C);
``validate_contact`` then checks the remaining rules on them and, for a contact that breaks one,
takes the general path (plain JSON values), which names every field's problem. These tests feed
the same bytes to both paths.
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.metering.schemas import ContactIn, ContactWire, Rejection, decode_batch, validate_contact

TIMESTAMPS = [
    "2026-10-01T09:30:00+02:00",
    "2026-10-01T07:30:00Z",
    "2026-10-01t07:30:00z",  # RFC 3339 allows lower case
    "2026-10-01 09:30:00+02:00",
    "2026-10-01T09:30:00.1234567+02:00",
    "2026-10-02T10:00:00.5Z",
    "2026-09-30T23:00:00Z",  # before the usual opened_at
    "2026-10-01T09:30:00",  # no offset
    "2026-10-14 09:00",
    "2026-10-01",
    "2026-13-01T00:00:00Z",
    "yesterday",
    "9999-12-31T23:59:59Z",  # out of the plausible range (2000-01-01 to a day after the ingest)
    "0001-01-01T00:00:00+14:00",
    "1999-12-31T23:59:59Z",
    12345,
    None,
]


BASE = {
    "external_id": "c-1",
    "channel": "chat",
    "language": "de",
    "market": "DE",
    "intent": "wismo",
    "opened_at": "2026-10-01T09:30:00+02:00",
    "updated_at": "2026-10-02T10:00:00Z",
    "resolution": "ai_resolved",
    "first_response_at": "2026-10-01T07:31:00Z",
    "resolved_at": "2026-10-01T09:40:00+02:00",
    "csat": 5,
    "customer_ref": "anna@example.de",
}
MISSING = object()
# Per field, values to put in (valid, edge and invalid ones), or MISSING to leave the field out.
CHANGES = {
    "external_id": ["c-2", "x" * 200, "", "   ", "x" * 201, "c\x00-2", "c-\u0085", 5, None, MISSING],
    "channel": ["email", "fax", 3, [1], None, MISSING],
    "language": ["zh-Hans", "pt-BR", "German!", "x" * 40, 7, MISSING],
    "market": ["CN", "Germany", "de", None],
    "intent": ["return", "nope", None],
    "opened_at": TIMESTAMPS,
    "updated_at": TIMESTAMPS,
    "first_response_at": [*TIMESTAMPS, MISSING],
    "handoff_at": [*TIMESTAMPS, MISSING],
    "resolved_at": [*TIMESTAMPS, MISSING],
    "resolution": ["open", "human_resolved", "abandoned", "closed", None],
    "csat": [None, 1, 4, 0, 6, True, 4.0, "5", MISSING],
    "customer_ref": [None, "", "x" * 320, "x" * 321, "a\nb@example.de", 7, MISSING],
    "colour": ["red"],
}
change = st.sampled_from(sorted(CHANGES)).flatmap(lambda f: st.tuples(st.just(f), st.sampled_from(CHANGES[f])))


@st.composite
def contact(draw) -> dict:
    """A valid contact with up to three fields changed: most rules break one at a time."""
    out = dict(BASE)
    for name, value in draw(st.lists(change, max_size=3)):
        if value is MISSING:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def _both(body: bytes) -> tuple[list, list]:
    fast = [validate_contact(i, c) for i, c in enumerate(decode_batch(body))]
    general = [validate_contact(i, c) for i, c in enumerate(msgspec.json.decode(body))]
    return fast, general


@settings(max_examples=1000, deadline=None)
@given(batch=st.lists(contact(), min_size=1, max_size=4))
def test_both_paths_give_the_same_answer_for_any_batch(batch):
    fast, general = _both(msgspec.json.encode(batch))
    assert fast == general


def test_a_well_typed_batch_takes_the_wire_path_and_bad_rules_are_still_named():
    good = BASE | {"updated_at": "2026-10-01t10:00:00z", "first_response_at": "2026-10-01T09:31:00+02:00"}
    bad = good | {"external_id": "c-2", "channel": "fax", "resolved_at": "2026-10-01T09:00:00+02:00"}
    body = msgspec.json.encode([good, bad])
    assert [type(c) for c in decode_batch(body)] == [ContactWire, ContactWire]
    fast, general = _both(body)
    assert fast == general
    assert isinstance(fast[0], ContactIn) and fast[0].updated_at.utcoffset().total_seconds() == 0
    assert isinstance(fast[1], Rejection)
    assert {e["field"] for e in fast[1].errors} == {"channel", "resolved_at"}


def test_a_batch_with_a_wrongly_typed_field_is_decoded_as_plain_json():
    body = msgspec.json.encode([{"external_id": 5}, {"contacts": 1}])
    assert decode_batch(body) == [{"external_id": 5}, {"contacts": 1}]
    assert decode_batch(b'{"contacts": []}') == []
