"""Issuers (the BPO's legal entities), tenants' billing profiles, tax rates and the tax rule."""
