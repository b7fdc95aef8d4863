"""The one month parser and the one time parser: their range (2000-01 up to a year ahead) and shapes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from control_plane.errors import InvalidInput
from tenants.periods import EARLIEST_PERIOD, MONTHS_AHEAD, Period, parse_time

TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def refused(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    [error] = caught.value.errors
    return error.field, error.message


class TestPeriodParse:
    def test_the_range_is_2000_01_to_a_year_after_this_month(self):
        assert (EARLIEST_PERIOD, MONTHS_AHEAD) == (Period(2000, 1), 12)
        assert Period.latest(TODAY) == Period(2027, 11)
        assert Period.parse("2000-01", today=TODAY) == Period(2000, 1)
        assert Period.parse("2027-11", today=TODAY) == Period(2027, 11)

    @pytest.mark.parametrize(
        "value", ["1999-12", "2027-12", "9999-12", "0000-01", "0001-01", "2026-13", "2026-00", "2026-1", "2026-10\n",
                  " 2026-10", "\u0662\u0660\u0662\u0666-\u0661\u0660", "2026-10\x00", "", None, "€"],
    )  # fmt: skip
    def test_anything_else_is_a_422_on_the_named_field(self, value):
        field, message = refused(Period.parse, value, "month", today=TODAY)
        assert field == "month"
        assert message == "must be a month as YYYY-MM from 2000-01 to 2027-11, e.g. 2026-11"

    def test_shift_crosses_years(self):
        assert Period(2026, 11).shift(2) == Period(2027, 1)
        assert Period(2026, 1).shift(-1) == Period(2025, 12)
        assert Period(2026, 11).shift(-MONTHS_AHEAD) == Period(2025, 11)


class TestParseTime:
    def test_shapes_as_before(self):
        assert parse_time("2026-11-01", "from", now=NOW) == datetime(2026, 11, 1, tzinfo=UTC)
        assert parse_time("2026-11-01", "to", end=True, now=NOW) == datetime(2026, 11, 2, tzinfo=UTC)
        assert parse_time("2026-11-01T09:30", "from", now=NOW) == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
        plus2 = parse_time("2026-11-01T09:30:00+02:00", "from", now=NOW)
        assert plus2 == datetime(2026, 11, 1, 7, 30, tzinfo=UTC) and plus2.utcoffset() == timedelta(hours=2)
        assert parse_time("2026-11-01T09:30:00.5Z", "from", now=NOW) == datetime(2026, 11, 1, 9, 30, 0, 500000, UTC)
        assert parse_time("  ", "from", now=NOW) is None and parse_time(None, "from") is None

    def test_the_range_ends_with_the_last_month_a_period_may_name(self):
        assert parse_time("2000-01-01T00:00:00Z", "from", now=NOW) == datetime(2000, 1, 1, tzinfo=UTC)
        assert parse_time("2027-11-30", "to", end=True, now=NOW) == datetime(2027, 12, 1, tzinfo=UTC)
        assert parse_time("2027-12-01T00:00:00+00:00", "to", now=NOW) == datetime(2027, 12, 1, tzinfo=UTC)
        for value in ("1999-12-31T23:59:59Z", "2027-12-01T00:00:01Z", "2000-01-01T00:00:00+00:01"):
            assert refused(parse_time, value, "to", now=NOW) == ("to", "must be a time from 2000-01-01 to 2027-11-30")

    @pytest.mark.parametrize(
        "value", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31", "0001-01-01", "0000-01-01"]
    )
    def test_times_without_a_utc_equivalent_are_out_of_range_not_an_error(self, value):
        field, message = refused(parse_time, value, "to", end=True, now=NOW)
        assert field == "to" and message.startswith(("must be a time", "is not a date"))

    @pytest.mark.parametrize(
        "value", ["yesterday", "2026-11-01T00:00:00Z\x00", "2026-11-01\x1f", "2026-11-01\n", "2026-11-01T25:00Z", "€"]
    )
    def test_unparsable_is_named(self, value):
        assert refused(parse_time, value, "from", now=NOW)[1].startswith("is not a date (2026-11-01)")

    def test_an_offset_may_be_required(self):
        assert refused(parse_time, "2026-11-01T09:30", "from", offset_required=True, now=NOW) == (
            "from",
            "needs a time zone offset (e.g. Z or +02:00)",
        )
        assert refused(parse_time, "yesterday", "from", offset_required=True, now=NOW)[1] == (
            "is not an RFC 3339 time (2026-11-01T09:30:00Z)"
        )
        east = parse_time("2026-11-01T09:30:00+05:30", "from", offset_required=True, now=NOW)
        assert east.tzinfo == timezone(timedelta(hours=5, minutes=30))
