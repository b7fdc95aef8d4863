"""Identity rules: invitations and reset links, password rules, sessions that end, revocable tokens,
sign-in throttling and equal work for unknown accounts, the audit entries of each."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from compliance.models import AuditEntry
from compliance.service import SystemActor
from control_plane import identity, service, signin
from control_plane.auth import hash_secret
from control_plane.database import utcnow
from control_plane.errors import InvalidInput, NotFound
from control_plane.models import BearerToken, SignInThrottle, User, UserLink

PASSWORD = "correct horse battery staple 42"


@pytest.fixture
async def clear_throttle(dbs):
    """Every test client signs in from one address ("testclient"): start and leave with no failures counted."""
    async with dbs.control_transaction() as session:
        await session.execute(sa.delete(SignInThrottle))
    yield
    async with dbs.control_transaction() as session:
        await session.execute(sa.delete(SignInThrottle))


def email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.com"


async def new_user(dbs, role="account_manager", tenant=None, password: str | None = PASSWORD) -> str:
    address = email()
    async with dbs.control_transaction() as session:
        await service.create_user(session, SystemActor("tests"), {"email": address, "role": role, "tenant": tenant})
        if password:
            await service.set_password(session, address, password)
    return address


async def csrf(client) -> dict[str, str]:
    await client.get("/login")
    return {"x-csrftoken": client.cookies.get("bpo_csrf", "")}


async def login(client, address: str, password: str = PASSWORD):
    return await client.post(
        "/login",
        data={"email": address, "password": password, "next": "/"},
        headers=await csrf(client),
        follow_redirects=False,
    )


async def audit_actions(dbs, target: str) -> list[str]:
    async with dbs.control_session() as session:
        rows = await session.scalars(sa.select(AuditEntry.action).where(AuditEntry.target == target))
        return list(rows)


class TestInvitations:
    async def test_an_account_manager_invites_a_merchant_and_the_link_sets_a_password(self, client, dbs, make_tenant):
        t = await make_tenant()
        manager = {"Authorization": f"Bearer {await self._token(dbs, 'account_manager')}"}
        address = email()
        resp = await client.post(
            "/api/v1/users", json={"email": address, "role": "merchant_admin", "tenant": t["slug"]}, headers=manager
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert (body["status"], body["role"], body["tenant"]) == ("invited", "merchant_admin", t["slug"])
        token = body["invitation_url"].rsplit("/", 1)[1]
        expires = body["invitation_expires_at"]
        hours = (utcnow() - utcnow().fromisoformat(expires)).total_seconds() / -3600
        assert 71.9 < hours <= 72
        async with dbs.control_session() as session:  # stored hashed: the link itself is nowhere
            link = await session.scalar(sa.select(UserLink).where(UserLink.token_hash == hash_secret(token)))
            assert link is not None and link.purpose == "invitation"
            assert await session.scalar(sa.select(sa.func.count()).where(UserLink.token_hash == token)) == 0

        page = await client.get(f"/invitations/{token}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for label in (">Password</label>", ">Confirm password</label>", ">Set password</button>"):
            assert label in page.text
        headers = await csrf(client)
        short = await client.post(
            f"/invitations/{token}", data={"password": "short", "confirm": "short"}, headers=headers
        )
        assert short.status_code == 422 and "at least 12 characters" in short.text
        common = await client.post(
            f"/invitations/{token}", data={"password": "qwerty123456", "confirm": "qwerty123456"}, headers=headers
        )
        assert common.status_code == 422 and "commonly used passwords" in common.text
        itself = await client.post(
            f"/invitations/{token}", data={"password": address, "confirm": address}, headers=headers
        )
        assert itself.status_code == 422 and "e-mail address" in itself.text
        differ = await client.post(
            f"/invitations/{token}", data={"password": PASSWORD, "confirm": PASSWORD + "x"}, headers=headers
        )
        assert differ.status_code == 422 and "The two passwords differ" in differ.text
        done = await client.post(
            f"/invitations/{token}",
            data={"password": PASSWORD, "confirm": PASSWORD},
            headers=headers,
            follow_redirects=False,
        )
        assert done.status_code in (302, 303) and done.headers["location"].startswith("/login")
        again = await client.get(f"/invitations/{token}", headers={"accept": "text/html"})
        assert again.status_code == 404 and "not valid any more" in again.text
        assert again.headers["content-type"].startswith("text/html")
        signed = await login(client, address)
        assert signed.status_code in (302, 303), signed.text
        assert (await client.get("/api/v1/me")).json()["tenant"] == t["slug"]
        assert {"user.created", "user.invited", "user.password_set", "auth.login"} <= set(
            await audit_actions(dbs, f"user:{address}")
        )

    async def test_who_may_invite_whom(self, client, dbs, make_tenant):
        a, b = await make_tenant(), await make_tenant()
        manager = {"Authorization": f"Bearer {await self._token(dbs, 'account_manager')}"}
        staff = await client.post(
            "/api/v1/users", json={"email": email(), "role": "compliance_officer"}, headers=manager
        )
        assert staff.status_code == 403
        merchant = {"Authorization": f"Bearer {await self._token(dbs, 'merchant_admin', a['slug'])}"}
        own = await client.post(
            "/api/v1/users", json={"email": email(), "role": "merchant_viewer", "tenant": a["slug"]}, headers=merchant
        )
        assert own.status_code == 201
        other = await client.post(
            "/api/v1/users", json={"email": email(), "role": "merchant_viewer", "tenant": b["slug"]}, headers=merchant
        )
        assert other.status_code == 403
        listed = await client.get("/api/v1/users", headers=merchant)
        assert {u["tenant"] for u in listed.json()} == {a["slug"]}
        admin = {"Authorization": f"Bearer {await self._token(dbs, 'platform_admin')}"}
        assert (
            await client.post("/api/v1/users", json={"email": email(), "role": "compliance_officer"}, headers=admin)
        ).status_code == 201

    async def test_a_resent_invitation_replaces_the_old_link_and_links_expire(self, dbs):
        async with dbs.control_transaction() as session:
            user, first = await identity.invite_user(
                session, SystemActor("tests"), {"email": email(), "role": "account_manager"}, public_url="http://x"
            )
            second = await identity.issue_link(session, SystemActor("tests"), user, "invitation", public_url="http://x")
            with pytest.raises(NotFound):
                await identity.open_link(session, first.url.rsplit("/", 1)[1], "invitation")
            token = second.url.rsplit("/", 1)[1]
            assert (await identity.open_link(session, token, "invitation")).id == user.id
            with pytest.raises(NotFound):
                await identity.open_link(session, token, "invitation", now=utcnow() + timedelta(hours=72, seconds=1))
            with pytest.raises(NotFound):  # an invitation is not a reset link
                await identity.open_link(session, token, "reset")

    def test_password_rules(self):
        assert identity.password_problems(PASSWORD, "a@b.c") == []
        assert "at least 12" in identity.password_problems("abc", "a@b.c")[0]
        assert identity.password_problems("1q2w3e4r5t6y", "a@b.c")  # common
        assert identity.password_problems("someone.long@example.com", "someone.long@example.com")
        with pytest.raises(InvalidInput) as caught:
            identity.check_new_password("x", "y", "a@b.c")
        assert {e.field for e in caught.value.errors} == {"password", "confirm"}

    @pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
    def test_the_cli_prints_the_invitation_link_last(self, settings):
        from click.testing import CliRunner

        from control_plane.cli import main

        address = email()
        env = {"BPO_DATA_DIR": str(settings.data_dir), "BPO_DATABASE_URL": "", "BPO_CELL_URLS": ""}
        result = CliRunner().invoke(
            main, ["users", "create", "--email", address, "--role", "compliance_officer"], env=env
        )
        assert result.exit_code == 0, result.output
        last = result.output.strip().splitlines()[-1]
        assert re.fullmatch(r"http://127\.0\.0\.1:8000/invitations/[\w-]{40,}", last), last

    @staticmethod
    async def _token(dbs, role, tenant=None) -> str:
        async with dbs.control_transaction() as session:
            _, secret = await service.issue_token(session, SystemActor("tests"), role=role, tenant=tenant)
        return secret


@pytest.mark.usefixtures("clear_throttle")
class TestSessions:
    async def test_sign_out_ends_the_session_and_a_copied_cookie_is_refused(self, client, dbs):
        address = await new_user(dbs)
        assert (await login(client, address)).status_code in (302, 303)
        copied = client.cookies.get("bpo_session")
        assert (await client.get("/api/v1/me")).status_code == 200
        out = await client.post("/logout", headers=await csrf(client), follow_redirects=False)
        assert out.status_code in (302, 303)
        client.cookies.set("bpo_session", copied)
        assert (await client.get("/api/v1/me")).status_code == 401
        assert "auth.logout" in await audit_actions(dbs, f"user:{address}")

    async def test_deactivation_ends_sessions_and_tokens_at_once(self, client, dbs):
        address = await new_user(dbs)
        assert (await login(client, address)).status_code in (302, 303)
        async with dbs.control_transaction() as session:
            user = await session.scalar(sa.select(User).where(User.email == address))
            _, secret = await service.issue_token(
                session, SystemActor("tests"), role="account_manager", tenant=None, user_id=user.id
            )
        bearer = {"Authorization": f"Bearer {secret}"}
        assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200
        admin = {"Authorization": f"Bearer {await TestInvitations._token(dbs, 'platform_admin')}"}
        done = await client.post(f"/api/v1/users/{user.id}/deactivate", headers=admin)
        assert done.status_code == 200 and done.json()["status"] == "deactivated"
        assert (await client.get("/api/v1/me")).status_code == 401
        assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
        assert (await login(client, address)).status_code == 401
        assert "user.deactivated" in await audit_actions(dbs, f"user:{address}")

    async def test_a_password_change_ends_the_other_sessions(self, client, dbs, app):
        from litestar.testing import AsyncTestClient

        address = await new_user(dbs)
        async with AsyncTestClient(app=app) as other:
            assert (await login(other, address)).status_code in (302, 303)
            assert (await other.get("/api/v1/me")).status_code == 200
            assert (await login(client, address)).status_code in (302, 303)
            new = PASSWORD + " renewed"
            changed = await client.post(
                "/account/password",
                data={"current": PASSWORD, "password": new, "confirm": new},
                headers=await csrf(client),
                follow_redirects=False,
            )
            assert changed.status_code in (302, 303), changed.text
            assert (await other.get("/api/v1/me")).status_code == 401
            assert (await client.get("/api/v1/me")).status_code == 200  # the one who changed it stays in

    async def test_an_offboarded_tenant_ends_its_merchants_sessions_and_tokens(self, client, dbs, make_tenant):
        t = await make_tenant(onboard=True)
        address = await new_user(dbs, "merchant_admin", t["slug"])
        assert (await login(client, address)).status_code in (302, 303)
        token = {"Authorization": f"Bearer {await TestInvitations._token(dbs, 'merchant_viewer', t['slug'])}"}
        staff = {"Authorization": f"Bearer {await TestInvitations._token(dbs, 'account_manager')}"}
        assert (await client.get(f"/api/v1/tenants/{t['slug']}", headers=token)).status_code == 200
        suspended = await client.post(
            f"/api/v1/tenants/{t['slug']}/status", json={"to": "suspended", "reason": "unpaid"}, headers=staff
        )
        assert suspended.status_code == 200, suspended.text
        # Suspended: reads stay, changes are refused.
        assert (await client.get(f"/api/v1/tenants/{t['slug']}", headers=token)).status_code == 200
        assert (await client.get(f"/tenants/{t['slug']}")).status_code == 200
        form = await client.post(
            f"/tenants/{t['slug']}/api-keys", data={"scopes": "sla:read"}, headers=await csrf(client)
        )
        assert form.status_code == 403
        off = await client.post(
            f"/api/v1/tenants/{t['slug']}/status", json={"to": "offboarded", "reason": "ended"}, headers=staff
        )
        assert off.status_code == 200, off.text
        assert (await client.get(f"/api/v1/tenants/{t['slug']}", headers=token)).status_code == 401
        assert (await client.get("/api/v1/me")).status_code == 401


class TestTokens:
    async def test_tokens_are_listed_and_revoked_at_once(self, client, dbs):
        secret = await TestInvitations._token(dbs, "compliance_officer")
        bearer = {"Authorization": f"Bearer {secret}"}
        assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200
        admin = {"Authorization": f"Bearer {await TestInvitations._token(dbs, 'platform_admin')}"}
        listed = {t["prefix"]: t for t in (await client.get("/api/v1/tokens", headers=admin)).json()}
        prefix = "_".join(secret.split("_")[:3])
        assert listed[prefix]["revoked_at"] is None and listed[prefix]["role"] == "compliance_officer"
        assert (await client.delete(f"/api/v1/tokens/{listed[prefix]['id']}", headers=bearer)).status_code == 403
        done = await client.delete(f"/api/v1/tokens/{listed[prefix]['id']}", headers=admin)
        assert done.status_code == 200 and done.json()["revoked_at"]
        assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
        assert "token.revoked" in await audit_actions(dbs, f"token:{prefix}")

    @pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
    def test_bpoctl_token_revoke(self, settings):
        from click.testing import CliRunner

        from control_plane.cli import main

        env = {"BPO_DATA_DIR": str(settings.data_dir), "BPO_DATABASE_URL": "", "BPO_CELL_URLS": ""}
        runner = CliRunner()
        secret = runner.invoke(main, ["token", "issue", "--role", "account_manager"], env=env).output.strip()
        prefix = "_".join(secret.split("_")[:3])
        [line] = [x for x in runner.invoke(main, ["token", "list"], env=env).output.splitlines() if prefix in x]
        result = runner.invoke(main, ["token", "revoke", line.split()[0]], env=env)
        assert result.exit_code == 0 and result.output.strip() == f"revoked {prefix}"
        [line] = [x for x in runner.invoke(main, ["token", "list"], env=env).output.splitlines() if prefix in x]
        assert line.endswith("revoked")


@pytest.mark.usefixtures("clear_throttle")
class TestThrottling:
    async def test_the_sixth_attempt_is_429_even_with_the_right_password(self, client, dbs):
        address = await new_user(dbs)
        for _ in range(5):
            assert (await login(client, address, "wrong password!!")).status_code == 401
        locked = await login(client, address)
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) in range(25, 31)
        assert "Too many failed sign-ins" in locked.text
        actions = await audit_actions(dbs, f"user:{address}")
        assert actions.count("auth.login_failed") == 5 and "auth.locked" in actions
        assert "auth.login_throttled" in actions and "auth.login" not in actions

    async def test_the_lock_grows_and_a_success_clears_the_account(self, dbs):
        address = await new_user(dbs)
        now = utcnow()
        async with dbs.control_transaction() as session:
            for _ in range(5):
                out = await signin.sign_in_with_password(session, address, "nope", address="10.0.0.1", now=now)
                assert out.user is None and out.retry_after is None
            locked = await signin.sign_in_with_password(session, address, PASSWORD, address="10.0.0.2", now=now)
            assert locked.retry_after == 30 and locked.user is None
            later = now + timedelta(seconds=31)
            await signin.sign_in_with_password(session, address, "nope", address="10.0.0.3", now=later)
            again = await signin.sign_in_with_password(session, address, PASSWORD, address="10.0.0.4", now=later)
            assert again.retry_after == 60  # doubled
            free = later + timedelta(seconds=61)
            ok = await signin.sign_in_with_password(session, address, PASSWORD, address="10.0.0.5", now=free)
            assert ok.user is not None and ok.user.email == address
            assert await session.get(SignInThrottle, f"account:{address}") is None

    async def test_one_address_trying_many_accounts_is_throttled(self, dbs):
        now = utcnow()
        target = await new_user(dbs)
        async with dbs.control_transaction() as session:
            for _ in range(5):
                await signin.sign_in_with_password(session, email(), "guess", address="192.0.2.9", now=now)
            out = await signin.sign_in_with_password(session, target, PASSWORD, address="192.0.2.9", now=now)
            assert out.retry_after == 30
            elsewhere = await signin.sign_in_with_password(session, target, PASSWORD, address="192.0.2.10", now=now)
            assert elsewhere.user is not None

    async def test_an_unknown_account_costs_one_argon2_verification_like_a_known_one(self, dbs, monkeypatch):
        calls: list[str] = []

        class Counting(PasswordHasher):  # the real argon2, counted
            def verify(self, hash_: str, password: str) -> bool:
                calls.append(hash_)
                return super().verify(hash_, password)

        known = await new_user(dbs)
        invited = await new_user(dbs, password=None)
        monkeypatch.setattr(identity, "hasher", Counting())
        async with dbs.control_transaction() as session:
            await signin.sign_in_with_password(session, known, "wrong", address="198.51.100.1")
            await signin.sign_in_with_password(session, email(), "wrong", address="198.51.100.2")
            await signin.sign_in_with_password(session, invited, "wrong", address="198.51.100.3")
        assert len(calls) == 3 and all(h.startswith("$argon2id$") for h in calls)

    async def test_a_totp_user_needs_the_code(self, client, dbs, keyring):
        import pyotp

        from control_plane.identity import set_totp_secret

        address = await new_user(dbs)
        secret = pyotp.random_base32()
        async with dbs.control_transaction() as session:
            user = await session.scalar(sa.select(User).where(User.email == address))
            await set_totp_secret(session, keyring, user, secret)
        first = await login(client, address)
        assert first.status_code == 200 and ">Code</label>" in first.text
        assert (await client.get("/api/v1/me")).status_code == 401  # no session before the code
        headers = await csrf(client)
        wrong = await client.post("/login", data={"code": "000000", "next": "/"}, headers=headers)
        assert wrong.status_code == 401
        right = await client.post(
            "/login", data={"code": pyotp.TOTP(secret).now(), "next": "/"}, headers=headers, follow_redirects=False
        )
        assert right.status_code in (302, 303)
        assert (await client.get("/api/v1/me")).json()["actor"] == f"user:{address}"


async def test_bearer_tokens_carry_no_user_unless_issued_to_one(dbs):
    async with dbs.control_transaction() as session:
        token, _ = await service.issue_token(session, SystemActor("tests"), role="account_manager", tenant=None)
        assert (await session.get(BearerToken, token.id)).user_id is None


@pytest.mark.usefixtures("clear_throttle")
async def test_staff_must_enrol_a_second_factor_when_a_platform_admin_requires_it(client, dbs):
    import pyotp

    from control_plane.auth import Principal

    manager = await new_user(dbs)
    second_staff = await new_user(dbs, "compliance_officer")
    admin = Principal("user", "admin@bpo.test", "platform_admin")
    async with dbs.control_transaction() as session:
        await signin.set_totp_required_for_staff(session, admin, True)
    try:
        first = await login(client, manager)
        assert first.status_code in (302, 303) and first.headers["location"] == "/sign-in/two-factor"
        assert (await client.get("/api/v1/me")).status_code == 401  # no session until enrolled
        page = await client.get("/sign-in/two-factor")
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
        headers = await csrf(client)
        wrong = await client.post("/sign-in/two-factor", data={"code": "000000"}, headers=headers)
        assert wrong.status_code == 422 and "not right" in wrong.text
        right = await client.post(
            "/sign-in/two-factor", data={"code": pyotp.TOTP(secret).now()}, headers=headers, follow_redirects=False
        )
        assert right.status_code in (302, 303)
        assert (await client.get("/api/v1/me")).json()["actor"] == f"user:{manager}"
        assert "user.totp_enrolled" in await audit_actions(dbs, f"user:{manager}")
        client.cookies.clear()
        # Enrolled: from now on the code is asked at every sign-in.
        again = await login(client, manager)
        assert again.status_code == 200 and ">Code</label>" in again.text
        other = await login(client, second_staff)
        assert other.headers.get("location") == "/sign-in/two-factor"
    finally:
        async with dbs.control_transaction() as session:
            await signin.set_totp_required_for_staff(session, admin, False)


@pytest.mark.usefixtures("clear_throttle")
async def test_anyone_turns_on_a_second_factor_under_my_account(client, dbs):
    import pyotp

    address = await new_user(dbs, "compliance_officer")
    assert (await login(client, address)).status_code in (302, 303)
    page = await client.get("/account")
    assert page.status_code == 200 and "Turn on two-factor sign-in" in page.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    headers = await csrf(client)
    wrong = await client.post("/account/two-factor", data={"action": "enable", "code": "123"}, headers=headers)
    assert wrong.status_code == 422
    on = await client.post(
        "/account/two-factor",
        data={"action": "enable", "code": pyotp.TOTP(secret).now()},
        headers=headers,
        follow_redirects=False,
    )
    assert on.status_code in (302, 303)
    assert "you will be asked for a code" in (await client.get("/account")).text
    await client.post("/logout", headers=headers)
    again = await login(client, address)
    assert again.status_code == 200 and ">Code</label>" in again.text


@pytest.mark.usefixtures("clear_throttle")
async def test_a_refused_sign_in_is_an_html_page_and_absurd_input_is_only_wrong(client, dbs):
    refused = await login(client, "nobody@example.com", "whatever it is")
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("text/html")
    assert "Email or password is wrong." in refused.text and 'value="nobody@example.com"' in refused.text
    huge = await login(client, "x" * 10_000 + "@example.com", "y" * 10_000)
    assert huge.status_code == 401
