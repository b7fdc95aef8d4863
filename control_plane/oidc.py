"""Staff sign-in with OpenID Connect: authorization code with PKCE, state and nonce (authlib),
ID tokens verified against the issuer's JWKS with joserfc.

The provider's discovery document and key set are fetched once and cached; an unknown ``kid``
refreshes the key set once (the provider rotated its keys).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
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
            resp = await self._http.get(url)
            resp.raise_for_status()
            meta = resp.json()
            if meta.get("issuer", "").rstrip("/") != self.settings.issuer.rstrip("/"):
                raise OIDCError("the discovery document names another issuer")
            self._metadata = meta
        return self._metadata

    async def key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            resp = await self._http.get((await self.metadata())["jwks_uri"])
            resp.raise_for_status()
            self._keys = KeySet.import_key_set(resp.json())
        return self._keys

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
        """Exchange the code and return the ID token's verified claims."""
        if not pending or not secrets.compare_digest(state or "", pending.get("state", "")):
            raise OIDCError("state does not match the sign-in this browser started")
        meta = await self.metadata()
        async with self._client() as client:
            token = await client.fetch_token(
                meta["token_endpoint"], code=code, code_verifier=pending["verifier"], grant_type="authorization_code"
            )
        id_token = token.get("id_token")
        if not id_token:
            raise OIDCError("the provider returned no ID token")
        return await self.verify_id_token(id_token, nonce=pending["nonce"])

    async def verify_id_token(self, id_token: str, *, nonce: str, now: int | None = None) -> dict[str, Any]:
        """Signature (issuer's JWKS), issuer, audience, expiry and nonce; raises :class:`OIDCError`."""
        meta = await self.metadata()
        algs = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        algs = [a for a in algs if a != "none"]
        try:
            try:
                decoded = jwt.decode(id_token, await self.key_set(), algorithms=algs)
            except (JoseError, ValueError):
                decoded = jwt.decode(id_token, await self.key_set(refresh=True), algorithms=algs)
        except (JoseError, ValueError) as exc:
            raise OIDCError(f"the ID token's signature does not verify ({type(exc).__name__})") from None
        registry = JWTClaimsRegistry(
            now=now if now is not None else int(time.time()),
            leeway=self.leeway,
            iss={"essential": True, "value": meta["issuer"]},
            aud={"essential": True, "value": self.settings.client_id},
            exp={"essential": True},
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
