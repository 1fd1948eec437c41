#!/usr/bin/env python3
"""A cm protocol client written from docs/PROTOCOL.md alone, with aioquic and cbor2.

    cm_client.py HOST ADDRESS PORT CA [CERT KEY]

Connects to the agent for HOST, says hello, and prints the welcome and the
first snapshot (and one update, applied) as JSON on standard output. Without
CERT and KEY it connects without a client certificate, which the agent must
refuse. Exit status: 0 subscribed, 2 refused or failed, with the reason on
standard error.
"""

import asyncio
import json
import ssl
import struct
import sys

import cbor2
from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, StreamDataReceived


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer = b""
        self.messages = asyncio.Queue()

    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived):
            self.buffer += event.data
            while len(self.buffer) >= 4:
                (length,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) < 4 + length:
                    break
                body, self.buffer = self.buffer[4 : 4 + length], self.buffer[4 + length :]
                self.messages.put_nowait(cbor2.loads(body))
        elif isinstance(event, ConnectionTerminated):
            self.messages.put_nowait({"type": "closed", "code": event.error_code, "reason": event.reason_phrase})


def frame(message):
    body = cbor2.dumps(message)
    return struct.pack(">I", len(body)) + body


def apply(state, update):
    if update["base_seq"] != state["seq"]:
        raise ValueError(f"update for {update['base_seq']} but state is {state['seq']}")
    for key in ("cpu", "memory", "gpus", "drives", "filesystems", "backups", "collectors", "host", "kernel", "agent_version"):
        if key in update and (update[key] is not None or key in ("cpu", "memory", "backups")):
            state[key] = update[key]
    present = update.get("services_present")
    if present is False:
        state["services"] = None
    elif present is True:
        state["services"] = []
    if state.get("services") is not None:
        removed = set(update.get("services_removed") or [])
        by_name = {s["name"]: s for s in state["services"] if s["name"] not in removed}
        for s in update.get("services") or []:
            by_name[s["name"]] = s
        state["services"] = list(by_name.values())
    for key in ("seq", "timestamp_ms", "uptime_seconds"):
        state[key] = update[key]
    return state


async def main(host, address, port, ca, cert=None, key=None):
    config = QuicConfiguration(is_client=True, alpn_protocols=["cm/1"], server_name=host)
    config.load_verify_locations(ca)
    config.verify_mode = ssl.CERT_REQUIRED
    if cert:
        config.load_cert_chain(cert, key)
    async with connect(address, port, configuration=config, create_protocol=Client) as client:
        stream = client._quic.get_next_available_stream_id()
        hello = {"type": "hello", "major": 1, "minor": 0, "role": "dashboard", "subscribe": True}
        client._quic.send_stream_data(stream, frame(hello))
        client.transmit()
        first = await asyncio.wait_for(client.messages.get(), 5)
        if first.get("type") != "welcome":
            print(f"not welcomed: {first}", file=sys.stderr)
            return 2
        snapshot = await asyncio.wait_for(client.messages.get(), 5)
        if snapshot.get("type") != "snapshot":
            print(f"expected a snapshot, got {snapshot.get('type')}", file=sys.stderr)
            return 2
        update = await asyncio.wait_for(client.messages.get(), 5)
        state = apply(dict(snapshot), update) if update.get("type") == "update" else None
        print(json.dumps({"welcome": first, "snapshot": snapshot, "after_update": state}, default=str))
        return 0


if __name__ == "__main__":
    if len(sys.argv) not in (5, 7):
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    try:
        sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])))
    except Exception as e:  # a refused handshake surfaces as a closed connection or timeout
        print(f"failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
