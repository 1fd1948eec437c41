#!/usr/bin/env python3
"""A mail server and a web server on 127.0.0.1 that write down what they are
sent, for the notification tests (crates/cm-agent/tests/notify.rs).

Every message received is appended to --log as one JSON line:
  {"kind": "smtp", "mail_from", "rcpt_tos", "data"}
  {"kind": "http", "path", "headers", "body"}     (header names lower-case)

SMTP offers AUTH PLAIN and LOGIN without TLS when --user and --password are
given, and accepts mail without it. It refuses any recipient whose address
starts with `unknown` (550), as a server does a user it does not have.
HTTP answers every POST with
--http-status, except a path /status/NNN, which is answered NNN. Once both
listen it prints `listening smtp=PORT http=PORT`; port 0 picks free ones.
Exits 3 when aiosmtpd is missing.
"""

import argparse
import asyncio
import json
import sys
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    print("missing aiosmtpd (pip install aiosmtpd)", flush=True)
    sys.exit(3)

# aiosmtpd logs a warning about its own deprecated session.login_data on every AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)

LOCK = threading.Lock()


def record(path, entry):
    with LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class Mailbox:
    def __init__(self, log):
        self.log = log

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("unknown"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.content
        if isinstance(data, bytes):
            data = data.decode("utf-8", errors="replace")
        record(self.log, {
            "kind": "smtp",
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": data,
        })
        return "250 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        # handled=False: aiosmtpd then answers 535 itself (else it stays silent).
        return AuthResult(success=ok, handled=False)
    return check


def http_handler(log, status):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            record(log, {
                "kind": "http",
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            })
            code = status
            if self.path.startswith("/status/"):
                code = int(self.path.split("/")[2])
            answer = b"ok" if code < 300 else f"refused by the test receiver with {code}".encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    return Handler


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--smtp-port", type=int, default=0)
    p.add_argument("--http-port", type=int, default=0)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--http-status", type=int, default=200)
    args = p.parse_args()

    auth = {}
    if args.user is not None and args.password is not None:
        auth = {"authenticator": authenticator(args.user, args.password), "auth_require_tls": False}
    loop = asyncio.get_running_loop()
    mailbox = Mailbox(args.log)
    smtp = await loop.create_server(
        lambda: SMTP(mailbox, hostname="receiver.test", **auth), "127.0.0.1", args.smtp_port
    )
    web = ThreadingHTTPServer(("127.0.0.1", args.http_port), http_handler(args.log, args.http_status))
    threading.Thread(target=web.serve_forever, daemon=True).start()
    smtp_port = smtp.sockets[0].getsockname()[1]
    print(f"listening smtp={smtp_port} http={web.server_address[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
