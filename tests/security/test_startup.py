"""Item 7: a fatal start-up error (the port is taken) ends the process, non-zero, within seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import redis_url_or_skip

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model_sync", ["redis", "polling"])
def test_port_taken_exits_non_zero_within_seconds(tmp_path: Path, model_sync: str) -> None:
    router = f"router_settings:\n  redis_url: {redis_url_or_skip()}\n" if model_sync == "redis" else ""
    config = tmp_path / "config.yaml"
    config.write_text(f"model_list: []\ngeneral_settings:\n  master_key: sk-x\n  store_model_in_db: true\n{router}")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    env = {
        **os.environ,
        "LITELLM_SALT_KEY": "salt-for-the-start-up-test",
        "DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
    }
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxyllm", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            pytest.fail(f"the proxy did not exit with its port taken:\n{output}")
    finally:
        holder.close()
    assert proc.returncode not in (0, None)
    assert "address already in use" in output
    assert time.monotonic() - started < 15
