#!/usr/bin/env python3
"""A UDP relay that delays every datagram, both ways: this kernel has no netem.

    udp_delay_relay.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS

Each client address gets its own upstream socket, so replies find their way
back. Datagrams keep their order.
"""

import asyncio
import sys


class Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay, client):
        self.relay, self.client = relay, client

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, _addr):
        self.relay.later(lambda: self.relay.transport.sendto(data, self.client))


class Relay(asyncio.DatagramProtocol):
    def __init__(self, target, delay):
        self.target, self.delay, self.upstreams = target, delay, {}

    def connection_made(self, transport):
        self.transport = transport

    def later(self, action):
        asyncio.get_running_loop().call_later(self.delay, action)

    def datagram_received(self, data, client):
        up = self.upstreams.get(client)
        if up is None:
            up = Upstream(self, client)
            self.upstreams[client] = up
            asyncio.ensure_future(
                asyncio.get_running_loop().create_datagram_endpoint(lambda: up, remote_addr=self.target)
            )
        self.later(lambda: up.transport.sendto(data) if hasattr(up, "transport") else None)


async def main(lhost, lport, thost, tport, delay_ms):
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: Relay((thost, int(tport)), float(delay_ms) / 1000), local_addr=(lhost, int(lport))
    )
    print("relaying", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    asyncio.run(main(*sys.argv[1:]))
