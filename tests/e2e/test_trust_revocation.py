"""Revocation cannot be switched off by accident (hostile test finding F3):
removing a trust anchor keeps its CRL unless the operator drops it, so
trusting the anchor again keeps a revoked peer out."""
from test_peer import joined, pair, write  # noqa: F401 (fixtures)


def _mgmt_fp(p):
    rows = p.va.cli_json("trust", "list")
    return [r["fingerprint"] for r in rows
            if "Test Management CA" in r["subject"]][0]


def test_trust_remove_and_readd_keeps_a_revoked_peer_out(joined):
    p = joined
    assert p.ping_json()["ok"] == 1
    serial = p.ca.cli_json("keybinding", "show", "ca-tls")["serial"]
    p.ca.cli("cert", "revoke", "--ca", "Mgmt", "--serial", serial,
             "--reason", "keyCompromise")
    p.ca.cli("crl", "create", "--ca", "Mgmt")
    crl = write(p.work / "f3.crl", p.ca.cli("crl", "get", "--ca",
                                            "Mgmt").stdout)
    assert p.va.cli_json("trust", "crl", crl)["status"] == "installed"
    p.ca.cli("peer", "reset", "va")
    p.ca.fail("peer", "ping", "va", match=r"failed|refused")

    # The reproduction: remove the anchor, trust it again.
    got = p.va.cli_json("trust", "remove", _mgmt_fp(p))
    assert got["removed"] and got["crl"] == "kept", got
    assert len(p.va.cli_json("trust", "crls")) == 1
    p.va.cli("trust", "add", "--cert", p.mgmt)
    p.ca.cli("peer", "reset", "va")
    err = p.ca.fail("peer", "ping", "va", match=r"failed|refused")
    # Refused at the handshake, not answered (the port may contain 200).
    assert "revoked" in err or "HTTP" not in err, err

    # Dropping the CRL is explicit, and the reply says so.
    got = p.va.cli_json("trust", "remove", _mgmt_fp(p), "--drop-crl")
    assert got["crl"] == "removed", got
    assert p.va.cli_json("trust", "crls") == []
    p.va.cli("trust", "add", "--cert", p.mgmt)
    # The operator's choice: without the CRL the revoked peer gets in.
    p.ca.cli("peer", "reset", "va")
    assert p.ping_json()["ok"] == 1
    # Without an anchor's CRL there is nothing to say: "none".
    got = p.va.cli_json("trust", "remove", _mgmt_fp(p))
    assert got["crl"] == "none", got
    p.va.cli("trust", "add", "--cert", p.mgmt)
