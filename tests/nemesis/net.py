"""Network namespaces for the nemesis: one per node, plus a switch namespace.

Each node's namespace has two links:

- ``eth0`` (mesh): a veth pair whose other end, ``p<i>``, sits in the switch
  namespace on one of a few Linux bridges. Which bridge a port is on decides who
  can talk to whom: all on ``br0`` is a healed mesh, two bridges are two halves,
  a port set down is an isolated node. So the faults are cut one link at a time,
  with no packet filter (this machine has neither iptables nor nft, and no netem).
- ``ctl`` (control): a veth pair straight to the root namespace, never cut, on
  which the node's local API listens, so the harness talks to it without entering
  the namespace and a partition never hides a node from the checker.

Everything is named after a per-run tag, so parallel runs never collide, and
``close()`` deletes the namespaces, which deletes every veth with them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field

BRIDGES = 3  # br0 is the healed mesh; br1, br2 hold the other sides of a partition
MESH_PORT = 7170
LOCAL_PORT = 7171


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
    return result


def _used_second_octets() -> set[int]:
    out = ip("-4", "-o", "addr").stdout
    used = set()
    for line in out.splitlines():
        for word in line.split():
            if "/" in word and word.count(".") == 3:
                addr = ipaddress.ip_interface(word).ip
                if str(addr).startswith("10."):
                    used.add(int(str(addr).split(".")[1]))
    return used


@dataclass
class Fabric:
    """The namespaces and links of one run; ``groups`` is which bridge each node is on."""

    count: int
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    octet: int = 0
    groups: list[int] = field(default_factory=list)
    down: set[int] = field(default_factory=set)
    bridged: dict[int, int] = field(default_factory=dict)  # bridge node -> the far side's bridge
    guests: int = 0

    @property
    def switch(self) -> str:
        return f"amp{self.tag}sw"

    def ns(self, i: int) -> str:
        return f"amp{self.tag}n{i}"

    def mesh_ip(self, i: int) -> str:
        return f"10.{self.octet}.250.{i + 1}"

    def guest_ns(self, k: int) -> str:
        """Hostile peer ``k``'s namespace (``tests.nemesis.hostile``), on ``br0``."""
        return f"amp{self.tag}g{k}"

    def guest_ip(self, k: int) -> str:
        return f"10.{self.octet}.250.{200 + k}"

    def ctl_ip(self, i: int) -> str:
        """The node's end of its control link (the harness's end is .1)."""
        return f"10.{self.octet}.{i}.2"

    def __post_init__(self) -> None:
        free = sorted(set(range(100, 200)) - _used_second_octets())
        if not free:
            raise RuntimeError("no free 10.x.0.0/16 for the control links")
        self.octet = free[secrets.randbelow(len(free))]

    def create(self) -> None:
        ip("netns", "add", self.switch)
        ip("link", "set", "lo", "up", ns=self.switch)
        for b in range(BRIDGES):
            ip("link", "add", f"br{b}", "type", "bridge", ns=self.switch)
            ip("link", "set", f"br{b}", "up", ns=self.switch)
        for i in range(self.count):
            self._add_node(i)
        self.groups = [0] * self.count

    def _add_node(self, i: int) -> None:
        ns, tmp = self.ns(i), f"am{self.tag}"
        ip("netns", "add", ns)
        ip("link", "set", "lo", "up", ns=ns)
        # mesh link: eth0 in the node, p<i> on br0 in the switch
        ip("link", "add", f"{tmp}a{i}", "type", "veth", "peer", "name", f"{tmp}b{i}")
        ip("link", "set", f"{tmp}a{i}", "netns", ns, "name", "eth0")
        ip("link", "set", f"{tmp}b{i}", "netns", self.switch, "name", f"p{i}")
        ip("addr", "add", f"{self.mesh_ip(i)}/24", "dev", "eth0", ns=ns)
        ip("link", "set", "eth0", "up", ns=ns)
        ip("link", "set", f"p{i}", "master", "br0", ns=self.switch)
        ip("link", "set", f"p{i}", "up", ns=self.switch)
        # control link: ctl in the node, am<tag>c<i> in the root namespace
        ip("link", "add", f"{tmp}c{i}", "type", "veth", "peer", "name", f"{tmp}d{i}")
        ip("link", "set", f"{tmp}d{i}", "netns", ns, "name", "ctl")
        ip("addr", "add", f"10.{self.octet}.{i}.1/30", "dev", f"{tmp}c{i}")
        ip("link", "set", f"{tmp}c{i}", "up")
        ip("addr", "add", f"{self.ctl_ip(i)}/30", "dev", "ctl", ns=ns)
        ip("link", "set", "ctl", "up", ns=ns)

    def add_guests(self, count: int) -> None:
        """A namespace for each hostile peer (each its own host and address, as the
        nodes' per-address limits would see them), with one port on ``br0``, never
        moved: the hostile phase runs with the mesh healed."""
        for k in range(count):
            ns, tmp = self.guest_ns(k), f"am{self.tag}"
            ip("netns", "add", ns)
            self.guests = k + 1
            ip("link", "set", "lo", "up", ns=ns)
            ip("link", "add", f"{tmp}g{k}", "type", "veth", "peer", "name", f"{tmp}h{k}")
            ip("link", "set", f"{tmp}g{k}", "netns", ns, "name", "eth0")
            ip("link", "set", f"{tmp}h{k}", "netns", self.switch, "name", f"g{k}")
            ip("addr", "add", f"{self.guest_ip(k)}/24", "dev", "eth0", ns=ns)
            ip("link", "set", "eth0", "up", ns=ns)
            ip("link", "set", f"g{k}", "master", "br0", ns=self.switch)
            ip("link", "set", f"g{k}", "up", ns=self.switch)

    # -- faults -------------------------------------------------------------

    def place(self, i: int, group: int) -> None:
        """Move node ``i``'s port to bridge ``group``."""
        ip("link", "set", f"p{i}", "master", f"br{group}", ns=self.switch)
        self.groups[i] = group

    def cut(self, i: int) -> None:
        ip("link", "set", f"p{i}", "down", ns=self.switch)
        self.down.add(i)

    def mend(self, i: int) -> None:
        ip("link", "set", f"p{i}", "up", ns=self.switch)
        self.down.discard(i)

    def bridge(self, i: int, far: int) -> None:
        """Node ``i`` also hears bridge ``far``: a second mesh link, ``eth1``, whose
        other end is a port on ``far``, and a route through it to each node there.
        Its address stays the one on ``eth0`` (Linux answers for a local address on
        any link), so the nodes on both sides reach it where they are, and it is
        the only way from one side to the other."""
        ns, tmp = self.ns(i), f"am{self.tag}"
        ip("link", "add", f"{tmp}e{i}", "type", "veth", "peer", "name", f"{tmp}f{i}")
        ip("link", "set", f"{tmp}e{i}", "netns", ns, "name", "eth1")
        ip("link", "set", f"{tmp}f{i}", "netns", self.switch, "name", f"q{i}")
        self.bridged[i] = far
        ip("link", "set", f"q{i}", "master", f"br{far}", ns=self.switch)
        ip("link", "set", f"q{i}", "up", ns=self.switch)
        ip("link", "set", "eth1", "up", ns=ns)
        for j in range(self.count):
            if j != i and self.groups[j] == far:
                ip("route", "add", f"{self.mesh_ip(j)}/32", "dev", "eth1", ns=ns)

    def unbridge(self, i: int) -> None:
        """Take node ``i``'s second link away (its routes go with it)."""
        far = self.bridged.pop(i, None)
        ip("link", "del", f"q{i}", ns=self.switch, check=False)
        for j in range(self.count):  # forget the second link's MAC, or they wait for the ARP to go stale
            if j != i and self.groups[j] == far:
                ip("neigh", "flush", "dev", "eth0", ns=self.ns(j), check=False)

    def heal(self) -> None:
        for i in list(self.bridged):
            self.unbridge(i)
        for i in range(self.count):
            if self.groups[i] != 0:
                self.place(i, 0)
            if i in self.down:
                self.mend(i)

    def close(self) -> None:
        """Delete the namespaces; whatever still runs inside them (a node the run
        could not stop) is killed first, or the namespace would outlive the run."""
        for i in range(self.count):
            for pid in ip("netns", "pids", self.ns(i), check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", self.ns(i), check=False)
        self.remove_guests()
        ip("netns", "del", self.switch, check=False)

    def remove_guests(self) -> None:
        """Delete the hostile peers' namespaces (and so their ports), killing what runs there."""
        for k in range(self.guests):
            for pid in ip("netns", "pids", self.guest_ns(k), check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", self.guest_ns(k), check=False)
        self.guests = 0
