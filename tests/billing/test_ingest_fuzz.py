"""Fuzz (hypothesis) of the contact validator and of the ingest endpoint (issue 14).

Whatever a batch holds (values of any JSON type, timestamps of any year and offset, unicode and
control characters, nesting, missing and unknown fields), the validator returns a contact or a
rejection and never raises, and the endpoint never answers 5xx: a 200 accounts for every item
(accepted + updated + duplicates + rejected), anything else is a 4xx problem JSON. Examples are
bounded so that both run in seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.metering.schemas import (
    AHEAD,
    EARLIEST,
    FIELDS,
    ContactIn,
    Rejection,
    decode_batch,
    has_control_characters,
    validate_contact,
)

VALID = {
    "external_id": "fz-1",
    "channel": "chat",
    "language": "de",
    "market": "DE",
    "intent": "wismo",
    "opened_at": "2026-10-14T09:00:00Z",
    "first_response_at": "2026-10-14T09:00:20Z",
    "resolved_at": "2026-10-14T09:04:00Z",
    "resolution": "ai_resolved",
    "csat": 5,
    "customer_ref": "anna@example.de",
    "updated_at": "2026-10-14T09:04:00Z",
}
OFFSETS = [
    UTC,
    timezone(timedelta(hours=14)),
    timezone(-timedelta(hours=14)),
    timezone(timedelta(hours=23, minutes=59)),
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=st.sampled_from(OFFSETS)
    ).map(datetime.isoformat),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(datetime.isoformat),  # naive
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-23:59",
            "1999-12-31T23:59:59Z",
            "2000-01-01T00:00:00Z",
            "2026-10-14T09:00:00.123456789Z",
            "2026-02-30T00:00:00Z",
            "2026-10-14T24:00:00Z",
            "",
        ]
    ),
    st.text(max_size=30),
)
identifiers = st.text(st.characters(exclude_categories=("Cs",)), max_size=40) | st.text(max_size=300)
FIELD_VALUES = {
    name: st.one_of(
        json_values,
        timestamps
        if name.endswith("_at")
        else identifiers
        if name in ("external_id", "customer_ref")
        else st.nothing(),
    )
    for name in FIELDS
}


@st.composite
def contacts(draw):
    """A valid contact with some fields replaced by anything, some removed and some unknown ones added;
    now and then not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    out = dict(VALID)
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True)):
        if draw(st.booleans()):
            out[name] = draw(FIELD_VALUES[name])
        else:
            out.pop(name, None)
    out |= draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2))
    return out


batches = st.lists(contacts(), max_size=6)


def check_contact(checked, index: int, latest: datetime) -> None:
    assert isinstance(checked, ContactIn | Rejection) and checked.index == index
    if isinstance(checked, Rejection):
        assert checked.errors and all(isinstance(e["field"], str) and e["message"] for e in checked.errors)
        return
    stamps = [checked.first_response_at, checked.handoff_at, checked.resolved_at, checked.updated_at]
    assert EARLIEST <= checked.opened_at <= latest
    assert all(s is None or checked.opened_at <= s <= latest for s in stamps)
    assert not has_control_characters(checked.external_id)
    assert checked.customer_ref is None or not has_control_characters(checked.customer_ref)


@settings(max_examples=400, deadline=None)
@given(batch=batches, envelope=st.booleans())
def test_the_validator_answers_every_item_and_never_raises(batch, envelope):
    latest = datetime.now(UTC) + AHEAD
    raw = msgspec.json.encode({"contacts": batch} if envelope else batch)
    decoded = decode_batch(raw)
    if isinstance(decoded, dict):  # an envelope that did not fit the wire types (the API unwraps it alike)
        decoded = decoded["contacts"]
    assert len(decoded) == len(batch)
    for index, (item, plain) in enumerate(zip(decoded, batch, strict=True)):
        fast, general = validate_contact(index, item, latest), validate_contact(index, plain, latest)
        check_contact(fast, index, latest)
        assert fast == general  # the wire path and the general path agree


@pytest.fixture
async def fuzz_tenant(ingest_tenant):
    return await ingest_tenant()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=batches, envelope=st.booleans())
async def test_the_endpoint_never_answers_5xx_and_accounts_for_every_item(client, fuzz_tenant, batch, envelope):
    t = fuzz_tenant
    payload = {"contacts": batch} if envelope else batch
    resp = await client.post(
        t.path(), content=msgspec.json.encode(payload), headers=t.headers | {"Content-Type": "application/json"}
    )
    assert resp.status_code < 500, resp.text
    if resp.status_code != 200:
        assert 400 <= resp.status_code < 500 and resp.headers["content-type"].startswith("application/problem+json")
        return
    body = resp.json()
    assert body["accepted"] + body["updated"] + body["duplicates"] + len(body["rejected"]) == len(batch)
    assert sorted(r["index"] for r in body["rejected"]) == sorted({r["index"] for r in body["rejected"]})
    assert all(0 <= r["index"] < len(batch) and r["errors"] for r in body["rejected"])
