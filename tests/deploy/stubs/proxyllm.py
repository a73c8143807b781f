"""proxyllm: `--help`, `migrate`, and the server (runs until SIGTERM).

STUB_MIGRATE=absent (default: --help lists no migrate) | ok | fail
"""

from __future__ import annotations

import os
import signal
import sys
import time

from common import event, record

ENV_KEYS = (
    "TAILNET_PROXY_URL",
    "TAILSCALE_SOCKET",
    "TAILSCALE_STATUS_FILE",
    "TAILSCALE_AUTH_KEY",
    "PORT",
)
args = sys.argv[1:]
migrate = os.environ.get("STUB_MIGRATE", "absent")

if args == ["--help"]:
    commands = "[{serve,migrate}]" if migrate != "absent" else ""
    print(f"usage: proxyllm [-h] [--config CONFIG] [--port PORT] {commands}")
    print("A fast, LiteLLM-compatible LLM gateway; --config: a LiteLLM-style config.yaml")
    sys.exit(0)

if args and args[0] == "migrate":
    event("proxyllm migrate")
    record("migrate.json", {"argv": args, "env": {k: os.environ.get(k) for k in ENV_KEYS}})
    sys.exit(1 if migrate == "fail" else 0)


def stop(signum: int, _frame: object) -> None:
    record("proxy.stopped", {"signal": signal.Signals(signum).name})
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
event("proxyllm serve")
record(
    "proxy.json",
    {
        "pid": os.getpid(),
        "argv": args,
        "env": {k: os.environ.get(k) for k in ENV_KEYS if k in os.environ},
        "umask": os.umask(0o022),
    },
)
while True:
    time.sleep(0.05)
