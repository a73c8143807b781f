"""tailscale: `up`, `status --json`, `ip -4`.

STUB_UP_EXIT=N       `up` exits with N (default 0)
STUB_UP_SLEEP=S      `up` takes S seconds
STUB_RUNNING_AFTER=N `status` says Running from the Nth call on (default 1; -1 never)
STUB_PENDING_STATE   the BackendState before that (default Starting)
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time

from common import append, bump, event, record

args = sys.argv[1:]
append("tailscale.calls", args)
command = args[1]
event(f"tailscale {command}")

if command == "up":
    key_arg = next(a for a in args if a.startswith("--auth-key="))
    value = key_arg.split("=", 1)[1]
    if value.startswith("file:"):
        path = value[len("file:") :]
        mode = stat.S_IMODE(os.stat(path).st_mode)
        with open(path, encoding="utf-8") as f:
            record("auth-key.seen", {"path": path, "mode": mode, "key": f.read()})
    time.sleep(float(os.environ.get("STUB_UP_SLEEP", "0")))
    sys.exit(int(os.environ.get("STUB_UP_EXIT", "0")))

if command == "status":
    calls = bump("status.count")
    after = int(os.environ.get("STUB_RUNNING_AFTER", "1"))
    running = after >= 0 and calls >= after
    state = "Running" if running else os.environ.get("STUB_PENDING_STATE", "Starting")
    # Indented like tailscale's own output.
    print(
        json.dumps(
            {"Version": "1.104.1", "BackendState": state, "Self": {"TailscaleIPs": ["100.101.102.103"]}}, indent=2
        )
    )
    sys.exit(0)

if command == "ip":
    print("100.101.102.103")
    sys.exit(0)

sys.exit(f"stub tailscale: unexpected command {args!r}")
