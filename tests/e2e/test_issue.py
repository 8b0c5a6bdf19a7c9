"""Issuance: certificates checked with python3-cryptography, openssl verify
and certtool; profiles; certificate listing; and hostile or bad requests,
each refused with a clear message and nothing stored."""
import concurrent.futures
import datetime
import ipaddress
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import helpers
from helpers import ext, fingerprint, make_csr, openssl_csr, split_pems

KU_ATTR = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
}
EKU_OID = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
}
SETTINGS_KEYS = {"validity_days", "key_algs", "key_usage", "key_usage_critical",
                 "ext_key_usage", "ca", "path_len", "san_types", "san_required",
                 "crl_dp", "ocsp_url", "ocsp_nocheck", "subject_max_attrs",
                 "subject_max_len"}
BUILTINS = {"ROOTCA", "SUBCA", "ENDUSER", "TLS_SERVER", "TLS_CLIENT",
            "OCSPSIGNER"}
SLACK = datetime.timedelta(minutes=2)


def settings(node, profile):
    return node.cli_json("profile", "show", profile)["settings"]


def spki(pub):
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def check_leaf(pki, issued, profile, key, csr_pem=None, days=None,
               issuer_cert=None):
    """Everything the contract says about an issued certificate."""
    node = pki.node
    c = issued.cert
    issuer = issuer_cert or pki.sub_cert
    st = settings(node, profile)
    now = helpers.utcnow()

    # Serial: 20 random bytes, positive, at most 20 octets encoded.
    assert 0 < c.serial_number < 2 ** 159, hex(c.serial_number)
    assert c.serial_number.bit_length() > 100, "serial is not random-looking"
    assert re.fullmatch(r"[0-9a-f]{40}", issued.serial), issued.serial
    assert int(issued.serial, 16) == c.serial_number

    assert c.version == x509.Version.v3
    assert c.issuer == issuer.subject
    assert spki(c.public_key()) == spki(key.public_key())
    aki = ext(c, x509.AuthorityKeyIdentifier)
    assert aki is not None and not aki.critical
    assert aki.value.key_identifier == \
        ext(issuer, x509.SubjectKeyIdentifier).value.digest
    ski = ext(c, x509.SubjectKeyIdentifier)
    assert ski is not None and ski.value.digest != aki.value.key_identifier

    # Subject and SANs copied from the CSR.
    if csr_pem is not None:
        req = (x509.load_pem_x509_csr(csr_pem) if csr_pem.startswith(b"-----")
               else x509.load_der_x509_csr(csr_pem))
        assert c.subject == req.subject
        try:
            want = req.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            want = None
        got = ext(c, x509.SubjectAlternativeName)
        if want is None:
            assert got is None
        else:
            assert got is not None and list(got.value) == list(want)
            if len(c.subject) == 0:
                assert got.critical, "RFC 5280 4.2.1.6: SAN must be critical " \
                    "when the subject is empty"

    # Key usage and extended key usage as the profile says.
    ku = ext(c, x509.KeyUsage)
    want_ku = set(st["key_usage"])
    if want_ku:
        assert ku is not None
        assert ku.critical == st["key_usage_critical"]
        got_ku = {n for n, a in KU_ATTR.items() if getattr(ku.value, a)}
        if isinstance(c.public_key(), rsa.RSAPublicKey):
            assert got_ku == want_ku
        else:
            # keyEncipherment/dataEncipherment may be dropped for keys
            # that cannot encipher; nothing else may differ.
            assert want_ku - {"keyEncipherment", "dataEncipherment"} <= got_ku <= want_ku
    eku = ext(c, x509.ExtendedKeyUsage)
    if st["ext_key_usage"]:
        assert eku is not None
        assert set(eku.value) == {EKU_OID[n] for n in st["ext_key_usage"]}
    else:
        assert eku is None
    bc = ext(c, x509.BasicConstraints)
    if bc is not None:
        assert bc.value.ca is False
    if st["ocsp_nocheck"]:
        assert ext(c, x509.OCSPNoCheck) is not None
    if st["crl_dp"]:
        dp = ext(c, x509.CRLDistributionPoints)
        assert dp is not None
        assert [n.value for d in dp.value for n in d.full_name] == st["crl_dp"]
    if st["ocsp_url"]:
        aia = ext(c, x509.AuthorityInformationAccess)
        assert aia is not None
        assert [a.access_location.value for a in aia.value
                if a.access_method == x509.oid.AuthorityInformationAccessOID.OCSP] \
            == [st["ocsp_url"]]

    # Validity within the profile maximum (or the --days asked for).
    maxdays = st["validity_days"]
    assert c.not_valid_before <= now + SLACK
    assert c.not_valid_after <= now + datetime.timedelta(days=maxdays) + SLACK
    if days is not None:
        assert abs(c.not_valid_after - (now + datetime.timedelta(days=days))) < SLACK
    else:
        assert c.not_valid_after > now + datetime.timedelta(days=maxdays) - SLACK
    assert c.not_valid_after <= issuer.not_valid_after

    # Signed with the issuer's key; P-384 issuers use SHA-384.
    assert issuer.public_key().curve.name == "secp384r1"
    assert c.signature_hash_algorithm.name == "sha384"
    issuer.public_key().verify(c.signature, c.tbs_certificate_bytes,
                               ec.ECDSA(c.signature_hash_algorithm))

    # Independent verifiers.
    r = helpers.openssl_verify(pki.root_pem, pki.sub_pem, issued.path)
    assert r.returncode == 0 and ": OK" in r.stdout, r.stdout + r.stderr
    chain = pki.chain_file(issued)
    r = helpers.certtool_verify(pki.root_pem, chain)
    assert r.returncode == 0, r.stdout + r.stderr

    # The node's record of it.
    row = node.cli_json("cert", "show", "--ca", "sub", "--serial", issued.serial)
    assert row["status"] == "active" and row["profile"] == profile
    assert row["fingerprint"] == fingerprint(c)
    assert helpers.load_cert(row["pem"]) == c
    return c


# --- issuance ------------------------------------------------------------

def test_issue_human_pem(pki):
    key, csr = make_csr("ec-p256", cn="www.example.com",
                        dns=["www.example.com", "example.com"],
                        ips=["192.0.2.7", "2001:db8::7"])
    f = pki.csr_file(csr)
    r = pki.node.cli("cert", "issue", "--ca", "sub", "--profile", "TLS_SERVER",
                     "--csr", f)
    certs = split_pems(r.stdout)
    assert len(certs) == 1, r.stdout
    c = certs[0]
    issued = helpers.Issued({"pem": r.stdout, "serial": helpers.serial_hex(c)},
                            pki.node.write("human.pem", r.stdout))
    check_leaf(pki, issued, "TLS_SERVER", key, csr)
    san = ext(c, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.7"), ipaddress.ip_address("2001:db8::7")]
    # Fit for a TLS server with those names, says openssl; and GnuTLS.
    for check in (["-verify_hostname", "example.com"],
                  ["-verify_ip", "2001:db8::7"]):
        p = subprocess.run(
            ["openssl", "verify", "-x509_strict", "-purpose", "sslserver",
             *check, "-CAfile", str(pki.root_pem), "-untrusted",
             str(pki.sub_pem), str(issued.path)],
            capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(
        ["certtool", "--verify", "--verify-hostname", "www.example.com",
         "--verify-purpose", "1.3.6.1.5.5.7.3.1", "--load-ca-certificate",
         str(pki.root_pem), "--infile", str(pki.chain_file(issued))],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(
        ["certtool", "--verify", "--verify-hostname", "evil.example",
         "--load-ca-certificate", str(pki.root_pem), "--infile",
         str(pki.chain_file(issued))],
        capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, "certtool accepted a name not in the SAN"


def test_issue_json(pki):
    key, csr = make_csr("ec-p256", dns=["json.example"])
    js = pki.node.cli_json("cert", "issue", "--ca", "sub", "--profile",
                           "TLS_SERVER", "--csr", pki.csr_file(csr))
    assert set(js) == {"ca", "profile", "serial", "pem"}
    assert js["ca"] == "sub" and js["profile"] == "TLS_SERVER"
    assert helpers.serial_hex(helpers.load_cert(js["pem"])) == js["serial"]


@pytest.mark.parametrize("kind", ["ec-p384", "rsa2048"])
def test_issue_tls_server_key_types(pki, kind):
    key, csr = make_csr(kind, cn=f"{kind}.example", dns=[f"{kind}.example"])
    check_leaf(pki, pki.issue(csr), "TLS_SERVER", key, csr)


@pytest.mark.parametrize("kind", ["ec-p256", "rsa2048"])
def test_issue_openssl_req_csr(pki, kind):
    csr = openssl_csr(pki.work, f"ossl-{kind}.example", kind,
                      sans=f"DNS:ossl-{kind}.example,IP:198.51.100.1")
    issued = pki.issue(csr)
    req = x509.load_pem_x509_csr(csr)
    c = issued.cert
    assert spki(c.public_key()) == spki(req.public_key())
    assert ext(c, x509.SubjectAlternativeName).value == \
        req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    r = helpers.openssl_verify(pki.root_pem, pki.sub_pem, issued.path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert helpers.certtool_verify(pki.root_pem,
                                   pki.chain_file(issued)).returncode == 0


def test_issue_der_csr(pki):
    key, csr = make_csr("ec-p256", dns=["der.example"], der=True)
    check_leaf(pki, pki.issue(csr), "TLS_SERVER", key, csr)


def test_issue_enduser_ed25519(pki):
    key, csr = make_csr("ed25519", cn="Bob", emails=["bob@example.org"])
    check_leaf(pki, pki.issue(csr, profile="ENDUSER"), "ENDUSER", key, csr)


def test_issue_tls_client(pki):
    key, csr = make_csr("ec-p256", cn="client 1", emails=["c1@example.org"],
                        uris=["spiffe://example.org/c1"])
    check_leaf(pki, pki.issue(csr, profile="TLS_CLIENT"), "TLS_CLIENT", key, csr)


def test_issue_ocsp_signer(pki):
    key, csr = make_csr("ec-p256", cn="OCSP responder")
    check_leaf(pki, pki.issue(csr, profile="OCSPSIGNER"), "OCSPSIGNER", key, csr)


def test_issue_days(pki):
    key, csr = make_csr("ec-p256", dns=["days.example"])
    check_leaf(pki, pki.issue(csr, days=30), "TLS_SERVER", key, csr, days=30)


def test_issue_empty_subject(fresh_pki):
    # On a node of its own: this request once killed the node.
    key, csr = make_csr("ec-p256", cn=None, dns=["nosubject.example"])
    check_leaf(fresh_pki, fresh_pki.issue(csr), "TLS_SERVER", key, csr)


def test_issue_from_root(pki):
    key, csr = make_csr("ec-p256", cn="Direct")
    issued = pki.issue(csr, profile="ENDUSER", ca="root")
    c = issued.cert
    assert c.issuer == pki.root_cert.subject
    assert ext(c, x509.AuthorityKeyIdentifier).value.key_identifier == \
        ext(pki.root_cert, x509.SubjectKeyIdentifier).value.digest
    r = helpers.openssl_verify(pki.root_pem, None, issued.path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert pki.node.cli_json("cert", "show", "--ca", "root", "--serial",
                             issued.serial)["ca"] == "root"


def test_issue_concurrent(pki):
    csrs = [make_csr("ec-p256", dns=[f"c{i}.example"])[1] for i in range(8)]
    files = [pki.csr_file(c) for c in csrs]
    before = pki.node.cert_count()

    def one(f):
        return pki.node.cli_json("cert", "issue", "--ca", "sub", "--profile",
                                 "TLS_SERVER", "--csr", f)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        out = list(ex.map(one, files))
    serials = {o["serial"] for o in out}
    assert len(serials) == 8
    assert pki.node.cert_count() == before + 8
    for o, f in zip(out, csrs):
        c = helpers.load_cert(o["pem"])
        want = x509.load_pem_x509_csr(f).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        assert ext(c, x509.SubjectAlternativeName).value == want


def test_csr_extensions_not_copied(pki):
    """Only the SAN comes from the request: a CSR asking to be a CA, for
    keyCertSign or for codeSigning gets what the profile says."""
    key = helpers.make_key("ec-p256")
    b = (x509.CertificateSigningRequestBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                     "sneaky.example")]))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                        critical=True)
         .add_extension(x509.KeyUsage(True, True, True, True, True, True, True,
                                      False, False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(
             [ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
         .add_extension(x509.SubjectAlternativeName(
             [x509.DNSName("sneaky.example")]), critical=False))
    csr = b.sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)
    issued = pki.issue(csr)
    c = check_leaf(pki, issued, "TLS_SERVER", key, csr)
    bc = ext(c, x509.BasicConstraints)
    assert bc is None or bc.value.ca is False
    assert not ext(c, x509.KeyUsage).value.key_cert_sign
    assert list(ext(c, x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.SERVER_AUTH]


def test_p521_refused(pki):
    key = ec.generate_private_key(ec.SECP521R1())
    pki.issue_fail(make_csr(key=key, dns=["p521.example"])[1],
                   match=r"key.?alg|size|support")


# --- cert list / show ------------------------------------------------------

def test_cert_list_and_show(pki):
    node = pki.node
    key, csr = make_csr("ec-p256", cn="listed.example", dns=["listed.example"])
    issued = pki.issue(csr)
    rows = node.cli_json("cert", "list")
    mine = [r for r in rows if r["serial"] == issued.serial]
    assert len(mine) == 1
    row = mine[0]
    assert set(row) >= {"ca", "serial", "status", "subject", "profile",
                        "not_before", "not_after", "revoked_at", "reason",
                        "fingerprint"}
    assert row["ca"] == "sub" and row["status"] == "active"
    assert row["profile"] == "TLS_SERVER"
    assert "listed.example" in row["subject"]
    assert row["fingerprint"] == fingerprint(issued.cert)
    assert datetime.datetime.strptime(row["not_after"], "%Y-%m-%dT%H:%M:%SZ") \
        == issued.cert.not_valid_after
    for r in rows:
        assert re.fullmatch(r"[0-9a-f]{40}", r["serial"]), r
    # Filters.
    by_sub = node.cli_json("cert", "list", "--ca", "sub")
    assert all(r["ca"] == "sub" for r in by_sub) and row in by_sub
    by_root = node.cli_json("cert", "list", "--ca", "root")
    assert all(r["ca"] == "root" for r in by_root)
    assert all(r["serial"] != issued.serial for r in by_root)
    active = node.cli_json("cert", "list", "--status", "active")
    assert row in active and all(r["status"] == "active" for r in active)
    assert all(r["serial"] != issued.serial for r in
               node.cli_json("cert", "list", "--status", "revoked"))
    assert node.cli_json("cert", "list", "--status", "reserved") == []
    assert node.cli_json("cert", "list", "--status", "failed") == []
    # Show, with the serial in any accepted spelling.
    show = node.cli_json("cert", "show", "--ca", "sub", "--serial", issued.serial)
    assert {k: v for k, v in show.items() if k != "pem"} == row
    assert helpers.load_cert(show["pem"]) == issued.cert
    for spelling in (issued.serial.upper(), helpers.to_colon_upper(issued.serial),
                     helpers.to_colon_upper(issued.serial).lower()):
        assert node.cli_json("cert", "show", "--ca", "sub", "--serial",
                             spelling)["serial"] == issued.serial
    # Human output.
    r = node.cli("cert", "list", "--ca", "sub")
    assert issued.serial in r.stdout.lower().replace(":", "")
    r = node.cli("cert", "show", "--ca", "sub", "--serial", issued.serial)
    assert "listed.example" in r.stdout and "active" in r.stdout
    assert "-----BEGIN CERTIFICATE-----" in r.stdout


def test_cert_list_bad_filters(pki):
    node = pki.node
    r = node.cli("cert", "list", "--status", "bogus", check=False)
    assert r.returncode in (1, 2), r
    assert "bogus" in r.stderr or "status" in r.stderr, r.stderr
    node.fail("cert", "list", "--ca", "nosuchca", match="nosuchca")


def test_cert_show_refusals(pki):
    node = pki.node
    node.fail("cert", "show", "--ca", "sub", "--serial", "xyz", match="serial")
    node.fail("cert", "show", "--ca", "sub", "--serial", "ab" * 21,
              match="serial")
    node.fail("cert", "show", "--ca", "sub", "--serial", "0" * 39 + "1",
              match=r"serial|not found|no cert|0{39}1")
    issued = pki.issue(make_csr(dns=["wrongca.example"])[1])
    node.fail("cert", "show", "--ca", "root", "--serial", issued.serial,
              match=r"serial|not found|no cert|" + issued.serial)
    node.fail("cert", "show", "--ca", "nosuchca", "--serial", issued.serial,
              match="nosuchca")


# --- bad requests: refused, named, nothing stored --------------------------

def test_garbage_csr(pki):
    pki.issue_fail(b"this is not a certificate request\n" * 10, match="CSR")
    pki.issue_fail(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                   b"-----END CERTIFICATE REQUEST-----\n", match="CSR")
    pki.issue_fail(b"\x30\x82\x01\x00" + b"\x00" * 40, match="CSR")


def test_empty_csr(pki):
    pki.issue_fail(b"", match=r"CSR|empty|size")


def test_missing_csr_file(pki):
    before = pki.node.cert_count()
    r = pki.node.cli("cert", "issue", "--ca", "sub", "--profile", "TLS_SERVER",
                     "--csr", pki.work / "does-not-exist.csr", check=False)
    assert r.returncode in (1, 2), r
    assert "does-not-exist.csr" in r.stderr, r.stderr
    assert pki.node.cert_count() == before


def test_broken_signature(pki):
    _, der = make_csr("rsa2048", dns=["sig.example"], der=True)
    bad = bytearray(der)
    bad[-5] ^= 0x01
    pki.issue_fail(bytes(bad), match=r"signature")
    _, der = make_csr("ec-p256", dns=["sig.example"], der=True)
    # Flip a byte inside the signed part (a letter of the DNS name).
    bad = bytearray(der)
    i = der.find(b"sig.example")
    bad[i] ^= 0x20
    pki.issue_fail(bytes(bad), match=r"signature")


def test_trailing_data(pki):
    _, der = make_csr("ec-p256", dns=["trail.example"], der=True)
    pki.issue_fail(der + b"\x00junk", match=r"CSR|trailing")


def test_oversized_csr(pki):
    _, csr = make_csr("ec-p256", dns=["big.example"])
    big = csr + b"#" * (200 * 1024)
    assert len(big) > 200 * 1024
    pki.issue_fail(big, match=r"CSR|size|large|big|long|bytes")


def test_rsa1024_refused(pki):
    pki.issue_fail(make_csr("rsa1024", dns=["weak.example"])[1],
                   match=r"key.?alg|size|1024|rsa")


def test_ed25519_tls_server_refused(pki):
    assert "ed25519" not in settings(pki.node, "TLS_SERVER")["key_algs"]
    pki.issue_fail(make_csr("ed25519", dns=["ed.example"])[1],
                   match=r"ed25519|key.?alg")


def test_unknown_ca(pki):
    pki.issue_fail(make_csr(dns=["x.example"])[1], ca="nosuchca",
                   match="nosuchca")


def test_unknown_profile(pki):
    pki.issue_fail(make_csr(dns=["x.example"])[1], profile="NOSUCHPROFILE",
                   match="NOSUCHPROFILE")


def test_ca_profile_refused_for_issue(pki):
    pki.issue_fail(make_csr(dns=["x.example"])[1], profile="SUBCA",
                   match=r"SUBCA|CA")


def test_missing_san_tls_server(pki):
    pki.issue_fail(make_csr(cn="nosan.example")[1],
                   match=r"subjectAltName|SAN")


def test_san_type_not_allowed(pki):
    pki.issue_fail(make_csr(dns=["ok.example"], emails=["x@example.org"])[1],
                   match=r"subjectAltName|SAN|email")


def test_malformed_dns_san(pki):
    pki.issue_fail(make_csr(dns=["bad_name..example"])[1],
                   match=r"DNS|subjectAltName")


def test_long_cn(pki):
    pki.issue_fail(make_csr(cn="a" * 65, dns=["long.example"])[1],
                   match=r"commonName|CN|64")


def test_days_above_maximum(pki):
    maxdays = settings(pki.node, "TLS_SERVER")["validity_days"]
    pki.issue_fail(make_csr(dns=["long.example"])[1], days=maxdays + 1,
                   match=r"validity|days")


def test_days_not_a_number(pki):
    pki.issue_fail(make_csr(dns=["nan.example"])[1], days="abc", code=2)


# --- profiles ----------------------------------------------------------------

def test_profile_list(pki):
    node = pki.node
    rows = node.cli_json("profile", "list")
    byname = {r["name"]: r for r in rows}
    assert BUILTINS <= set(byname)
    for name in BUILTINS:
        r = byname[name]
        assert set(r) == {"name", "builtin", "ca", "validity_days"}
        assert r["builtin"] is True
        assert r["ca"] is (name in ("ROOTCA", "SUBCA"))
        assert r["validity_days"] == settings(node, name)["validity_days"]
    out = node.cli("profile", "list").stdout
    assert all(n in out for n in BUILTINS)


def test_profile_show(pki):
    node = pki.node
    js = node.cli_json("profile", "show", "TLS_SERVER")
    assert js["name"] == "TLS_SERVER" and js["builtin"] is True
    s = js["settings"]
    assert set(s) == SETTINGS_KEYS
    assert s["san_required"] is True and s["ca"] is False
    assert s["ext_key_usage"] == ["serverAuth"]
    assert "ec-p256" in s["key_algs"] and "ed25519" not in s["key_algs"]
    assert isinstance(s["validity_days"], int)
    out = node.cli("profile", "show", "TLS_SERVER").stdout
    assert "TLS_SERVER" in out and "serverAuth" in out
    node.fail("profile", "show", "NOSUCHPROFILE", match="NOSUCHPROFILE")


def test_profile_create_and_edit(pki):
    node = pki.node
    r = node.cli("profile", "create", "WEB", "--from", "TLS_SERVER",
                 "--set", "validity_days=90",
                 "--set", "key_algs=ec-p256,rsa2048",
                 "--set", "crl_dp=http://crl.example/sub.crl,http://crl2.example/sub.crl",
                 "--set", "ocsp_url=http://ocsp.example/")
    assert r.returncode == 0
    js = node.cli_json("profile", "show", "WEB")
    assert js["name"] == "WEB" and js["builtin"] is False
    s = js["settings"]
    base = settings(node, "TLS_SERVER")
    assert s["validity_days"] == 90
    assert s["key_algs"] == ["ec-p256", "rsa2048"]
    assert s["crl_dp"] == ["http://crl.example/sub.crl",
                           "http://crl2.example/sub.crl"]
    assert s["ocsp_url"] == "http://ocsp.example/"
    for k in SETTINGS_KEYS - {"validity_days", "key_algs", "crl_dp", "ocsp_url"}:
        assert s[k] == base[k], k
    row = [p for p in node.cli_json("profile", "list") if p["name"] == "WEB"]
    assert row == [{"name": "WEB", "builtin": False, "ca": False,
                    "validity_days": 90}]

    key, csr = make_csr("ec-p256", dns=["web.example"])
    check_leaf(pki, pki.issue(csr, profile="WEB"), "WEB", key, csr)
    pki.issue_fail(make_csr("ec-p384", dns=["web.example"])[1], profile="WEB",
                   match=r"ec-p384|key.?alg")

    r = node.cli("profile", "edit", "WEB", "--set", "validity_days=30",
                 "--set", "san_required=false", "--set", "ext_key_usage=serverAuth,clientAuth")
    assert r.returncode == 0
    s = settings(node, "WEB")
    assert s["validity_days"] == 30 and s["san_required"] is False
    assert s["ext_key_usage"] == ["serverAuth", "clientAuth"]
    pki.issue_fail(make_csr(dns=["web.example"])[1], profile="WEB", days=31,
                   match=r"validity|days")
    key, csr = make_csr("ec-p256", cn="nosan-ok")
    check_leaf(pki, pki.issue(csr, profile="WEB"), "WEB", key, csr)
    # An empty value clears a list.
    node.cli("profile", "edit", "WEB", "--set", "crl_dp=", "--set", "ocsp_url=")
    s = settings(node, "WEB")
    assert s["crl_dp"] == [] and s["ocsp_url"] == ""
    c = pki.issue(make_csr(dns=["web.example"])[1], profile="WEB").cert
    assert ext(c, x509.CRLDistributionPoints) is None
    assert ext(c, x509.AuthorityInformationAccess) is None


def test_profile_refusals(pki):
    node = pki.node
    node.cli("profile", "create", "MINE", "--from", "ENDUSER")
    mine = settings(node, "MINE")
    for b in sorted(BUILTINS):
        before = settings(node, b)
        node.fail("profile", "edit", b, "--set", "validity_days=1",
                  match=r"built.?in|" + b)
        assert settings(node, b) == before
    node.fail("profile", "create", "X1", "--from", "NOSUCHPROFILE",
              match="NOSUCHPROFILE")
    node.fail("profile", "create", "MINE", "--from", "ENDUSER",
              match=r"MINE|exist")
    node.fail("profile", "create", "TLS_SERVER", "--from", "ENDUSER",
              match=r"TLS_SERVER|exist|built")
    node.fail("profile", "edit", "NOSUCHPROFILE", "--set", "validity_days=1",
              match="NOSUCHPROFILE")
    bad_sets = [
        ("frobnicate=1", r"frobnicate"),
        ("validity_days=0", r"validity_days"),
        ("validity_days=lots", r"validity_days"),
        ("key_algs=rsa1024", r"key_algs|rsa1024"),
        ("key_algs=", r"key_algs"),
        ("key_usage=digitalSignature,keyCertSign", r"keyCertSign|ca"),
        ("ext_key_usage=anyThing", r"ext_key_usage|anyThing"),
        ("san_types=dns,carrier-pigeon", r"san_types|carrier-pigeon"),
        ("ca=maybe", r"\bca\b|true|false"),
        ("ocsp_url=ftp://ocsp.example/", r"ocsp_url|URL"),
        ("crl_dp=not a url", r"crl_dp"),
        ("subject_max_attrs=0", r"subject_max_attrs"),
        ("subject_max_attrs=257", r"subject_max_attrs"),
        ("subject_max_len=lots", r"subject_max_len"),
    ]
    for assignment, match in bad_sets:
        node.fail("profile", "edit", "MINE", "--set", assignment, match=match)
        assert settings(node, "MINE") == mine, assignment
    # One bad --set among good ones changes nothing.
    node.fail("profile", "edit", "MINE", "--set", "validity_days=5",
              "--set", "frobnicate=1", match="frobnicate")
    assert settings(node, "MINE") == mine
    # A refused create leaves no profile behind.
    node.fail("profile", "create", "HALF", "--from", "ENDUSER",
              "--set", "validity_days=0", match="validity_days")
    assert "HALF" not in {p["name"] for p in node.cli_json("profile", "list")}
    node.fail("profile", "create", "bad name!", "--from", "ENDUSER",
              match="name")


# --- hostile names: NUL and control characters, huge subjects ---------------

def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def patched_csr(key, csr_der, old, new):
    """The CSR with `old` replaced by `new` (same length) in its signed
    part, signed again with key (P-256, SHA-256): for contents
    python3-cryptography refuses to encode, such as a NUL in a
    PrintableString."""
    assert len(old) == len(new)
    info = x509.load_der_x509_csr(csr_der).tbs_certrequest_bytes
    assert info.count(old) == 1
    start = csr_der.index(info)
    rest = csr_der[start + len(info):]
    # signatureAlgorithm: a SEQUENCE with a short length (ecdsa-with-SHA256).
    assert rest[0] == 0x30 and rest[1] < 0x80
    algid = rest[:2 + rest[1]]
    info = info.replace(old, new)
    sig = key.sign(info, ec.ECDSA(hashes.SHA256()))
    body = info + algid + b"\x03" + der_len(len(sig) + 1) + b"\x00" + sig
    return b"\x30" + der_len(len(body)) + body


def subject_csr(attrs, dns=("names.example",), key=None):
    """A DER CSR with this subject (NameAttributes, one RDN each)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if dns:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(d) for d in dns]), critical=False)
    csr = b.sign(key, hashes.SHA256())
    return key, csr.public_bytes(serialization.Encoding.DER)


NUL_CN = "evil.com\0.good.com"


@pytest.mark.parametrize("asn1type", [None, _ASN1Type.IA5String,
                                      _ASN1Type.T61String,
                                      _ASN1Type.BMPString,
                                      _ASN1Type.UniversalString])
def test_nul_in_cn_refused(pki, asn1type):
    """CVE-2009-2408: a CN that C code reads as "evil.com"."""
    kw = {"_type": asn1type} if asn1type else {}
    _, der = subject_csr([x509.NameAttribute(NameOID.COMMON_NAME, NUL_CN,
                                             **kw)])
    pki.issue_fail(der, match=r"subject CN: control character U\+0000")


def test_nul_in_printable_cn_refused(pki):
    key = ec.generate_private_key(ec.SECP256R1())
    _, der = subject_csr([x509.NameAttribute(
        NameOID.COMMON_NAME, "evil.comX.good.com",
        _type=_ASN1Type.PrintableString)], key=key)
    bad = patched_csr(key, der, b"comX.good", b"com\0.good")
    attr = x509.load_der_x509_csr(bad).subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)[0]
    assert attr.value == NUL_CN and attr._type == _ASN1Type.PrintableString
    pki.issue_fail(bad, match=r"subject CN: control character U\+0000")
    # The same request without the patch issues.
    pki.issue(der)


@pytest.mark.parametrize("value,code", [("a\x1bb", "001B"), ("a\nb", "000A"),
                                        ("a\x7f", "007F"),
                                        ("a\u0085b", "0085"),
                                        ("\u009b2J", "009B")])
def test_control_chars_in_subject_refused(pki, value, code):
    _, der = subject_csr([
        x509.NameAttribute(NameOID.COMMON_NAME, "ok.example"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, value)])
    pki.issue_fail(der, match=rf"subject O: control character U\+{code}")


@pytest.mark.parametrize("name", [x509.DNSName("a\x01.example"),
                                  x509.DNSName("evil.com\0.good.com"),
                                  x509.RFC822Name("a@evil.com\0.good.com"),
                                  x509.UniformResourceIdentifier(
                                      "https://good.example/\r\nX: y")])
def test_control_char_in_san_refused(pki, name):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "san.example")])
    ).add_extension(x509.SubjectAlternativeName([name]), critical=False
                    ).sign(key, hashes.SHA256())
    what = {x509.DNSName: "dNSName", x509.RFC822Name: "rfc822Name",
            x509.UniformResourceIdentifier: "URI"}[type(name)]
    pki.issue_fail(csr.public_bytes(serialization.Encoding.PEM),
                   profile="TLS_CLIENT",
                   match=rf"subjectAltName {what}: control character")


def test_1000_rdn_subject_refused(pki):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                f"unit-{i:04d}-xxxxxx") for i in range(1000)]
    _, der = subject_csr(attrs)
    assert len(der) > 22 * 1000
    msg = pki.issue_fail(der, match=r"subject_max_attrs")
    assert "1000" in msg and "32" in msg, msg


def test_subject_limits(pki):
    node = pki.node
    st = settings(node, "TLS_SERVER")
    assert st["subject_max_attrs"] == 32 and st["subject_max_len"] == 1024

    def ous(n, width):
        return [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                   f"{i:02d}".ljust(width, "x"))
                for i in range(n)]

    # 32 attributes issue; 33 do not.
    key, der = subject_csr(ous(32, 4))
    check_leaf(pki, pki.issue(der), "TLS_SERVER", key, der)
    pki.issue_fail(subject_csr(ous(33, 4))[1], match=r"subject_max_attrs")
    # "OU=" + 60 + "," each: 16 print in 1023 bytes (issues), 17 in 1087.
    key, der = subject_csr(ous(16, 60))
    c = check_leaf(pki, pki.issue(der), "TLS_SERVER", key, der)
    assert len(c.subject.rfc4514_string()) == 1023
    long_key, long_der = subject_csr(ous(17, 60))
    msg = pki.issue_fail(long_der, match=r"subject_max_len")
    assert "1087" in msg and "1024" in msg, msg
    # Both limits are the profile's to set.
    node.cli("profile", "create", "BIGSUBJ", "--from", "TLS_SERVER",
             "--set", "subject_max_len=1087")
    s = settings(node, "BIGSUBJ")
    assert s["subject_max_len"] == 1087 and s["subject_max_attrs"] == 32
    check_leaf(pki, pki.issue(long_der, profile="BIGSUBJ"), "BIGSUBJ",
               long_key, long_der)
    node.cli("profile", "edit", "BIGSUBJ", "--set", "subject_max_attrs=16")
    assert settings(node, "BIGSUBJ")["subject_max_attrs"] == 16
    pki.issue_fail(long_der, profile="BIGSUBJ",
                   match=r"more than 16 \(subject_max_attrs\)")


def test_undecodable_cn_refused(pki):
    """A UTF8String that is not UTF-8: OpenSSL refuses to decode the
    request at all, so it is refused as a bad CSR."""
    key = ec.generate_private_key(ec.SECP256R1())
    _, der = subject_csr([x509.NameAttribute(NameOID.COMMON_NAME,
                                             "bad.exampleX")], key=key)
    pki.issue_fail(patched_csr(key, der, b"exampleX", b"example\xff"),
                   match=r"CSR")
