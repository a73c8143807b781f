"""tailscaled: listens on its --socket until SIGTERM.

STUB_TAILSCALED=ok (default) | crash (exit at once) | no-socket (never creates the socket)
STUB_FORWARD_TO=host:port=ip:port  also serve tailscaled's HTTP proxy on its
    --outbound-http-proxy-listen address, mapping that tailnet host to a loopback address
    (tests.deploy.forward_proxy; PYTHONPATH must reach the repository)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

from common import append, event, record

args = sys.argv[1:]
append("tailscaled.argv", args)
event("tailscaled")
record("tailscaled.pid", {"pid": os.getpid(), "ppid": os.getppid()})
mode = os.environ.get("STUB_TAILSCALED", "ok")
if mode == "crash":
    sys.exit(3)


def option(name: str) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith(f"--{name}="))


async def main() -> None:
    path = option("socket")
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: (received.append(s.name), stopped.set()))
    server = socket.socket(socket.AF_UNIX)
    if mode != "no-socket":
        server.bind(path)
        server.listen()
    forward = os.environ.get("STUB_FORWARD_TO")
    proxy = None
    if forward:
        from tests.deploy.forward_proxy import ForwardProxy

        tailnet_host, _, target = forward.partition("=")
        ip, _, port = target.rpartition(":")
        listen_port = int(option("outbound-http-proxy-listen").rpartition(":")[2])
        proxy = ForwardProxy({tailnet_host: (ip, int(port))}, port=listen_port)
        await proxy.start()
    await stopped.wait()
    if proxy is not None:
        await proxy.stop()
        record("forwarded.json", [[s.method, s.target, s.path] for s in proxy.seen])
    record("tailscaled.stopped", {"signal": received[0]})


asyncio.run(main())
