"""Where outbound calls configured by merchants or staff may go (alert webhooks now, merchant webhooks
later): public addresses only. A URL whose host is, or resolves to, a loopback, link-local, private,
reserved or multicast address is refused — otherwise a webhook URL is a path for requests into the
host's own network (cloud metadata at 169.254.169.254, databases on 127.0.0.1). Checked when the URL
is saved and again before each call (a name can resolve elsewhere later).
``BPO_ALLOW_PRIVATE_WEBHOOKS=1`` lifts the rule (tests, receivers on a private network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from control_plane.errors import FieldError, InvalidInput


async def private_destination(url: str) -> str | None:
    """Why ``url`` may not be called (a sentence), or ``None`` when every address of its host is public."""
    host = urlsplit(url).hostname
    if not host:
        return "The URL names no host."
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return f"The host {host} cannot be resolved."
        addresses = {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}
    for address in sorted(addresses, key=str):
        mapped = getattr(address, "ipv4_mapped", None) or address
        if not mapped.is_global or mapped.is_multicast:
            return (
                f"The host {host} is {address}, a loopback, link-local or private address: "
                "outbound calls go to public addresses only."
            )
    return None


async def check_destination(url: str, *, allow_private: bool, field: str = "url") -> None:
    """Raise 422 on ``field`` when ``url`` may not be called."""
    if allow_private:
        return
    reason = await private_destination(url)
    if reason:
        raise InvalidInput([FieldError(field, reason)])
