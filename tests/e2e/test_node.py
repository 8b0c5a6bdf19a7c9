"""The node process: status, single instance per directory, signals, and
what survives a restart."""
import os
import signal
import subprocess

import helpers
from helpers import BIN, Pki, make_csr, sp_env


def _count(v):
    return len(v) if isinstance(v, list) else v


def test_status_json(node):
    st = node.cli_json("status")
    for k in ("name", "version", "pid", "uptime_s", "dir", "cas", "tokens"):
        assert k in st, f"status has no {k}: {st}"
    assert st["name"] == "test"
    assert isinstance(st["version"], str) and st["version"]
    assert st["pid"] == node.pid
    assert isinstance(st["uptime_s"], (int, float)) and 0 <= st["uptime_s"] < 600
    assert os.path.realpath(st["dir"]) == os.path.realpath(node.dir)
    assert _count(st["cas"]) == 0 and _count(st["tokens"]) == 0
    node.cli("token", "create", "t1", "--pin", "12345678")
    assert _count(node.cli_json("status")["tokens"]) == 1


def test_status_human(node):
    r = node.cli("status")
    assert "test" in r.stdout and str(node.pid) in r.stdout, r.stdout


def test_second_run_refused(node):
    p = subprocess.run([BIN, "run", str(node.dir)], capture_output=True,
                       text=True, env=sp_env(), timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1, f"second run: exit {p.returncode}\n{p.stderr}"
    assert "already running" in p.stderr, p.stderr
    assert helpers.sanitizer_report(p.stderr) is None, p.stderr
    # The first node is unharmed.
    assert node.cli_json("status")["pid"] == node.pid


def test_sigint_clean_exit(node):
    node.stop(signal.SIGINT)
    node.start()
    assert node.cli_json("status")["pid"] == node.pid


def test_run_without_init(tmp_path):
    p = subprocess.run([BIN, "run", str(tmp_path / "nothing")],
                       capture_output=True, text=True, env=sp_env(),
                       timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip()


def test_restart_keeps_state(fresh_pki):
    pki, node = fresh_pki, fresh_pki.node
    node.cli("profile", "create", "SHORT", "--from", "TLS_SERVER",
             "--set", "validity_days=10")
    keep = pki.issue(make_csr(dns=["keep.example"])[1])
    gone = pki.issue(make_csr(dns=["gone.example"])[1])
    held = pki.issue(make_csr(dns=["held.example"])[1], profile="SHORT")
    node.cli("cert", "revoke", "--ca", "sub", "--serial", gone.serial,
             "--reason", "superseded")
    node.cli("cert", "revoke", "--ca", "sub", "--serial", held.serial,
             "--reason", "certificateHold")
    crl = node.cli_json("crl", "create", "--ca", "sub")
    before = {
        "cas": node.cli_json("ca", "list"),
        "certs": node.cli_json("cert", "list"),
        "profiles": node.cli_json("profile", "list"),
        "tokens": node.cli_json("token", "list"),
        "audit": node.cli_json("audit", "verify"),
        "crl": node.cli("crl", "get", "--ca", "sub", "--der").stdout_bytes,
    }
    old_pid = node.pid

    node.restart()
    assert node.pid != old_pid
    assert node.cli_json("status")["pid"] == node.pid
    assert sorted(node.cli_json("ca", "list"), key=lambda c: c["name"]) == \
        sorted(before["cas"], key=lambda c: c["name"])
    assert sorted(node.cli_json("cert", "list"), key=lambda c: c["serial"]) == \
        sorted(before["certs"], key=lambda c: c["serial"])
    # (The order of the list may change; the content may not.)
    assert sorted(node.cli_json("profile", "list"), key=lambda p: p["name"]) \
        == sorted(before["profiles"], key=lambda p: p["name"])
    assert node.cli_json("profile", "show", "SHORT")["settings"]["validity_days"] == 10
    assert node.cli("crl", "get", "--ca", "sub", "--der").stdout_bytes == before["crl"]
    st = {c["serial"]: c for c in node.cli_json("cert", "list")}
    assert st[keep.serial]["status"] == "active"
    assert st[gone.serial]["status"] == "revoked"
    assert st[gone.serial]["reason"] == "superseded"
    assert st[held.serial]["reason"] == "certificateHold"
    assert node.cli_json("cert", "show", "--ca", "sub", "--serial",
                         keep.serial)["pem"].strip() == keep.pem.strip()
    a = node.cli_json("audit", "verify")
    assert a["intact"] is True and a["rows"] >= before["audit"]["rows"]
    # The token comes back inactive: keys listed, nothing signs.
    toks = node.cli_json("token", "list")
    t = [t for t in toks if t["name"] == Pki.TOKEN][0]
    assert t["active"] is False
    assert {k["alias"] for k in t["keys"]} == {"root-key", "sub-key"}
    before_n = node.cert_count()
    node.fail("cert", "issue", "--ca", "sub", "--profile", "TLS_SERVER",
              "--csr", pki.csr_file(make_csr(dns=["x.example"])[1]),
              match=r"token|active")
    assert node.cert_count() == before_n

    node.fail("crl", "create", "--ca", "sub", match=r"token|active")

    node.cli("token", "activate", Pki.TOKEN, "--pin", Pki.PIN)
    # The next CRL continues the numbering.
    assert node.cli_json("crl", "create", "--ca", "sub")["number"] > crl["number"]
    again = pki.issue(make_csr(dns=["again.example"])[1])
    assert helpers.openssl_verify(pki.root_pem, pki.sub_pem,
                                  again.path).returncode == 0
    # Unhold after restart still works.
    node.cli("cert", "unrevoke", "--ca", "sub", "--serial", held.serial)
    assert node.cli_json("cert", "show", "--ca", "sub", "--serial",
                         held.serial)["status"] == "active"


def test_sigkill_then_restart(fresh_pki):
    """A node killed outright restarts on the same directory (no stale lock
    or socket blocks it) with its state and audit chain intact."""
    pki, node = fresh_pki, fresh_pki.node
    c = pki.issue(make_csr(dns=["killed.example"])[1])
    before = node.cli_json("cert", "list")
    node.proc.kill()
    node.proc.wait(timeout=30)
    node.proc = None
    node.start()
    assert node.cli_json("cert", "list") == before
    assert node.cli_json("cert", "list", "--status", "reserved") == []
    assert node.cli_json("audit", "verify")["intact"] is True
    node.cli("token", "activate", Pki.TOKEN, "--pin", Pki.PIN)
    d = pki.issue(make_csr(dns=["after-kill.example"])[1])
    assert d.serial != c.serial
