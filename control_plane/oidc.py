"""Staff sign-in with OpenID Connect: authorization code with PKCE, state and nonce (authlib),
ID tokens verified against the issuer's JWKS with joserfc.

The provider's discovery document and key set are fetched once and cached; an unknown ``kid``
refreshes the key set once (the provider rotated its keys).
"""

from __future__ import annotations

import secrets
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError

with warnings.catch_warnings():
    # authlib 1.9 warns at import when it falls back from the new "httpx2" package to httpx, which is
    # the HTTP client of this stack (and what it runs on either way).
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from control_plane.settings import OIDCSettings


class OIDCError(Exception):
    """The provider's answer or token failed a check; the message says which."""


@dataclass
class OIDCClient:
    settings: OIDCSettings
    redirect_uri: str
    leeway: int = 60
    _metadata: dict[str, Any] | None = None
    _keys: KeySet | None = None
    _http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.settings.issuer.rstrip('/')}/.well-known/openid-configuration"
            meta = await self._get_json(url)
            if meta.get("issuer", "").rstrip("/") != self.settings.issuer.rstrip("/"):
                raise OIDCError("the discovery document names another issuer")
            self._metadata = meta
        return self._metadata

    async def key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            self._keys = KeySet.import_key_set(await self._get_json((await self.metadata())["jwks_uri"]))
        return self._keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            resp = await self._http.get(url)
            resp.raise_for_status()
            return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OIDCError(f"the identity provider could not be reached ({type(exc).__name__})") from None

    def _client(self, **kwargs: Any) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            scope=self.settings.scope,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post" if self.settings.client_secret else "none",
            **kwargs,
        )

    async def authorization_request(self) -> tuple[str, dict[str, str]]:
        """``(url, pending)``: where to send the browser, and what the session keeps until callback."""
        meta = await self.metadata()
        state, nonce = generate_token(32), generate_token(32)
        verifier = secrets.token_urlsafe(64)
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
            )
        return url, {"state": state, "nonce": nonce, "verifier": verifier}

    async def complete(self, *, code: str, state: str, pending: dict[str, str]) -> dict[str, Any]:
        """Check the callback's state, exchange the code and return the ID token's verified claims."""
        if not pending or not secrets.compare_digest(state or "", pending.get("state", "")):
            raise OIDCError("state does not match the sign-in this browser started")
        id_token = await self.fetch_id_token(code=code, verifier=pending["verifier"])
        return await self.verify_id_token(id_token, nonce=pending["nonce"])

    async def fetch_id_token(self, *, code: str, verifier: str) -> str:
        """Exchange an authorization code (with its PKCE verifier) for the raw, unverified ID token."""
        meta = await self.metadata()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    meta["token_endpoint"], code=code, code_verifier=verifier, grant_type="authorization_code"
                )
        except OAuthError as exc:
            raise OIDCError(f"the provider refused the code ({exc.error})") from None
        except httpx.HTTPError as exc:
            raise OIDCError(f"the identity provider could not be reached ({type(exc).__name__})") from None
        id_token = token.get("id_token")
        if not id_token:
            raise OIDCError("the provider returned no ID token")
        return id_token

    async def verify_id_token(self, id_token: str, *, nonce: str, now: int | None = None) -> dict[str, Any]:
        """Signature (issuer's JWKS), issuer, audience, expiry and nonce; raises :class:`OIDCError`."""
        meta = await self.metadata()
        algs = [a for a in meta.get("id_token_signing_alg_values_supported") or ["RS256"] if a != "none"]
        try:
            try:
                decoded = jwt.decode(id_token, await self.key_set(), algorithms=algs)
            except InvalidKeyIdError:
                # A key id we have not seen: the provider may have rotated its keys, fetch them once more.
                decoded = jwt.decode(id_token, await self.key_set(refresh=True), algorithms=algs)
        except (JoseError, ValueError) as exc:
            raise OIDCError(f"the ID token's signature does not verify ({type(exc).__name__})") from None
        registry = JWTClaimsRegistry(
            now=now if now is not None else int(time.time()),
            leeway=self.leeway,
            iss={"essential": True, "value": meta["issuer"]},
            aud={"essential": True, "value": self.settings.client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise OIDCError(f"the ID token was refused: {exc.error}: {exc.description or ''}".strip()) from None
        return dict(decoded.claims)

    async def aclose(self) -> None:
        await self._http.aclose()
