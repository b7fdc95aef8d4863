"""One test per regime, naming the article it enforces (`tenants.regimes` states each once)."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from compliance.dsr import deadlines
from tenants import regimes, residency
from tenants.residency_schemas import TransferMechanism

TODAY = date(2026, 11, 30)
REGISTRY = {"eu": "GDPR", "us": "CCPA", "sg": "PDPA", "cn": "PIPL"}


def _mechanism(regime: str, market: str | None, to_region: str, mechanism: str, **extra) -> dict:
    return {
        "regime": regime,
        "market": market,
        "to_region": to_region,
        "mechanism": mechanism,
        "reference": "r",
    } | extra


def _checked(body: dict) -> dict:
    return TransferMechanism.model_validate(body, context={"regions": REGISTRY}).model_dump(mode="json")


def _integration(cells: dict[str, list[str]], processing_region: str, mechanisms: list[dict]) -> str | None:
    return residency.integration_refusal(
        processing_region=processing_region, cells=cells, regions=REGISTRY, mechanisms=mechanisms, today=TODAY, kind="x"
    )


class TestGdpr:
    def test_chapter_v_eea_data_stays_unless_art_45_46_or_47_applies(self):
        """GDPR Art. 44-47: DE data leaves the GDPR region only under adequacy (45), SCCs (46(2)(c)) or BCR (47)."""
        refused = residency.policy_refusals({"DE": "us"}, [], TODAY, REGISTRY)
        assert [r.field for r in refused] == ["markets.DE"] and "GDPR" in refused[0].reason
        sccs = _checked(_mechanism("GDPR", "DE", "us", "sccs"))
        assert residency.policy_refusals({"DE": "us"}, [sccs], TODAY, REGISTRY) == []
        assert [m.reference for m in regimes.REGIMES["GDPR"].mechanisms] == [
            "GDPR Art. 45",
            "GDPR Art. 46(2)(c)",
            "GDPR Art. 47",
        ]
        with pytest.raises(ValidationError, match="not one GDPR recognises"):
            _checked(_mechanism("GDPR", "DE", "us", "standard_contract"))

    def test_an_expired_mechanism_is_no_mechanism(self):
        expired = _checked(_mechanism("GDPR", "FR", "us", "adequacy", valid_until="2026-01-31"))
        assert residency.policy_refusals({"FR": "us"}, [expired], TODAY, REGISTRY)


class TestPipl:
    def test_art_38_cn_data_leaves_only_under_assessment_certification_or_standard_contract(self):
        """PIPL Art. 38(1): a CAC security assessment (i), certification (ii) or the standard contract (iii)."""
        assert regimes.REGIMES["PIPL"].mechanism_codes == {
            "cac_security_assessment",
            "certification",
            "standard_contract",
        }
        assert residency.region_for_market("CN", {}, "eu", REGISTRY) == "cn"
        assert residency.policy_refusals({"CN": "eu"}, [], TODAY, REGISTRY)
        contract = _checked(_mechanism("PIPL", "CN", "eu", "standard_contract"))
        assert residency.policy_refusals({"CN": "eu"}, [contract], TODAY, REGISTRY) == []
        with pytest.raises(ValidationError, match="not one PIPL recognises"):
            _checked(_mechanism("PIPL", "CN", "eu", "sccs"))

    def test_art_50_deadline_is_the_tenants_policy(self):
        assert deadlines.due_on("PIPL", date(2026, 11, 1), pipl_days=10) == date(2026, 11, 11)


class TestPdpa:
    def test_s26_transfer_limitation_met_by_contract_bcr_or_certification(self):
        """PDPA s. 26 with PDP Regulations 2021 regs. 11-12: a contract, BCR or a specified certification.

        The disagreement the regimes module settles: residency used to name only "a contract" while
        the schema also accepted certification; both now read the same list."""
        cells = {"sg": ["SG"]}
        refusal = _integration(cells, "us", [])
        assert refusal and "certification" in refusal and "contract" in refusal
        certified = _checked(_mechanism("PDPA", None, "us", "certification"))
        assert _integration(cells, "us", [certified]) is None
        assert residency.region_for_market("SG", {}, "eu", REGISTRY) == "eu"  # not pinned: s. 26 allows transfers

    def test_reg_4_thirty_days(self):
        assert deadlines.due_on("PDPA", date(2026, 11, 1)) == date(2026, 12, 1)


class TestCcpa:
    def test_no_transfer_restriction_and_45_day_deadline(self):
        """CCPA/CPRA: no export restriction (a US cell may feed any region); Civ. Code 1798.130(a)(2): 45 days."""
        assert _integration({"us": ["US"]}, "eu", []) is None
        assert not regimes.export_controlled("CCPA")
        assert deadlines.due_on("CCPA", date(2026, 11, 1)) == date(2026, 12, 16)
        assert deadlines.extended_due_on("CCPA", date(2026, 12, 16)) == date(2027, 1, 30)


class TestRegionRegistry:
    def test_pinned_regions_come_from_the_registry_not_literals(self):
        registry = {"eu-1": "GDPR", "eu-2": "GDPR", "mainland": "PIPL", "us": "CCPA"}
        assert regimes.pinned_regions("DE", registry) == ["eu-1", "eu-2"]
        assert residency.region_for_market("CN", {}, "us", registry) == "mainland"
        assert residency.region_for_market("FR", {}, "eu-2", registry) == "eu-2"  # home region is lawful
        assert residency.policy_refusals({"DE": "eu-2"}, [], TODAY, registry) == []
        assert residency.policy_refusals({"DE": "us"}, [], TODAY, registry)
