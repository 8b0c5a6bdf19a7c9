"""The audit trail: a hash chain that survives restarts and notices a
changed or deleted row."""
import re
import sqlite3

import helpers
from helpers import make_csr


def _db(node):
    return node.dir / "sallyport.db"


def _rows(node):
    con = sqlite3.connect(_db(node))
    try:
        return con.execute("SELECT seq, event FROM audit ORDER BY seq").fetchall()
    finally:
        con.close()


def _sql(node, stmt):
    con = sqlite3.connect(_db(node))
    try:
        n = con.execute(stmt).rowcount
        con.commit()
        assert n == 1, f"{stmt}: {n} rows changed"
    finally:
        con.close()


def _some_operations(pki):
    node = pki.node
    c = pki.issue(make_csr(dns=["audited.example"])[1])
    node.cli("cert", "revoke", "--ca", "sub", "--serial", c.serial,
             "--reason", "superseded")
    node.cli("crl", "create", "--ca", "sub")
    node.cli("profile", "create", "AUD", "--from", "ENDUSER",
             "--set", "validity_days=5")
    return c


def test_verify_and_list(fresh_pki):
    pki, node = fresh_pki, fresh_pki.node
    v0 = node.cli_json("audit", "verify")
    assert set(v0) >= {"intact", "rows", "bad_row", "head"}
    assert v0["intact"] is True and v0["rows"] >= 5	# token, 2 keys, 2 CAs
    assert not v0["bad_row"]
    assert re.fullmatch(r"[0-9a-f]{64}", v0["head"]), v0
    c = _some_operations(pki)
    v1 = node.cli_json("audit", "verify")
    assert v1["intact"] is True and v1["rows"] >= v0["rows"] + 4
    assert v1["head"] != v0["head"]
    r = node.cli("audit", "verify")
    assert r.returncode == 0 and str(v1["rows"]) in r.stdout, r.stdout

    rows = node.cli_json("audit", "list")
    assert len(rows) == v1["rows"]
    for a in rows:
        assert {"seq", "event", "actor", "details"} <= set(a), a
        assert isinstance(a["event"], str) and a["event"]
        assert isinstance(a["actor"], str) and a["actor"]
    seqs = [a["seq"] for a in rows]
    assert sorted(seqs) == list(range(1, len(rows) + 1)), seqs
    # The revocation is in the trail with what was revoked.
    text = node.cli("audit", "list", "--json").stdout
    assert c.serial in text
    two = node.cli_json("audit", "list", "--limit", "2")
    assert len(two) == 2
    assert {a["seq"] for a in two} == {max(seqs), max(seqs) - 1}
    r = node.cli("audit", "list", "--limit", "3")
    assert r.returncode == 0 and r.stdout.strip()
    # What the database holds is what verify counted.
    assert len(_rows(node)) == v1["rows"]


def test_tampered_row_detected(fresh_pki):
    pki, node = fresh_pki, fresh_pki.node
    _some_operations(pki)
    assert node.cli_json("audit", "verify")["intact"] is True
    node.stop()
    _sql(node, "UPDATE audit SET details='{}' WHERE seq=2")
    node.start()
    msg = node.fail("audit", "verify", match=r"\b2\b")
    assert re.search(r"audit|row|chain", msg, re.I), msg
    r = node.cli("audit", "verify", "--json", check=False)
    assert r.returncode == 1
    if r.stdout.strip():
        js = helpers.parse_json(r)
        assert js["intact"] is False and js["bad_row"] == 2


def test_deleted_last_row_detected(fresh_pki):
    pki, node = fresh_pki, fresh_pki.node
    _some_operations(pki)
    v = node.cli_json("audit", "verify")
    assert v["intact"] is True
    node.stop()
    last = _rows(node)[-1][0]
    _sql(node, f"DELETE FROM audit WHERE seq={last}")
    node.start()
    node.fail("audit", "verify", match=r"audit|row|chain|head")


def test_deleted_middle_row_detected(fresh_pki):
    node = fresh_pki.node
    node.stop()
    _sql(node, "DELETE FROM audit WHERE seq=3")
    node.start()
    node.fail("audit", "verify", match=r"\b3\b|\b4\b")


def test_chain_continues_across_restart(fresh_pki):
    pki, node = fresh_pki, fresh_pki.node
    v0 = node.cli_json("audit", "verify")
    node.restart()
    node.cli("token", "activate", pki.TOKEN, "--pin", pki.PIN)
    _some_operations(pki)
    v1 = node.cli_json("audit", "verify")
    assert v1["intact"] is True and v1["rows"] > v0["rows"]
