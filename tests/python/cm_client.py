#!/usr/bin/env python3
"""A cm protocol client written from docs/PROTOCOL.md alone, with aioquic and cbor2.

    cm_client.py HOST ADDRESS PORT CA [CERT KEY]

Connects to the agent for HOST, says hello, and prints the welcome, the
first snapshot, the state after three patches and the last hour of
`memory.total_bytes` (a history request on a stream of its own) as JSON on
standard output. Without
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
        self.buffers = {}
        self.streams = {}

    def queue(self, stream):
        return self.streams.setdefault(stream, asyncio.Queue())

    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived):
            buffer = self.buffers.get(event.stream_id, b"") + event.data
            while len(buffer) >= 4:
                (length,) = struct.unpack(">I", buffer[:4])
                if len(buffer) < 4 + length:
                    break
                body, buffer = buffer[4 : 4 + length], buffer[4 + length :]
                self.queue(event.stream_id).put_nowait(cbor2.loads(body))
            self.buffers[event.stream_id] = buffer
        elif isinstance(event, ConnectionTerminated):
            closed = {"type": "closed", "code": event.error_code, "reason": event.reason_phrase}
            for queue in list(self.streams.values()) or [self.queue(0)]:
                queue.put_nowait(closed)


def frame(message):
    body = cbor2.dumps(message)
    return struct.pack(">I", len(body)) + body


def merge(target, patch):
    """Applies a patch to a value, by the rules of the protocol document."""
    if isinstance(patch, dict) and patch and all(isinstance(k, int) for k in patch) and isinstance(target, list):
        for index, element in patch.items():
            target[index] = merge(target[index], element)
        return target
    if isinstance(patch, dict) and all(isinstance(k, str) for k in patch) and isinstance(target, dict):
        for key, value in patch.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = merge(target[key], value) if key in target else value
        return target
    return patch


def apply(state, patch):
    if patch["base_seq"] != state["seq"]:
        raise ValueError(f"patch for {patch['base_seq']} but state is {state['seq']}")
    changes = {k: v for k, v in patch.items() if k not in ("type", "base_seq")}
    return merge(state, changes)


async def main(host, address, port, ca, cert=None, key=None):
    config = QuicConfiguration(is_client=True, alpn_protocols=["cm/1"], server_name=host)
    config.load_verify_locations(ca)
    config.verify_mode = ssl.CERT_REQUIRED
    if cert:
        config.load_cert_chain(cert, key)
    async with connect(address, port, configuration=config, create_protocol=Client) as client:
        stream = client._quic.get_next_available_stream_id()
        messages = client.queue(stream)
        hello = {"type": "hello", "major": 1, "minor": 2, "role": "dashboard", "subscribe": True}
        client._quic.send_stream_data(stream, frame(hello))
        client.transmit()
        first = await asyncio.wait_for(messages.get(), 5)
        if first.get("type") != "welcome":
            print(f"not welcomed: {first}", file=sys.stderr)
            return 2
        snapshot = await asyncio.wait_for(messages.get(), 5)
        if snapshot.get("type") != "snapshot":
            print(f"expected a snapshot, got {snapshot.get('type')}", file=sys.stderr)
            return 2
        # Apply a few patches (one arrives at least every 5 s while the host lives).
        state = json.loads(json.dumps(snapshot, default=str))
        patches = 0
        while patches < 3:
            message = await asyncio.wait_for(messages.get(), 12)
            if message.get("type") != "patch":
                print(f"expected a patch, got {message.get('type')}", file=sys.stderr)
                return 2
            state = apply(state, message)
            patches += 1
        # History: one request on a new stream, then chunks and an end.
        history = client._quic.get_next_available_stream_id()
        now_ms = int(state["timestamp_ms"])
        request = {
            "type": "history_request",
            "series": ["memory.total_bytes"],
            "from_ms": now_ms - 3_600_000,
            "to_ms": now_ms + 60_000,
            "resolution": "raw",
        }
        client._quic.send_stream_data(history, frame(request), end_stream=True)
        client.transmit()
        points = []
        while True:
            message = await asyncio.wait_for(client.queue(history).get(), 5)
            if message.get("type") == "history_chunk":
                points += message["points"]
            elif message.get("type") == "history_end":
                end = message
                break
            else:
                print(f"expected history, got {message.get('type')}", file=sys.stderr)
                return 2
        result = {"welcome": first, "snapshot": snapshot, "after_update": state, "patches": patches}
        result["history"] = {"points": points, "end": end}
        print(json.dumps(result, default=str))
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
