"""Where a webhook may be sent: the host allowlist and the address policy, checked when a contact is
added and again, after DNS resolution, just before each post (anjian.notifications.channels.webhook).

The policy, in one place:
- The URL's host (and port) must be on the allowlist, setting `webhook_hosts` ([webhook] hosts,
  ANJIAN_WEBHOOK_HOSTS); by default the group-robot services of WeCom, DingTalk and Feishu. An entry
  `host` permits that host on the default port of the URL's scheme (80 or 443); `host:port` on that port.
- Every address the host resolves to must be public. Loopback, private (RFC 1918, fc00::/7, CGNAT
  100.64/10), link-local, unspecified, multicast, reserved and other non-global addresses are refused,
  as are the addresses hidden inside IPv4-mapped, 6to4 and NAT64 IPv6 addresses. If ANY address is
  refused the post is refused: a name that resolves to one good and one bad address is not half-trusted.
- The one exception is the administrator's explicit choice: an entry that is an IP literal WITH a port
  (`127.0.0.1:18081`, `[fd00::8]:8080`) permits exactly that address and port (a robot inside the
  government network; the tests' loopback robot). An internal IP literal without a port is refused as a
  setting, so that the exception is always this narrow.
- Cloud metadata services (169.254.169.254, fd00:ec2::254, Alibaba Cloud's 100.100.100.200, Azure's
  168.63.129.16, metadata.google.internal …) and every link-local address are never allowed, not even
  as an explicit entry: they hand out the server's credentials.

The post then connects to the vetted address itself, never to the name again (so DNS rebinding cannot
swap it); see the webhook channel.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from anjian.i18n import N_, _

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], list[str]]  # (host, port) -> its addresses, as text; raises OSError

GROUP_ROBOTS = ("qyapi.weixin.qq.com", "oapi.dingtalk.com", "open.feishu.cn")  # WeCom, DingTalk, Feishu
DEFAULT_PORTS = {"http": 80, "https": 443}
SETTING = N_("the setting [webhook] hosts or ANJIAN_WEBHOOK_HOSTS")

METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
    "metadata.tencentyun.com", "metadata.azure.com",
})
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.0.23",  # AWS, Huawei, Oracle, OpenStack; AWS ECS; Tencent
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure (a public address: the list, not the class, catches it)
    "fd00:ec2::254", "fd00:ec2::23",  # AWS over IPv6
))
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598): inside someone's network
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(ValueError):
    """A webhook the policy refuses; the message says why, in Chinese, without the reply of any server."""


class Unresolved(OSError):
    """The host name of a webhook did not resolve (worth trying again later)."""


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart as it will be sent."""

    url: str
    scheme: str
    host: str  # lower case, without a trailing dot or IPv6 brackets
    port: int
    path: str  # the request target: path and query

    @property
    def literal(self) -> Address | None:
        return _ip(self.host)

    @property
    def where(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def target(url: str) -> Target:
    """Take an http(s) URL apart; ValueError (its message in English, as the syntax checks have it) for
    one that cannot go on the wire, Refused for one with a user name or password."""
    parts = urlsplit(url)
    port = parts.port  # raises ValueError on a port out of range
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"webhook {url!r} is not an http(s) URL")
    if not all(" " < ch < "\x7f" for ch in url):
        raise ValueError(f"webhook {url!r} has spaces, control or non-ASCII characters (percent-encode them)")
    if "@" in parts.netloc:  # http://qyapi.weixin.qq.com@127.0.0.1/ reads as one host and goes to another
        raise Refused(_("the URL holds a user name or password (the part before @)"))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, parts.hostname.rstrip("."), port or DEFAULT_PORTS[parts.scheme], path)


def _ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _embedded(addr: Address) -> Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, the old "compatible" ::a.b.c.d)."""
    if not isinstance(addr, ipaddress.IPv6Address) or addr.is_loopback or addr.is_unspecified:
        return None
    for inner in (addr.ipv4_mapped, addr.sixtofour):
        if inner is not None:
            return inner
    if addr in NAT64 or int(addr) >> 32 == 0:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def forbidden(addr: Address) -> str | None:
    """Why a webhook may not be posted to this address, in Chinese (None: it is a public address)."""
    if addr in METADATA_ADDRESSES:
        return _("a cloud metadata address")
    inner = _embedded(addr)
    if inner is not None:
        return forbidden(inner)  # it is that IPv4 address which is reached
    reasons = [
        (addr.is_loopback, N_("a loopback address")),
        (addr.is_link_local, N_("a link-local address")),
        (addr.is_unspecified, N_("an unspecified address")),
        (addr.is_multicast, N_("a multicast address")),
        (addr in SHARED or (addr.is_private and not addr.is_reserved), N_("a private (internal) address")),
        (addr.is_reserved, N_("a reserved address")),
        (not addr.is_global, N_("a non-public address")),
    ]
    return next((_(why) for hit, why in reasons if hit), None)


def never(addr: Address) -> bool:
    """Addresses no entry can permit: metadata services and everything link-local."""
    inner = _embedded(addr) or addr
    return addr in METADATA_ADDRESSES or inner in METADATA_ADDRESSES or addr.is_link_local or inner.is_link_local


def _entry(text: str) -> tuple[str, int | None]:
    """An allowlist entry as (host, port or None); ValueError in Chinese for one that is not."""
    raw = text.strip().lower()
    if not raw or not raw.isascii() or not all(ch.isalnum() or ch in ".-_:[]" for ch in raw):
        raise ValueError(_("{text!r} is not a host name or host:port (without http:// and a path)").format(text=text))
    if raw.startswith("["):
        host, bracket, rest = raw[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if not bracket or (rest and port_text is None) or _ip(host) is None:
            raise ValueError(_("{text!r} is not a host name or host:port").format(text=text))
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    else:
        host, port_text = raw, None
    host = host.rstrip(".")
    literal = _ip(host)
    if literal is None and not (host and all(ch.isalnum() or ch in ".-_" for ch in host) and host.isascii()):
        raise ValueError(_("{text!r} is not a host name or host:port").format(text=text))
    if port_text is None:
        return (str(literal) if literal else host), None
    if not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(_("the port of {text!r} is not a number 1–65535").format(text=text))
    return (str(literal) if literal else host), int(port_text)


@dataclass(frozen=True)
class Allowlist:
    """The hosts webhooks may go to, and the internal address:port pairs the administrator chose."""

    hosts: frozenset[tuple[str, int | None]] = frozenset()
    pinned: frozenset[tuple[Address, int]] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """The allowlist from the entries of the setting; ValueError (in Chinese) naming a bad entry."""
        hosts, pinned = set(), set()
        for text in entries:
            host, port = _entry(text)
            if host in METADATA_NAMES:
                raise ValueError(_("{text!r} is a cloud metadata service and can never be a webhook host").format(text=text))
            literal = _ip(host)
            if literal is not None and never(literal):
                raise ValueError(_("{text!r} is {what} and can never be a webhook host").format(text=text, what=forbidden(literal)))
            if literal is not None and forbidden(literal):
                if port is None:
                    raise ValueError(_("{text!r} is {what}: allowed only with its port written out (such as 10.1.2.3:8080 or "
                                     "[fd00::8]:8080)").format(text=text, what=forbidden(literal)))
                pinned.add((literal, port))
            hosts.add((host, port))
        return cls(frozenset(hosts), frozenset(pinned))

    def names(self, t: Target) -> bool:
        """Whether the URL's host and port are on the list."""
        host = str(t.literal) if t.literal else t.host
        return (host, t.port) in self.hosts or (t.port == DEFAULT_PORTS[t.scheme] and (host, None) in self.hosts)

    def admits(self, addr: Address, port: int) -> bool:
        """Whether a post may connect to this address and port."""
        if never(addr):
            return False
        return forbidden(addr) is None or (addr, port) in self.pinned or (_embedded(addr), port) in self.pinned


def check_entries(value: object) -> tuple[str, ...]:
    """The setting `webhook_hosts` checked: a list of host names or host:port entries (ValueError if not)."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(_('must be a list of host names, such as ["qyapi.weixin.qq.com", "10.1.2.3:8080"]'))
    entries = tuple(v.strip() for v in value if v.strip())
    Allowlist.parse(entries)
    return entries


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system's resolver gives for a host."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Policy:
    """The allowlist and the resolver (ours to inject: tests give names the addresses they need)."""

    allowlist: Allowlist = field(default_factory=lambda: Allowlist.parse(GROUP_ROBOTS))
    resolve: Resolve = system_resolve

    @classmethod
    def of(cls, entries: Iterable[str], resolve: Resolve = system_resolve) -> Policy:
        return cls(Allowlist.parse(entries), resolve)

    def prefetched(self, urls: Iterable[str]) -> Policy:
        """This policy with the names of these URLs already resolved (by a contact import, before it takes
        the database's write lock); a name that did not resolve stays unresolved."""
        answers: dict[tuple[str, int], list[str] | None] = {}
        for url in urls:
            try:
                t = target(url)
            except ValueError:
                continue
            if t.literal is None and self.allowlist.names(t) and (t.host, t.port) not in answers:
                try:
                    answers[(t.host, t.port)] = self.resolve(t.host, t.port)
                except (OSError, UnicodeError):
                    answers[(t.host, t.port)] = None

        def recall(host: str, port: int) -> list[str]:
            found = answers.get((host, port))
            if found is None:
                raise Unresolved(host)
            return found

        return Policy(self.allowlist, recall)

    def vet(self, url: str, *, unresolved_ok: bool = False) -> tuple[Target, list[Address]]:
        """The URL taken apart and the addresses a post to it may connect to (all of them vetted); Refused
        with the reason otherwise. A name that does not resolve raises Unresolved, or (with `unresolved_ok`,
        when a contact is added: the send checks again) gives no address."""
        t = target(url)
        if t.literal is not None and not self.allowlist.admits(t.literal, t.port):
            raise Refused(_("webhook host {host} is {what}").format(host=t.host, what=forbidden(t.literal)))
        if not self.allowlist.names(t):
            raise Refused(_("webhook host {host} is not on the list of allowed webhook hosts ({setting})").format(
                host=t.where, setting=_(SETTING)))
        if t.host in METADATA_NAMES:
            raise Refused(_("webhook host {host} is a cloud metadata service").format(host=t.host))
        if t.literal is not None:
            addresses = [t.literal]
        else:
            try:
                addresses = [ipaddress.ip_address(a.split("%")[0]) for a in self.resolve(t.host, t.port)]
            except (OSError, UnicodeError):
                if unresolved_ok:
                    return t, []
                raise Unresolved(_("cannot resolve the webhook host {host}").format(host=t.host)) from None
            if not addresses and not unresolved_ok:
                raise Unresolved(_("cannot resolve the webhook host {host}").format(host=t.host))
        for addr in addresses:
            if not self.allowlist.admits(addr, t.port):
                raise Refused(_("webhook host {host} resolves to {what}").format(host=t.host, what=forbidden(addr)))
        return t, addresses
