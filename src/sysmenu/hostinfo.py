"""The machine's own networks: which addresses count as on a local network."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ipv4_networks() -> list[Network]:
    networks: list[Network] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                address = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)[20:24]
                mask = fcntl.ioctl(sock.fileno(), _SIOCGIFNETMASK, request)[20:24]
            except OSError:  # no IPv4 address on this interface
                continue
            text = f"{socket.inet_ntoa(address)}/{socket.inet_ntoa(mask)}"
            networks.append(ipaddress.ip_network(text, strict=False))
    return networks


def _ipv6_networks() -> list[Network]:
    networks: list[Network] = []
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return networks
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        hexaddr, prefix = fields[0], int(fields[2], 16)
        text = ":".join(hexaddr[i : i + 4] for i in range(0, 32, 4))
        networks.append(ipaddress.ip_network(f"{text}/{prefix}", strict=False))
    return networks


def local_networks() -> list[Network]:
    """The networks of this machine's interfaces (IPv4 and IPv6)."""
    try:
        return _ipv4_networks() + _ipv6_networks()
    except OSError:
        return []


def lan_address(address: str) -> tuple[bool, str | None]:
    """Whether `address` is on a local network (private, loopback or link-local), and
    the network of one of this machine's interfaces that holds it (None if none does)."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False, None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    is_lan = ip.is_private or ip.is_loopback or ip.is_link_local
    for network in local_networks():
        if ip.version == network.version and ip in network:
            return is_lan, str(network)
    return is_lan, None
