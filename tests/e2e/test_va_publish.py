"""End-to-end: the VA's publish endpoints (issue 8 item 2).

A test client holding a client certificate of a role with the "va" preset
publishes to a real VA node: a CA certificate, certificate entries (good,
revoked, hold, status only, full), CRLs; the hostile cases of the issue
("How it is checked") are refused and store nothing. The VA's database is
read directly (sqlite3) to see exactly what was stored.
"""
import base64
import datetime
import hashlib
import http.client
import json
import re
import sqlite3
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from test_peer import client_identity, pair, write  # noqa: F401 (fixture)

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def b64(der):
    return base64.b64encode(der).decode()


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn, signer=None, signer_key=None):
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(name(cn))
         .issuer_name(signer.subject if signer else name(cn))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(NOW - 10 * DAY).not_valid_after(NOW + 100 * DAY)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                        critical=True))
    return b.sign(signer_key or key, hashes.SHA256()), key


def make_leaf(ca, cakey, serial, cn, eku=None, nb=None, na=None):
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(name(cn))
         .issuer_name(ca.subject).public_key(key.public_key())
         .serial_number(serial)
         .not_valid_before(nb or (NOW - DAY)).not_valid_after(na or
                                                             (NOW + 30 * DAY)))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return b.sign(cakey, hashes.SHA256()), key


def make_crl(ca, cakey, number, revoked=()):
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(NOW - DAY).next_update(NOW + 7 * DAY)
         .add_extension(x509.CRLNumber(number), critical=False))
    for s in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(s)
            .revocation_date(NOW - DAY).build())
    return b.sign(cakey, hashes.SHA256())


def der(obj):
    return obj.public_bytes(serialization.Encoding.DER)


def utc(t):
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp())


def hexserial(n):
    h = format(n, "x")
    return "0" + h if len(h) % 2 else h


def entry(ca, cert=None, serial=None, seq=1, status="good", full=True,
          **kw):
    e = {"ca": ca, "seq": seq, "status": status}
    if cert is not None:
        serial = cert.serial_number
        e.update({
            "not_before": utc(cert.not_valid_before),
            "not_after": utc(cert.not_valid_after),
            "fingerprint": hashlib.sha256(der(cert)).hexdigest(),
            "subject": cert.subject.rfc4514_string()})
        if full:
            e["certificate"] = b64(der(cert))
    e["serial"] = hexserial(serial)
    if status != "good":
        e["revoked_at"] = int(NOW.timestamp()) - 60
        e["reason"] = 1
    e.update(kw)
    return e


class Client:
    def __init__(self, pair, certf, keyf):
        self.ctx = ssl.create_default_context(cafile=str(pair.mgmt))
        self.ctx.load_cert_chain(str(certf), str(keyf))
        self.port = pair.port

    def post(self, path, doc):
        c = http.client.HTTPSConnection("127.0.0.1", self.port,
                                        context=self.ctx, timeout=20)
        try:
            body = json.dumps(doc).encode()
            c.request("POST", "/peer/v1" + path, body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, data
        finally:
            c.close()


def db(node):
    conf = (node.dir / "sallyport.conf").read_text()
    m = re.search(r"^database\s*=\s*(\S+)", conf, re.M)
    path = m.group(1) if m else str(node.dir / "sallyport.db")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def rows(node, sql, *args):
    c = db(node)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def authorize(p, cn, role, rules="va"):
    certf, keyf = client_identity(p.ca, p.work, cn)
    code, _, _ = p.curl("/peer/v1/ping", certf, keyf)
    assert code == 403
    got = p.wait_incoming(lambda rs: any(
        r["subject"] == f"CN={cn}" for r in rs))
    row = [r for r in got if r["subject"] == f"CN={cn}"][0]
    p.va.cli("peer", "incoming", "authorize", str(row["id"]), "--new-role",
             role, "--rules", rules)
    return certf, keyf


@pytest.fixture(scope="module")
def pub(pair):
    p = pair
    p.va.cli("peer", "incoming", "enable")
    certf, keyf = authorize(p, "publisher.example", "PUB")
    p.client = Client(p, certf, keyf)
    p.root, p.rootkey = make_ca("Pub Root CA")
    p.other, p.otherkey = make_ca("Other CA")
    st, res = p.client.post("/publish/cas", {"cas": [
        {"name": "PubRoot", "certificate": b64(der(p.root))},
        {"name": "Other", "certificate": b64(der(p.other))}]})
    assert st == 200, res
    assert res["results"] == [{"name": "PubRoot", "ok": True},
                              {"name": "Other", "ok": True}]
    return p


def certs(p):
    return {(r[0], r[1]): r[2:] for r in rows(
        p.va, "SELECT i.name, c.serial, c.status, c.seq, c.der IS NOT NULL "
        "FROM va_certs c JOIN va_issuers i ON i.id = c.issuer_id")}


def test_ca_stored_with_certid_hashes(pub):
    got = rows(pub.va, "SELECT name, subject, name_sha1, key_sha1, "
               "name_sha256, key_sha256 FROM va_issuers WHERE name = ?",
               "PubRoot")
    assert len(got) == 1
    _, subject, n1, k1, n2, k2 = got[0]
    assert subject == "CN=Pub Root CA"
    nd = pub.root.subject.public_bytes()
    kd = pub.root.public_key().public_bytes(
        serialization.Encoding.X962,
        serialization.PublicFormat.UncompressedPoint)
    assert n1 == hashlib.sha1(nd).hexdigest()
    assert n2 == hashlib.sha256(nd).hexdigest()
    assert k1 == hashlib.sha1(kd).hexdigest()
    assert k2 == hashlib.sha256(kd).hexdigest()


def test_ca_refusals(pub):
    leaf, _ = make_leaf(pub.root, pub.rootkey, 77, "not a ca")
    stranger, _ = make_ca("Sub", signer=make_ca("Unknown Root")[0],
                          signer_key=ec.generate_private_key(ec.SECP256R1()))
    sub, _ = make_ca("Sub Known", signer=pub.root, signer_key=pub.rootkey)
    st, res = pub.client.post("/publish/cas", {"cas": [
        {"name": "Leaf", "certificate": b64(der(leaf))},
        {"name": "Stranger", "certificate": b64(der(stranger))},
        {"name": "Sub", "certificate": b64(der(sub))},
        {"name": "Bad", "certificate": "!!"}]})
    assert st == 200, res
    r = res["results"]
    assert [x["ok"] for x in r] == [False, False, True, False], r
    assert r[0]["error"]["code"] == "invalid"
    assert r[1]["error"]["code"] == "signature"
    assert r[3]["error"]["code"] == "invalid"
    names = {n for (n,) in rows(pub.va, "SELECT name FROM va_issuers")}
    assert {"PubRoot", "Other", "Sub"} <= names
    assert not names & {"Leaf", "Stranger", "Bad"}


def test_certs_good_revoked_hold_status_only(pub):
    good, _ = make_leaf(pub.root, pub.rootkey, 0x1001, "good.example")
    rev, _ = make_leaf(pub.root, pub.rootkey, 0x1002, "revoked.example")
    hold, _ = make_leaf(pub.root, pub.rootkey, 0x1003, "hold.example")
    st, res = pub.client.post("/publish/certs", {"entries": [
        entry("PubRoot", good, seq=10),
        entry("PubRoot", rev, seq=11, status="revoked"),
        entry("PubRoot", hold, seq=12, status="hold"),
        entry("PubRoot", serial=0x1004, seq=13, status="revoked")]})
    assert st == 200, res
    assert res["results"] == [
        {"serial": "1001", "ok": True, "applied": True},
        {"serial": "1002", "ok": True, "applied": True},
        {"serial": "1003", "ok": True, "applied": True},
        {"serial": "1004", "ok": True, "applied": True}]
    c = certs(pub)
    assert c[("PubRoot", "1001")] == (0, 10, 1)
    assert c[("PubRoot", "1002")] == (1, 11, 1)
    assert c[("PubRoot", "1003")] == (2, 12, 1)
    assert c[("PubRoot", "1004")] == (1, 13, 0)
    # Re-delivery: acknowledged, not applied; an older seq never wins.
    st, res = pub.client.post("/publish/certs", {"entries": [
        entry("PubRoot", good, seq=10),
        entry("PubRoot", rev, seq=5, status="good", full=False)]})
    assert [x["applied"] for x in res["results"]] == [False, False], res
    assert certs(pub)[("PubRoot", "1002")] == (1, 11, 1)
    # A newer status-only update applies and keeps the DER.
    st, res = pub.client.post("/publish/certs", {"entries": [
        entry("PubRoot", hold, seq=20, status="good", full=False)]})
    assert res["results"][0]["applied"] is True
    assert certs(pub)[("PubRoot", "1003")] == (0, 20, 1)


def test_certificate_not_signed_by_named_ca_refused(pub):
    forged, _ = make_leaf(pub.other, pub.otherkey, 0x2001, "forged")
    # Issuer name says PubRoot, key is someone else's.
    liar, _ = make_leaf(pub.root, pub.otherkey, 0x2002, "liar")
    ok, _ = make_leaf(pub.root, pub.rootkey, 0x2003, "mismatch")
    mism = entry("PubRoot", ok, seq=3)
    mism["serial"] = "2004"
    st, res = pub.client.post("/publish/certs", {"entries": [
        entry("PubRoot", forged, seq=1), entry("PubRoot", liar, seq=2),
        mism, entry("Nobody", serial=5, seq=1),
        {"ca": "PubRoot", "serial": "zz", "seq": 1, "status": "good"}]})
    assert st == 200, res
    codes = [x.get("error", {}).get("code") for x in res["results"]]
    assert codes == ["signature", "signature", "signature", "unknown_ca",
                     "invalid"], res
    c = certs(pub)
    for s in ("2001", "2002", "2003", "2004"):
        assert ("PubRoot", s) not in c


def test_crls_and_stale(pub):
    st, res = pub.client.post("/publish/crls", {"crls": [
        {"ca": "PubRoot", "crl": b64(der(make_crl(pub.root, pub.rootkey, 5,
                                                  [0x1002])))}]})
    assert res["results"] == [{"ca": "PubRoot", "ok": True}], res
    assert rows(pub.va, "SELECT c.number FROM va_crls c JOIN va_issuers i "
                "ON i.id = c.issuer_id WHERE i.name = 'PubRoot'") == [(5,)]
    older = der(make_crl(pub.root, pub.rootkey, 3))
    forged = der(make_crl(pub.root, pub.otherkey, 9))
    st, res = pub.client.post("/publish/crls", {"crls": [
        {"ca": "PubRoot", "crl": b64(older)},
        {"ca": "PubRoot", "crl": b64(forged)},
        {"ca": "Other", "crl": b64(der(make_crl(pub.other, pub.otherkey,
                                                1)))}]})
    codes = [x.get("error", {}).get("code") for x in res["results"]]
    assert codes == ["stale", "signature", None], res
    assert rows(pub.va, "SELECT c.number FROM va_crls c JOIN va_issuers i "
                "ON i.id = c.issuer_id WHERE i.name = 'PubRoot'") == [(5,)]


def test_role_without_ca_forbidden_and_audited(pub):
    certf, keyf = authorize(pub, "limited.example", "LIM")
    pub.va.cli("role", "rule", "remove", "LIM", "/ca/")
    pub.va.cli("role", "rule", "set", "LIM", "/ca/PubRoot", "allow")
    lim = Client(pub, certf, keyf)
    st, res = lim.post("/publish/certs", {"entries": [
        entry("Other", serial=0x3001, seq=1),
        entry("PubRoot", serial=0x3002, seq=1)]})
    assert st == 200, res
    r = res["results"]
    assert r[0]["ok"] is False and r[0]["error"]["code"] == "forbidden"
    assert r[1] == {"serial": "3002", "ok": True, "applied": True}
    c = certs(pub)
    assert ("Other", "3001") not in c and ("PubRoot", "3002") in c
    audit = pub.va.cli_json("audit", "list")
    hits = [a for a in audit if a["event"] == "va.publish.forbidden"]
    assert hits, audit[-5:]
    d = hits[-1]["details"]
    d = json.loads(d) if isinstance(d, str) else d
    assert d["role"] == "LIM" and d["ca"] == "Other"
    assert d["client"].startswith("127.0.0.1:")


def test_whole_request_refusals(pub):
    st, res = pub.client.post("/publish/certs", {"entries": []})
    assert st == 400, res
    st, res = pub.client.post("/publish/certs", {"entries": [
        entry("PubRoot", serial=1, seq=1)] * 501})
    assert st == 400, res
    st, res = pub.client.post("/publish/cas", {"nope": 1})
    assert st == 400, res


def test_role_lacking_writecrl_refused(pub):
    certf, keyf = authorize(pub, "nocrl.example", "NOCRL")
    pub.va.cli("role", "rule", "remove", "NOCRL", "/peerpublish/writecrl")
    st, res = Client(pub, certf, keyf).post("/publish/crls", {"crls": [
        {"ca": "PubRoot", "crl": b64(der(make_crl(pub.root, pub.rootkey,
                                                  50)))}]})
    # Refused when the head arrives: the listener sets the body limit to
    # 0 for a request its rules refuse, so a body gets 413 unread.
    assert st in (403, 413), res
    assert rows(pub.va, "SELECT c.number FROM va_crls c JOIN va_issuers i "
                "ON i.id = c.issuer_id WHERE i.name = 'PubRoot'") == [(5,)]


# --- the mTLS matrix at publish/* -----------------------------------------

def _refused_leaf(pub, tag, cn, eku, nb, na, why):
    """A client certificate under a CA the VA trusts for this test only
    (the Pub Root CA), refused in the handshake at publish/certs, and the
    reason logged."""
    leaf, lkey = make_leaf(pub.root, pub.rootkey, 0x4000 + len(tag), cn,
                           eku=eku, nb=nb, na=na)
    caf = write(pub.work / f"{tag}-ca.pem", pub.root.public_bytes(
        serialization.Encoding.PEM))
    certf = write(pub.work / f"{tag}.pem", leaf.public_bytes(
        serialization.Encoding.PEM))
    keyf = write(pub.work / f"{tag}.key", lkey.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    pub.va.cli("trust", "add", "--cert", caf)
    try:
        code, body, _ = pub.curl("/peer/v1/publish/certs", certf, keyf,
                                 "-X", "POST", "-d", "{}")
        assert code == 0 and "results" not in body, (code, body)
        assert re.search(r'refused client certificate subject "CN=' + cn +
                         r'".*' + why, pub.va.log()), pub.va.log()[-2000:]
    finally:
        fp = [t["fingerprint"] for t in pub.va.cli_json("trust", "list")
              if "Pub Root" in t["subject"]][0]
        pub.va.cli("trust", "remove", fp)


def test_server_auth_only_refused(pub):
    _refused_leaf(pub, "srvonly", "server only",
                  [ExtendedKeyUsageOID.SERVER_AUTH], None, None,
                  "purpose|unsupported")


def test_not_yet_valid_refused(pub):
    _refused_leaf(pub, "future", "future client",
                  [ExtendedKeyUsageOID.CLIENT_AUTH], NOW + 5 * DAY,
                  NOW + 10 * DAY, "not yet valid")


def test_role_lacking_peerincoming_refused_and_listed(pub):
    certf, keyf = authorize(pub, "noincoming.example", "NOIN")
    pub.va.cli("role", "rule", "remove", "NOIN", "/peerincoming")
    code, body, _ = pub.curl("/peer/v1/publish/certs", certf, keyf, "-X",
                             "POST", "-d", json.dumps({"entries": [
                                 entry("PubRoot", serial=0x5001, seq=1)]}))
    assert code == 403, (code, body)
    pub.wait_incoming(lambda rs: any(
        r["subject"] == "CN=noincoming.example" for r in rs))
    assert ("PubRoot", "5001") not in certs(pub)


# --- the VA's admin commands ----------------------------------------------

def test_va_cert_show_list_status_set(pub):
    e = pub.va.cli_json("va", "cert", "show", "--issuer", "PubRoot",
                        "--serial", "00:10:02")
    assert e["serial"] == "1002" and e["status"] == "revoked", e
    assert e["reason"] == 1 and e["seq"] == 11 and e["has_der"] is True
    assert e["subject"] == "CN=revoked.example"
    e = pub.va.cli_json("va", "cert", "show", "--issuer", "PubRoot",
                        "--serial", "1004")
    assert e["has_der"] is False and e["fingerprint"] == ""
    pub.va.fail("va", "cert", "show", "--issuer", "PubRoot", "--serial",
                "dead", match="no entry")
    pub.va.fail("va", "cert", "show", "--issuer", "PubRoot", "--serial",
                "xyz")
    every = pub.va.cli_json("va", "cert", "list")
    assert {("PubRoot", "1001"), ("PubRoot", "1002")} <= {
        (x["issuer"], x["serial"]) for x in every}
    rev = pub.va.cli_json("va", "cert", "list", "--issuer", "PubRoot",
                          "--status", "revoked")
    assert rev and all(x["status"] == "revoked" for x in rev)
    assert len(pub.va.cli_json("va", "cert", "list", "--limit", "1")) == 1
    pub.va.fail("va", "cert", "list", "--limit", "10001")
    pub.va.fail("va", "cert", "list", "--status", "bogus")
    assert "1002" in pub.va.cli("va", "cert", "list").stdout
    st = pub.va.cli_json("va", "status")
    root = [i for i in st["issuers"] if i["name"] == "PubRoot"][0]
    n = len(pub.va.cli_json("va", "cert", "list", "--issuer", "PubRoot",
                            "--limit", "10000"))
    assert sum(root["entries"].values()) == n
    assert root["crl"]["number"] == 5 and root["crl"]["next_update"] > 0
    assert st["settings"] == {"non_issued": "unknown",
                              "response_validity": 3600}
    assert st["published"]["certs"] >= 4 and st["published"]["refused"] > 0
    assert "cache_size" in st
    got = pub.va.cli_json("va", "set", "non_issued", "revoked")
    assert got["non_issued"] == "revoked"
    got = pub.va.cli_json("va", "set", "response_validity", "600")
    assert got["response_validity"] == 600
    pub.va.fail("va", "set", "response_validity", "5")
    pub.va.fail("va", "set", "nope", "1")
    assert pub.va.cli_json("va", "status")["settings"] == {
        "non_issued": "revoked", "response_validity": 600}
    pub.va.cli("va", "set", "non_issued", "unknown")
    assert "va cert list" in pub.va.cli("va", "cert", "list",
                                        "--help").stdout
