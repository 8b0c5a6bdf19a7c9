"""Revocation, holds, and CRLs checked with openssl verify -crl_check and
python3-cryptography."""
import datetime
import re
import subprocess

import pytest
from cryptography import x509

import helpers
from helpers import ext, make_csr

TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
SLACK = datetime.timedelta(minutes=2)


def revoked_serials(node, ca="sub"):
    return {r["serial"] for r in
            node.cli_json("cert", "list", "--ca", ca, "--status", "revoked")}


def new_crl(node, ca="sub"):
    """crl create + crl get: (create JSON, parsed CRL, PEM path)."""
    js = node.cli_json("crl", "create", "--ca", ca)
    pem = node.cli("crl", "get", "--ca", ca).stdout
    crl = x509.load_pem_x509_crl(pem.encode())
    path = node.write(f"crl-{ca}-{js['number']}.pem", pem)
    return js, crl, path


def crl_number(crl):
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def entry(crl, serial):
    return crl.get_revoked_certificate_by_serial_number(int(serial, 16))


def entry_reason(e):
    try:
        return e.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def check_crl(pki, js, crl, ca="sub"):
    node = pki.node
    cacert = pki.sub_cert if ca == "sub" else pki.root_cert
    assert js["ca"] == ca
    assert crl.issuer == cacert.subject
    assert crl.is_signature_valid(cacert.public_key())
    assert crl_number(crl) == js["number"]
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert aki.value.key_identifier == \
        ext(cacert, x509.SubjectKeyIdentifier).value.digest
    now = helpers.utcnow()
    assert crl.last_update <= now + SLACK
    assert crl.last_update >= now - SLACK
    period = node.cli_json("ca", "show", ca)["crl_period"]
    # nextUpdate is one CRL period ahead, plus at most a small overlap
    # with the next CRL (a tenth of the period, 1 minute to 1 hour).
    life = (crl.next_update - crl.last_update).total_seconds()
    assert period - 60 <= life <= period + min(max(period / 10, 60), 3600) + 60, \
        (life, period)
    assert re.fullmatch(TIME_RE, js["next_update"]), js
    assert datetime.datetime.strptime(js["next_update"], "%Y-%m-%dT%H:%M:%SZ") \
        == crl.next_update
    revoked = revoked_serials(node, ca)
    assert js["entries"] == len(crl) == len(revoked)
    assert {format(r.serial_number, "040x") for r in crl} == revoked


def test_revoke_and_crl(pki):
    node = pki.node
    a = pki.issue(make_csr(dns=["revoked.example"])[1])
    b = pki.issue(make_csr(dns=["good.example"])[1])
    js1, crl1, _ = new_crl(node)
    check_crl(pki, js1, crl1)
    assert entry(crl1, a.serial) is None

    r = node.cli("cert", "revoke", "--ca", "sub", "--serial", a.serial,
                 "--reason", "keyCompromise")
    assert r.returncode == 0
    row = node.cli_json("cert", "show", "--ca", "sub", "--serial", a.serial)
    assert row["status"] == "revoked" and row["reason"] == "keyCompromise"
    assert re.fullmatch(TIME_RE, row["revoked_at"]), row
    revoked_at = datetime.datetime.strptime(row["revoked_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(revoked_at - helpers.utcnow()) < SLACK
    assert a.serial in revoked_serials(node)
    assert b.serial not in revoked_serials(node)

    js2, crl2, crlpath = new_crl(node)
    check_crl(pki, js2, crl2)
    assert js2["number"] > js1["number"]
    e = entry(crl2, a.serial)
    assert e is not None
    assert entry_reason(e) == x509.ReasonFlags.key_compromise
    assert e.revocation_date == revoked_at
    assert entry(crl2, b.serial) is None

    r = helpers.openssl_verify(pki.root_pem, pki.sub_pem, a.path, crl=crlpath)
    assert r.returncode != 0
    assert "certificate revoked" in (r.stdout + r.stderr), r.stdout + r.stderr
    r = helpers.openssl_verify(pki.root_pem, pki.sub_pem, b.path, crl=crlpath)
    assert r.returncode == 0, r.stdout + r.stderr

    # DER output: the same CRL.
    der = node.cli("crl", "get", "--ca", "sub", "--der").stdout_bytes
    dcrl = x509.load_der_x509_crl(der)
    assert dcrl == crl2
    assert crl_number(dcrl) == js2["number"]

    # Revoking twice is refused and changes nothing.
    node.fail("cert", "revoke", "--ca", "sub", "--serial", a.serial,
              "--reason", "superseded", match=r"already revoked")
    assert node.cli_json("cert", "show", "--ca", "sub", "--serial",
                         a.serial)["reason"] == "keyCompromise"


@pytest.mark.parametrize("reason,flag", [
    ("unspecified", None),
    ("cACompromise", x509.ReasonFlags.ca_compromise),
    ("affiliationChanged", x509.ReasonFlags.affiliation_changed),
    ("superseded", x509.ReasonFlags.superseded),
    ("cessationOfOperation", x509.ReasonFlags.cessation_of_operation),
    ("privilegeWithdrawn", x509.ReasonFlags.privilege_withdrawn),
    ("aACompromise", x509.ReasonFlags.aa_compromise),
])
def test_reasons(pki, reason, flag):
    node = pki.node
    c = pki.issue(make_csr(dns=[f"{reason.lower()}.example"])[1])
    r = node.cli("cert", "revoke", "--ca", "sub", "--serial", c.serial,
                 "--reason", reason, "--json")
    if r.stdout.strip():
        helpers.parse_json(r)
    assert node.cli_json("cert", "show", "--ca", "sub", "--serial",
                         c.serial)["reason"] == reason
    js, crl, _ = new_crl(node)
    e = entry(crl, c.serial)
    assert e is not None
    # RFC 5280 5.3.1: unspecified SHOULD be expressed by omitting the code.
    assert entry_reason(e) in ((None, x509.ReasonFlags.unspecified)
                               if flag is None else (flag,))


def test_hold_and_release(pki):
    node = pki.node
    c1 = pki.issue(make_csr(dns=["hold1.example"])[1])
    c2 = pki.issue(make_csr(dns=["hold2.example"])[1])
    for c in (c1, c2):
        node.cli("cert", "revoke", "--ca", "sub", "--serial", c.serial,
                 "--reason", "certificateHold")
        row = node.cli_json("cert", "show", "--ca", "sub", "--serial", c.serial)
        assert row["status"] == "revoked" and row["reason"] == "certificateHold"
    node.fail("cert", "revoke", "--ca", "sub", "--serial", c1.serial,
              "--reason", "certificateHold", match="hold")
    js, crl, crlpath = new_crl(node)
    check_crl(pki, js, crl)
    for c in (c1, c2):
        assert entry_reason(entry(crl, c.serial)) == x509.ReasonFlags.certificate_hold
    r = helpers.openssl_verify(pki.root_pem, pki.sub_pem, c1.path, crl=crlpath)
    assert r.returncode != 0 and "certificate revoked" in r.stdout + r.stderr

    r = node.cli("cert", "unrevoke", "--ca", "sub", "--serial", c1.serial)
    assert r.returncode == 0
    node.cli("cert", "revoke", "--ca", "sub", "--serial", c2.serial,
             "--reason", "removeFromCRL")
    for c in (c1, c2):
        row = node.cli_json("cert", "show", "--ca", "sub", "--serial", c.serial)
        assert row["status"] == "active", row
    js2, crl2, crlpath2 = new_crl(node)
    check_crl(pki, js2, crl2)
    assert js2["number"] > js["number"]
    assert entry(crl2, c1.serial) is None and entry(crl2, c2.serial) is None
    r = helpers.openssl_verify(pki.root_pem, pki.sub_pem, c1.path, crl=crlpath2)
    assert r.returncode == 0, r.stdout + r.stderr

    # Only a hold can be lifted.
    node.fail("cert", "unrevoke", "--ca", "sub", "--serial", c1.serial,
              match="hold")
    node.cli("cert", "revoke", "--ca", "sub", "--serial", c1.serial,
             "--reason", "certificateHold")
    node.cli("cert", "revoke", "--ca", "sub", "--serial", c1.serial,
             "--reason", "keyCompromise")
    row = node.cli_json("cert", "show", "--ca", "sub", "--serial", c1.serial)
    assert row["status"] == "revoked" and row["reason"] == "keyCompromise"
    node.fail("cert", "unrevoke", "--ca", "sub", "--serial", c1.serial,
              match="hold")
    node.fail("cert", "revoke", "--ca", "sub", "--serial", c1.serial,
              "--reason", "removeFromCRL", match="hold")
    assert node.cli_json("cert", "show", "--ca", "sub", "--serial",
                         c1.serial)["status"] == "revoked"


def test_serial_spellings(pki):
    node = pki.node
    c = pki.issue(make_csr(dns=["colons.example"])[1])
    node.cli("cert", "revoke", "--ca", "sub", "--serial",
             helpers.to_colon_upper(c.serial), "--reason", "superseded")
    assert node.cli_json("cert", "show", "--ca", "sub", "--serial",
                         c.serial)["status"] == "revoked"
    d = pki.issue(make_csr(dns=["upper.example"])[1])
    node.cli("cert", "revoke", "--ca", "sub", "--serial", d.serial.upper(),
             "--reason", "certificateHold")
    node.cli("cert", "unrevoke", "--ca", "sub", "--serial",
             helpers.to_colon_upper(d.serial))
    assert node.cli_json("cert", "show", "--ca", "sub", "--serial",
                         d.serial)["status"] == "active"


def test_revoke_refusals(pki):
    node = pki.node
    c = pki.issue(make_csr(dns=["refuse.example"])[1])
    before = node.cli_json("cert", "list")
    cases = [
        (["--ca", "sub", "--serial", "xyz", "--reason", "superseded"], "serial"),
        (["--ca", "sub", "--serial", "ab" * 21, "--reason", "superseded"], "serial"),
        (["--ca", "sub", "--serial", "", "--reason", "superseded"], "serial"),
        (["--ca", "sub", "--serial", "12" * 20, "--reason", "superseded"],
         r"serial|not found|no cert|" + "12" * 20),
        (["--ca", "root", "--serial", c.serial, "--reason", "superseded"],
         r"serial|not found|no cert|" + c.serial),
        (["--ca", "nosuchca", "--serial", c.serial, "--reason", "superseded"],
         "nosuchca"),
    ]
    for args, match in cases:
        node.fail("cert", "revoke", *args, match=match)
    node.fail("cert", "unrevoke", "--ca", "sub", "--serial", "xyz", match="serial")
    node.fail("cert", "unrevoke", "--ca", "sub", "--serial", c.serial,
              match="hold")
    r = node.cli("cert", "revoke", "--ca", "sub", "--serial", c.serial,
                 "--reason", "becauseISaidSo", check=False)
    assert r.returncode in (1, 2), r
    assert "becauseISaidSo" in r.stderr or "reason" in r.stderr, r.stderr
    assert node.cli_json("cert", "list") == before


def test_crl_numbers_and_output(pki):
    node = pki.node
    nums = [node.cli_json("crl", "create", "--ca", "sub")["number"]
            for _ in range(3)]
    assert nums == sorted(set(nums)) and nums[0] >= 1
    r = node.cli("crl", "create", "--ca", "sub")
    assert r.returncode == 0 and str(nums[-1] + 1) in r.stdout, r.stdout
    crl = x509.load_pem_x509_crl(node.cli("crl", "get", "--ca", "sub").stdout.encode())
    assert crl_number(crl) == nums[-1] + 1
    # Another CA's CRLs are its own.
    js, rcrl, _ = new_crl(node, "root")
    check_crl(pki, js, rcrl, ca="root")
    node.fail("crl", "create", "--ca", "nosuchca", match="nosuchca")
    node.fail("crl", "get", "--ca", "nosuchca", match="nosuchca")
    der = node.cli("crl", "get", "--ca", "root", "--der").stdout_bytes
    assert der[:1] == b"\x30" and x509.load_der_x509_crl(der) == rcrl


def test_crl_certtool(pki):
    # GnuTLS reads the CRL too.
    js, crl, path = new_crl(pki.node)
    p = subprocess.run(["certtool", "--crl-info", "--infile", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["certtool", "--verify-crl", "--load-ca-certificate",
                        str(pki.sub_pem), "--infile", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_curl_tls_with_crl(pki):
    """A real TLS handshake: curl trusts a server certificate we issued,
    and with our CRL refuses a revoked one."""
    node = pki.node
    good_key, csr = make_csr("ec-p256", dns=["good-tls.example"])
    good = pki.issue(csr)
    bad_key, csr = make_csr("ec-p256", dns=["bad-tls.example"])
    bad = pki.issue(csr)
    node.cli("cert", "revoke", "--ca", "sub", "--serial", bad.serial,
             "--reason", "keyCompromise")
    _, _, crlpath = new_crl(node)
    # curl checks the CRL of every CA in the chain when given one file.
    _, _, rootcrl = new_crl(node, "root")
    crls = node.write("both.crl", crlpath.read_text() + rootcrl.read_text())
    for issued, key, host, ok in ((good, good_key, "good-tls.example", True),
                                  (bad, bad_key, "bad-tls.example", False)):
        srv = helpers.TlsServer(pki.work, issued.pem, key, pki.sub_pem)
        try:
            r = srv.curl(host, pki.root_pem)
            assert r.returncode == 0, r.stderr
            r = srv.curl("wrong-name.example", pki.root_pem)
            assert r.returncode != 0, "curl accepted a name not in the SAN"
            r = srv.curl(host, pki.root_pem, crlfile=crls)
            if ok:
                assert r.returncode == 0, r.stderr
            else:
                assert r.returncode != 0 and "revoked" in r.stderr, r.stderr
        finally:
            srv.close()
