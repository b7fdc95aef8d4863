"""Data-subject requests: intake, deadlines per regime, access exports, erasure, recorded CCPA requests.

Flow: a merchant admin or a compliance officer files a request with the subject's identifier; it is
hashed exactly as ingest hashes ``customer_ref`` (``billing.metering.service.hash_customer_ref`` under
the tenant's key) and looked up only in the tenant's cells (``tenants.residency.cells_in_use``). The
request gets its regime's deadline (``deadlines``). Access exports the subject's contacts; erasure
clears the reference (contacts and stored webhook events) in every cell; correction and opt-out of
sale/share are recorded. Every step appends to the tenant's audit stream; the identifier itself is
never logged, and its hash is dropped from the control database when the request closes.
"""
