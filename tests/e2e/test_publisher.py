"""Publishers (CA side): the outbox the CA commit hook fills, and the
publisher CLI. Delivery to a VA is tested by the lead with the VA lane."""
import time

from helpers import make_csr


def test_outbox_and_cli(fresh_pki):
    pki = fresh_pki
    node = pki.node
    js = node.cli_json("publisher", "add", "va1", "--connector", "vaconn",
                       "--ca", "sub", "--no-crls")
    assert js["name"] == "va1" and js["cas"] == ["sub"]
    # The covered CA's certificate is queued first.
    q = node.cli_json("publisher", "queue", "va1")
    assert [i["kind"] for i in q] == ["ca"] and q[0]["ca"] == "sub"

    a = pki.issue(make_csr(dns=["a.example"])[1])
    node.cli("cert", "revoke", "--ca", "sub", "--serial", a.serial)
    node.cli("crl", "create", "--ca", "sub")
    q = node.cli_json("publisher", "queue", "va1")
    assert [(i["kind"], i["serial"], i["status"]) for i in q[1:]] == [
        ("cert", a.serial, "good"), ("cert", a.serial, "revoked")]
    assert [i["id"] for i in q] == sorted(i["id"] for i in q)

    # An only-revoked publisher for every CA: no good certificate.
    node.cli_json("publisher", "add", "va2", "--connector", "vaconn",
                  "--only-revoked")
    b = pki.issue(make_csr(dns=["b.example"])[1])
    node.cli("cert", "revoke", "--ca", "sub", "--serial", b.serial)
    q2 = node.cli_json("publisher", "queue", "va2")
    assert [i["kind"] for i in q2 if i["kind"] == "ca"] == ["ca", "ca"]
    assert [(i["serial"], i["status"]) for i in q2 if i["kind"] == "cert"] \
        == [(b.serial, "revoked")]

    lst = node.cli_json("publisher", "list")
    assert {p["name"]: p["queue"] for p in lst} == {"va1": 5, "va2": 3}
    assert "va1" in node.cli("publisher", "list").stdout
    rp = node.cli_json("publisher", "republish", "va1")
    assert rp["cas"] == 1 and rp["certs"] == 2
    # No connector "vaconn": every item fails and waits for its retry.
    end = time.monotonic() + 20
    while True:
        sh = node.cli_json("publisher", "show", "va1")
        if sh["failing"] == sh["queue"]:
            break
        assert time.monotonic() < end, sh
        time.sleep(0.1)
    assert "vaconn" in sh["last_error"] or "connector" in sh["last_error"]
    assert node.cli_json("publisher", "retry", "va1")["retried"] == \
        sh["queue"]
    ed = node.cli_json("publisher", "edit", "va1", "--all-cas", "--crls")
    assert ed["cas"] == [] and ed["no_crls"] is False
    d = node.cli_json("publisher", "delete", "va1")
    assert d["deleted"] is True and d["dropped"] >= 8
    assert [p["name"] for p in node.cli_json("publisher", "list")] == ["va2"]
    r = node.cli("publisher", "show", "va1", check=False)
    assert r.returncode != 0
    assert "publisher add NAME" in node.cli("publisher", "add",
                                            "--help").stdout
