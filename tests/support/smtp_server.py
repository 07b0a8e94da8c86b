"""A real SMTP server for Careline's tests (aiosmtpd), on loopback.

Every message it accepts is saved in DIR as NNNN.eml (the bytes as they
came) and NNNN.json (the envelope, whether the session was TLS and who
logged in); every DATA it answers, accepted or not, adds a line to
DIR/attempts. DIR/ready appears once it listens.

    python smtp_server.py --port 2525 --dir /tmp/out
        [--cert server.pem --key server.key [--implicit-tls]]
        [--auth USER:PASSWORD] [--reply "451 4.3.0 Try later" ...]

--cert/--key: STARTTLS offered and required before anything else (or,
with --implicit-tls, TLS from the first byte). --auth: AUTH PLAIN/LOGIN
required (over TLS when there is TLS). --reply: the answers to the first
DATA commands, in order; after them every message is accepted.
"""

import argparse
import asyncio
import json
import os
import pathlib
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth")
    parser.add_argument("--reply", action="append", default=[])
    args = parser.parse_args()
    out = pathlib.Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    replies = list(args.reply)
    lock = threading.Lock()
    saved = [0]

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            with lock:
                reply = replies.pop(0) if replies else "250 2.0.0 Message accepted"
                with open(out / "attempts", "a") as f:
                    f.write(reply + "\n")
                if not reply.startswith("250"):
                    return reply
                saved[0] += 1
                name = "%04d" % saved[0]
            content = envelope.original_content or envelope.content
            if isinstance(content, str):
                content = content.encode("utf-8", "surrogateescape")
            (out / (name + ".eml")).write_bytes(content)
            login = session.auth_data if session.authenticated else None
            meta = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                # A session over implicit TLS is TLS from its first byte.
                "tls": session.ssl is not None or args.implicit_tls,
                "login": login if isinstance(login, str) else None,
            }
            # Written aside, then renamed: a reader never sees half of it.
            (out / (name + ".tmp")).write_text(json.dumps(meta))
            os.replace(out / (name + ".tmp"), out / (name + ".json"))
            return reply

    kwargs = {}
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.implicit_tls:
            kwargs["ssl_context"] = context
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            # handled=False: aiosmtpd answers (235, or 535 on a failure).
            return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        # aiosmtpd counts only STARTTLS as TLS: over implicit TLS it would
        # never offer AUTH.
        kwargs["auth_require_tls"] = context is not None and not args.implicit_tls
    controller = Controller(
        Handler(),
        hostname=args.host,
        port=args.port,
        decode_data=False,
        ready_timeout=10,
        **kwargs,
    )
    controller.start()
    (out / "ready").write_text(str(os.getpid()))
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
