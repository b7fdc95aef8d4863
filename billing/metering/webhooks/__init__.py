"""Helpdesk webhooks (Gorgias, Zendesk, a generic signed JSON): verify, pseudonymise, store by id, map, ingest.

A delivery is verified with the integration's sealed webhook secret (HMAC-SHA256 and a timestamp
within ``TOLERANCE_SECONDS``; anything else answers 401 and stores nothing), its customer
identifiers are replaced by their HMAC under the tenant's key and its free text dropped, and it is
stored by its delivery id in the cell of the integration's processing region *before* it is mapped
to a contact, so a mapping bug can be fixed and the stored events replayed. A delivery id seen
before is a duplicate.
"""
