"""Staff sign-in with OpenID Connect against a real provider, ``oidc-provider-mock`` from PyPI.

The provider runs on loopback with client registration and nonces required; the app runs under
uvicorn at its ``BPO_PUBLIC_URL`` (see ``tests/live.py``). The tests drive the redirects the way a
browser does: follow the app to the provider's authorize page, submit its form, and carry the
provider's redirect back to the callback. ID tokens for the refusal tests are real tokens the
provider issued, or forgeries of them built with joserfc.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from compliance.models import AuditEntry
from compliance.service import SystemActor
from control_plane import service
from control_plane.models import User
from control_plane.oidc import OIDCClient, OIDCError
from control_plane.settings import OIDCSettings
from tests.live import CALLBACK, LiveApp, Provider, oidc_provider, serve_app

NOT_REACHED = "http://127.0.0.1:9/callback"  # where token-only tests "redirect": never followed
PAGE = {"accept": "text/html,application/xhtml+xml"}  # what a browser asks for


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with oidc_provider() as p:
        yield p


@pytest.fixture(scope="module")
def live(settings, provider: Provider) -> Iterator[LiveApp]:
    with serve_app(settings, provider) as app:
        yield app


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """A cookie jar that follows nothing by itself, so each hop of the flow is visible."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=30, headers=PAGE) as http:
        yield http


async def provision(dbs, provider: Provider, *, role: str = "account_manager") -> tuple[str, str]:
    """A staff user invited here (``create_user``) and known to the provider: ``(email, sub)``."""
    email, sub = f"am-{uuid.uuid4().hex[:10]}@staff.example.com", f"idp-{uuid.uuid4().hex[:10]}"
    async with dbs.control_transaction() as session:
        await service.create_user(session, SystemActor("tests"), {"email": email, "role": role, "name": "Ada"})
    provider.set_user(sub, email=email, email_verified=True, name="Ada Lovelace")
    return email, sub


async def open_provider_page(http: httpx.AsyncClient, live: LiveApp, provider: Provider) -> httpx.Response:
    """Click "sign in with single sign-on": the app sends the browser to the provider's form."""
    start = await http.get(f"{live.url}/auth/oidc/login", params={"next": "/tenants"})
    assert start.status_code == 302, start.text
    assert start.headers["location"].startswith(f"{provider.issuer}/oauth2/authorize?")
    page = await http.get(start.headers["location"])
    assert page.status_code == 200, page.text
    assert 'name="sub"' in page.text
    return page


async def submit_provider_form(http: httpx.AsyncClient, page: httpx.Response, sub: str) -> str:
    """Type the subject and press Authorize (the form posts to its own URL); returns the redirect."""
    answer = await http.post(str(page.url), data={"sub": sub})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


async def login_entries(dbs, email: str) -> list[AuditEntry]:
    async with dbs.control_session() as session:
        rows = await session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "auth.login", AuditEntry.target == f"user:{email}")
        )
        return list(rows.all())


class TestSignIn:
    async def test_an_invited_account_manager_signs_in_and_reaches_the_tenants(self, live, provider, dbs, browser):
        email, sub = await provision(dbs, provider)
        page = await open_provider_page(browser, live, provider)
        callback = await submit_provider_form(browser, page, sub)
        assert callback.startswith(live.url + CALLBACK + "?")
        assert set(parse_qs(urlsplit(callback).query)) == {"code", "state"}

        back = await browser.get(callback)
        assert back.status_code == 302, back.text
        assert back.headers["location"] == "/tenants"
        tenants = await browser.get(f"{live.url}/tenants")
        assert tenants.status_code == 200
        assert "<h1>Tenants</h1>" in tenants.text
        assert f"{email} · account_manager" in tenants.text
        me = await browser.get(f"{live.url}/api/v1/me")
        assert me.json() == {"actor": f"user:{email}", "role": "account_manager", "tenant": None, "scopes": []}

        [entry] = await login_entries(dbs, email)
        assert (entry.stream, entry.actor, entry.role, entry.data) == (
            "platform",
            f"user:{email}",
            "account_manager",
            {"method": "oidc", "address": "127.0.0.1"},
        )
        async with dbs.control_session() as session:
            user = await session.scalar(sa.select(User).where(User.email == email))
        assert user.oidc_subject == f"{provider.issuer}|{sub}"
        assert user.last_login_at is not None

    async def test_the_authorization_request_carries_pkce_state_and_nonce(self, live, provider, browser):
        start = await browser.get(f"{live.url}/auth/oidc/login")
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
        assert query["response_type"] == "code"
        assert query["client_id"] == live.client_id
        assert query["redirect_uri"] == live.url + CALLBACK
        assert query["code_challenge_method"] == "S256"
        assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
        assert set(query["scope"].split()) == {"openid", "email", "profile"}

        client = OIDCClient(live.settings.oidc, redirect_uri=live.url + CALLBACK)
        try:
            url, pending = await client.authorization_request()
        finally:
            await client.aclose()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(pending["verifier"].encode()).digest()).rstrip(b"=")
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert query["code_challenge"] == challenge.decode()
        assert (query["state"], query["nonce"]) == (pending["state"], pending["nonce"])

    async def test_a_callback_whose_state_does_not_match_is_refused_and_spends_the_attempt(
        self, live, provider, dbs, browser
    ):
        email, sub = await provision(dbs, provider)
        callback = await submit_provider_form(browser, await open_provider_page(browser, live, provider), sub)

        forged = await browser.get(with_query(callback, state="attacker-chosen-state"))
        assert forged.status_code == 401
        assert "state does not match the sign-in this browser started" in forged.text
        # The genuine callback afterwards is refused too: the pending sign-in was spent.
        genuine = await browser.get(callback)
        assert genuine.status_code == 401
        assert "state does not match" in genuine.text
        assert (await browser.get(f"{live.url}/tenants")).headers["location"] == "/login?next=/tenants"
        assert await login_entries(dbs, email) == []

    async def test_a_callback_in_another_browser_is_refused(self, live, provider, dbs, browser):
        """A code and state lifted from one browser are worth nothing in a browser that did not start it."""
        email, sub = await provision(dbs, provider)
        callback = await submit_provider_form(browser, await open_provider_page(browser, live, provider), sub)
        async with httpx.AsyncClient(follow_redirects=False, headers=PAGE) as other:
            stolen = await other.get(callback)
            assert stolen.status_code == 401
            assert "state does not match" in stolen.text
            assert (await other.get(f"{live.url}/tenants")).headers["location"] == "/login?next=/tenants"
        assert await login_entries(dbs, email) == []

    async def test_an_unknown_email_gets_no_session(self, live, provider, dbs, browser):
        stranger, sub = f"stranger-{uuid.uuid4().hex[:8]}@elsewhere.example.com", f"idp-{uuid.uuid4().hex[:10]}"
        provider.set_user(sub, email=stranger, email_verified=True)
        callback = await submit_provider_form(browser, await open_provider_page(browser, live, provider), sub)

        refused = await browser.get(callback)
        assert refused.status_code == 403
        assert f"{stranger} has no account here; ask a platform admin to invite you" in refused.text
        tenants = await browser.get(f"{live.url}/tenants")
        assert tenants.status_code == 302 and tenants.headers["location"] == "/login?next=/tenants"
        me = await browser.get(f"{live.url}/api/v1/me")
        assert me.status_code == 401
        assert await login_entries(dbs, stranger) == []

    async def test_an_unverified_email_is_refused(self, live, provider, dbs, browser):
        email, sub = await provision(dbs, provider)
        provider.set_user(sub, email=email, email_verified=False)
        refused = await browser.get(
            await submit_provider_form(browser, await open_provider_page(browser, live, provider), sub)
        )
        assert refused.status_code == 403
        assert "has not verified this e-mail address" in refused.text
        assert (await browser.get(f"{live.url}/api/v1/me")).status_code == 401
        assert await login_entries(dbs, email) == []

    async def test_a_denied_consent_is_shown_and_gives_no_session(self, live, provider, browser):
        page = await open_provider_page(browser, live, provider)
        denied = await browser.post(str(page.url), data={"action": "deny"})
        assert denied.status_code == 302
        assert parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]
        back = await browser.get(denied.headers["location"])
        assert back.status_code == 401
        assert "The identity provider refused the sign-in (access_denied)" in back.text
        assert (await browser.get(f"{live.url}/api/v1/me")).status_code == 401


# --- ID token verification ---------------------------------------------------------------------
@pytest.fixture
async def oidc(provider: Provider) -> AsyncIterator[OIDCClient]:
    client_id, secret = provider.register_client(NOT_REACHED)
    client = OIDCClient(OIDCSettings(provider.issuer, client_id, secret), redirect_uri=NOT_REACHED)
    yield client
    await client.aclose()


async def issue_id_token(provider: Provider, client: OIDCClient, sub: str = "") -> tuple[str, str]:
    """A real ID token from the provider for ``client``: ``(id_token, nonce)``."""
    sub = sub or f"idp-{uuid.uuid4().hex[:10]}"
    provider.set_user(sub, email=f"{sub}@staff.example.com", email_verified=True)
    url, pending = await client.authorization_request()
    async with httpx.AsyncClient(follow_redirects=False) as http:
        answer = await http.post(url, data={"sub": sub})
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == [pending["state"]]
    return await client.fetch_id_token(code=query["code"][0], verifier=pending["verifier"]), pending["nonce"]


def parts(token: str) -> tuple[dict, dict]:
    """Header and claims of a compact JWS, read without verifying it."""
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(base64.urlsafe_b64decode(pad(payload)))


class TestIdTokenVerification:
    async def test_a_genuine_token_verifies(self, provider, oidc):
        token, nonce = await issue_id_token(provider, oidc, "idp-genuine")
        claims = await oidc.verify_id_token(token, nonce=nonce)
        assert claims["iss"] == provider.issuer
        assert claims["aud"] == [oidc.settings.client_id]
        assert claims["sub"] == "idp-genuine"
        assert claims["email"] == "idp-genuine@staff.example.com"
        assert claims["nonce"] == nonce

    async def test_a_token_signed_by_another_key_is_refused(self, provider, oidc):
        token, nonce = await issue_id_token(provider, oidc)
        header, claims = parts(token)
        assert header["alg"] == "RS256"
        # The provider publishes one key and names none in its tokens: a forgery can do the same ...
        forged = jwt.encode({"alg": "RS256"}, claims, RSAKey.generate_key(2048))
        with pytest.raises(OIDCError, match="signature does not verify"):
            await oidc.verify_id_token(forged, nonce=nonce)
        # ... or name a key the provider never published (the client re-reads the key set, then refuses).
        unpublished = RSAKey.generate_key(2048, parameters={"kid": "not-published"})
        forged = jwt.encode({"alg": "RS256", "kid": "not-published"}, claims, unpublished)
        with pytest.raises(OIDCError, match="signature does not verify"):
            await oidc.verify_id_token(forged, nonce=nonce)

    async def test_a_token_whose_claims_were_edited_is_refused(self, provider, oidc):
        token, nonce = await issue_id_token(provider, oidc)
        _, claims = parts(token)
        edited = base64.urlsafe_b64encode(json.dumps(claims | {"email": "admin@bpo.local"}).encode()).rstrip(b"=")
        h, _, sig = token.split(".")
        with pytest.raises(OIDCError, match="signature does not verify"):
            await oidc.verify_id_token(f"{h}.{edited.decode()}.{sig}", nonce=nonce)

    async def test_a_token_signed_with_the_client_secret_is_refused(self, provider, oidc):
        """HS256 with the shared secret is a valid OIDC option, but not one this provider offers."""
        token, nonce = await issue_id_token(provider, oidc)
        _, claims = parts(token)
        forged = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(oidc.settings.client_secret))
        with pytest.raises(OIDCError, match="signature does not verify"):
            await oidc.verify_id_token(forged, nonce=nonce)

    async def test_a_token_for_another_client_is_refused(self, provider, oidc):
        other_id, other_secret = provider.register_client(NOT_REACHED)
        other = OIDCClient(OIDCSettings(provider.issuer, other_id, other_secret), redirect_uri=NOT_REACHED)
        try:
            token, nonce = await issue_id_token(provider, other)
            assert (await other.verify_id_token(token, nonce=nonce))["aud"] == [other_id]
        finally:
            await other.aclose()
        with pytest.raises(OIDCError, match="aud"):
            await oidc.verify_id_token(token, nonce=nonce)

    async def test_a_token_with_another_nonce_is_refused(self, provider, oidc):
        token, nonce = await issue_id_token(provider, oidc)
        _, other_pending = await oidc.authorization_request()
        assert other_pending["nonce"] != nonce
        with pytest.raises(OIDCError, match="nonce"):
            await oidc.verify_id_token(token, nonce=other_pending["nonce"])

    async def test_an_expired_token_is_refused(self, provider, oidc):
        token, nonce = await issue_id_token(provider, oidc)
        exp = parts(token)[1]["exp"]
        # Within the clock-skew leeway it is still good; at its end it is not.
        assert (await oidc.verify_id_token(token, nonce=nonce, now=exp + oidc.leeway - 1))["exp"] == exp
        with pytest.raises(OIDCError, match="expired"):
            await oidc.verify_id_token(token, nonce=nonce, now=exp + oidc.leeway)

    async def test_a_token_the_provider_issued_already_expired_is_refused(self):
        """A provider whose tokens live minus five minutes: its genuine tokens fail on the real clock."""
        with oidc_provider(max_age=timedelta(minutes=-5)) as stale:
            client_id, secret = stale.register_client(NOT_REACHED)
            client = OIDCClient(OIDCSettings(stale.issuer, client_id, secret), redirect_uri=NOT_REACHED)
            try:
                token, nonce = await issue_id_token(stale, client)
                with pytest.raises(OIDCError, match="expired"):
                    await client.verify_id_token(token, nonce=nonce)
            finally:
                await client.aclose()

    async def test_a_token_from_another_issuer_is_refused(self, provider, oidc):
        with oidc_provider() as elsewhere:
            client = OIDCClient(
                OIDCSettings(elsewhere.issuer, *elsewhere.register_client(NOT_REACHED)), redirect_uri=NOT_REACHED
            )
            try:
                token, nonce = await issue_id_token(elsewhere, client)
            finally:
                await client.aclose()
        with pytest.raises(OIDCError, match="signature does not verify"):
            await oidc.verify_id_token(token, nonce=nonce)

    async def test_an_authorization_code_is_good_once(self, provider, oidc):
        url, pending = await oidc.authorization_request()
        provider.set_user("idp-once", email="idp-once@staff.example.com", email_verified=True)
        async with httpx.AsyncClient(follow_redirects=False) as http:
            answer = await http.post(url, data={"sub": "idp-once"})
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        token = await oidc.fetch_id_token(code=code, verifier=pending["verifier"])
        assert (await oidc.verify_id_token(token, nonce=pending["nonce"]))["sub"] == "idp-once"
        with pytest.raises(OIDCError, match=r"the provider refused the code \(invalid_grant\)"):
            await oidc.fetch_id_token(code=code, verifier=pending["verifier"])
