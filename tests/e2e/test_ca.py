"""Certificate authorities: creation, their certificates and chains, and the
ways creation can be refused."""
import datetime
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import helpers
from helpers import Pki, ext, fingerprint, load_cert, make_csr, split_pems

TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
SLACK = datetime.timedelta(minutes=2)


def _t(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")


def _check_ca_json(js, cert, name, subject, issuer, issuer_dn, key):
    assert js["name"] == name
    assert js["subject"] == subject
    # The contract does not say whether "issuer" is the issuing CA's name or
    # its DN; the node gives the name.
    assert js["issuer"] in (issuer, issuer_dn)
    assert js["token"] == Pki.TOKEN
    assert js["key"] == key
    assert re.fullmatch(r"[0-9a-f]{40}", js["serial"]), js["serial"]
    assert int(js["serial"], 16) == cert.serial_number
    assert re.fullmatch(TIME_RE, js["not_before"]), js
    assert re.fullmatch(TIME_RE, js["not_after"]), js
    assert _t(js["not_before"]) == cert.not_valid_before
    assert _t(js["not_after"]) == cert.not_valid_after
    assert js["fingerprint"].replace(":", "").lower() == fingerprint(cert)
    assert isinstance(js["crl_period"], int) and js["crl_period"] > 0


def test_root_ca(pki):
    c = pki.root_cert
    _check_ca_json(pki.root, c, "root", Pki.ROOT_DN, "root", Pki.ROOT_DN,
                   "root-key")
    assert c.subject.rfc4514_string() == Pki.ROOT_DN
    assert c.issuer == c.subject
    assert c.version == x509.Version.v3
    bc = ext(c, x509.BasicConstraints)
    assert bc and bc.critical and bc.value.ca is True
    assert bc.value.path_length is None
    ku = ext(c, x509.KeyUsage)
    assert ku and ku.critical
    assert ku.value.key_cert_sign and ku.value.crl_sign
    ski = ext(c, x509.SubjectKeyIdentifier)
    assert ski is not None
    aki = ext(c, x509.AuthorityKeyIdentifier)
    if aki is not None:
        assert aki.value.key_identifier == ski.value.digest
    assert 0 < c.serial_number < 2 ** 159
    c.public_key().verify(c.signature, c.tbs_certificate_bytes,
                          ec.ECDSA(c.signature_hash_algorithm))
    # not_before may be backdated a little for clock skew; not_after is
    # the profile's maximum from now.
    maxdays = pki.node.cli_json("profile", "show", "ROOTCA")["settings"]["validity_days"]
    assert c.not_valid_before <= helpers.utcnow() + SLACK
    assert c.not_valid_before >= helpers.utcnow() - datetime.timedelta(hours=1)
    assert abs(c.not_valid_after - helpers.utcnow()
               - datetime.timedelta(days=maxdays)) < datetime.timedelta(hours=1)
    r = helpers.openssl_verify(pki.root_pem, None, pki.root_pem)
    assert r.returncode == 0, r.stdout + r.stderr


def test_sub_ca(pki):
    c, root = pki.sub_cert, pki.root_cert
    _check_ca_json(pki.sub, c, "sub", Pki.SUB_DN, "root", Pki.ROOT_DN,
                   "sub-key")
    assert pki.sub["crl_period"] == Pki.SUB_CRL_PERIOD
    assert c.subject.rfc4514_string() == Pki.SUB_DN
    assert c.issuer == root.subject
    assert isinstance(c.public_key(), ec.EllipticCurvePublicKey)
    assert c.public_key().curve.name == "secp384r1"
    bc = ext(c, x509.BasicConstraints)
    assert bc and bc.critical and bc.value.ca is True
    sub_settings = pki.node.cli_json("profile", "show", "SUBCA")["settings"]
    assert bc.value.path_length == sub_settings["path_len"] == 0
    aki = ext(c, x509.AuthorityKeyIdentifier)
    assert aki.value.key_identifier == \
        ext(root, x509.SubjectKeyIdentifier).value.digest
    root.public_key().verify(c.signature, c.tbs_certificate_bytes,
                             ec.ECDSA(c.signature_hash_algorithm))
    r = helpers.openssl_verify(pki.root_pem, None, pki.sub_pem)
    assert r.returncode == 0, r.stdout + r.stderr
    r = helpers.certtool_verify(pki.root_pem, pki.sub_pem)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ca_cert_chain(pki):
    r = pki.node.cli("ca", "cert", "sub", "--chain")
    certs = split_pems(r.stdout)
    assert [c.subject for c in certs] == [pki.sub_cert.subject,
                                          pki.root_cert.subject]
    assert certs[0] == pki.sub_cert and certs[1] == pki.root_cert
    assert len(split_pems(pki.node.cli("ca", "cert", "sub").stdout)) == 1
    assert split_pems(pki.node.cli("ca", "cert", "root", "--chain").stdout) \
        == [pki.root_cert]


def test_ca_list_and_show(pki):
    node = pki.node
    cas = {c["name"]: c for c in node.cli_json("ca", "list")}
    assert cas["root"] == pki.root and cas["sub"] == pki.sub
    r = node.cli("ca", "list")
    assert "root" in r.stdout and "sub" in r.stdout
    assert node.cli_json("ca", "show", "sub") == pki.sub
    r = node.cli("ca", "show", "sub")
    assert "sub" in r.stdout and "Test Sub" in r.stdout, r.stdout
    node.fail("ca", "show", "nosuchca", match="nosuchca")
    node.fail("ca", "cert", "nosuchca", match="nosuchca")


def test_ca_create_human(pki):
    node = pki.node
    node.cli("token", "genkey", Pki.TOKEN, "human-key", "--alg", "ec-p256")
    r = node.cli("ca", "create", "human", "--dn", "CN=Human Root",
                 "--token", Pki.TOKEN, "--key", "human-key")
    assert "human" in r.stdout and "Human Root" in r.stdout, r.stdout


def test_validity_option(pki):
    node = pki.node
    node.cli("token", "genkey", Pki.TOKEN, "v30", "--alg", "ec-p256")
    js = node.cli_json("ca", "create", "v30", "--dn", "CN=Thirty", "--token",
                       Pki.TOKEN, "--key", "v30", "--validity", "30",
                       "--crl-period", "7200")
    assert js["crl_period"] == 7200
    d = _t(js["not_after"]) - helpers.utcnow()
    assert abs(d - datetime.timedelta(days=30)) < SLACK


@pytest.mark.parametrize("alg", ["rsa2048", "ed25519"])
def test_other_key_algorithms(pki, alg):
    node = pki.node
    node.cli("token", "genkey", Pki.TOKEN, f"root-{alg}", "--alg", alg)
    node.cli("ca", "create", f"root-{alg}", "--dn", f"CN=Root {alg},O=Example",
             "--token", Pki.TOKEN, "--key", f"root-{alg}")
    rootp = node.write(f"root-{alg}.pem", node.cli("ca", "cert", f"root-{alg}").stdout)
    rc = load_cert(rootp.read_bytes())
    if alg == "ed25519":
        assert isinstance(rc.public_key(), ed25519.Ed25519PublicKey)
    else:
        assert isinstance(rc.public_key(), rsa.RSAPublicKey)
        assert rc.public_key().key_size == 2048
    leaf = pki.issue(make_csr(cn="Alice", emails=["alice@example.org"])[1],
                     profile="ENDUSER", ca=f"root-{alg}")
    assert leaf.cert.issuer == rc.subject
    r = helpers.openssl_verify(rootp, None, leaf.path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = helpers.certtool_verify(rootp, leaf.path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_custom_ca_profile(pki):
    node = pki.node
    node.cli("profile", "create", "SUBCA_PL1", "--from", "SUBCA",
             "--set", "path_len=1", "--set", "validity_days=100")
    node.cli("token", "genkey", Pki.TOKEN, "pl1", "--alg", "ec-p256")
    js = node.cli_json("ca", "create", "pl1", "--dn", "CN=PL1", "--token",
                       Pki.TOKEN, "--key", "pl1", "--signed-by", "root",
                       "--profile", "SUBCA_PL1")
    c = load_cert(node.cli("ca", "cert", "pl1").stdout)
    assert ext(c, x509.BasicConstraints).value.path_length == 1
    assert _t(js["not_after"]) <= helpers.utcnow() + datetime.timedelta(days=100) + SLACK
    # A CA under pl1 is within its path length.
    node.cli("token", "genkey", Pki.TOKEN, "pl1-child", "--alg", "ec-p256")
    node.cli("ca", "create", "pl1-child", "--dn", "CN=PL1 child", "--token",
             Pki.TOKEN, "--key", "pl1-child", "--signed-by", "pl1")
    chain = node.cli("ca", "cert", "pl1-child", "--chain").stdout
    assert [x.subject.rfc4514_string() for x in split_pems(chain)] == \
        ["CN=PL1 child", "CN=PL1", Pki.ROOT_DN]
    child = node.write("pl1-child.pem", chain)
    inter = node.write("pl1.pem", node.cli("ca", "cert", "pl1").stdout)
    r = helpers.openssl_verify(pki.root_pem, inter, child)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ca_under_pathlen_zero_refused(pki):
    # sub has pathLenConstraint 0: a CA certificate under it would make a
    # chain every verifier rejects (RFC 5280 4.2.1.9).
    node = pki.node
    node.cli("token", "genkey", Pki.TOKEN, "too-deep", "--alg", "ec-p256")
    before = node.cli_json("ca", "list")
    node.fail("ca", "create", "too-deep", "--dn", "CN=Too Deep", "--token",
              Pki.TOKEN, "--key", "too-deep", "--signed-by", "sub",
              match=r"path")
    assert node.cli_json("ca", "list") == before


def test_dn_escapes_and_multivalued_rdn(pki):
    node = pki.node
    node.cli("token", "genkey", Pki.TOKEN, "esc", "--alg", "ec-p256")
    dn = r"CN=Smith\, John+UID=jsmith,OU=R&D \"Lab\",O=Exämple AB,C=SE"
    node.cli("ca", "create", "esc", "--dn", dn, "--token", Pki.TOKEN,
             "--key", "esc")
    c = load_cert(node.cli("ca", "cert", "esc").stdout)
    rdns = list(c.subject.rdns)
    assert len(rdns) == 4
    # RFC 4514 lists the most specific RDN first; DER has it last.
    first = {a.oid: a.value for a in rdns[-1]}
    assert first == {x509.NameOID.COMMON_NAME: "Smith, John",
                     x509.NameOID.USER_ID: "jsmith"}
    assert [a.value for a in rdns[2]] == ['R&D "Lab"']
    assert [a.value for a in rdns[1]] == ["Exämple AB"]
    assert [a.value for a in rdns[0]] == ["SE"]
    org = rdns[1].get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0]
    assert org._type == x509.name._ASN1Type.UTF8String
    country = rdns[0].get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)[0]
    assert country._type == x509.name._ASN1Type.PrintableString
    js = node.cli_json("ca", "show", "esc")
    assert "Smith" in js["subject"] and "Exämple AB" in js["subject"]


@pytest.mark.parametrize("dn", [
    "CN=Root,garbage",		# no '='
    "CN",
    "=Root",
    "CN=",			# empty value
    "CN=Root,,O=x",
    "XYZZY=Root",		# unknown attribute type
    "C=Sweden",			# C must be two letters
    "CN=Root\\",		# dangling escape
])
def test_dn_errors(pki, dn):
    node = pki.node
    node.cli("token", "genkey", Pki.TOKEN, "dnkey", "--alg", "ec-p256",
             check=False)
    before = node.cli_json("ca", "list")
    node.fail("ca", "create", "dnerr", "--dn", dn, "--token", Pki.TOKEN,
              "--key", "dnkey", match=r"DN|XYZZY|CN|C:|country|attribute|value")
    assert node.cli_json("ca", "list") == before


def test_ca_create_refusals(pki):
    node = pki.node
    node.cli("token", "genkey", Pki.TOKEN, "spare", "--alg", "ec-p256")
    node.cli("token", "genkey", Pki.TOKEN, "rsa1", "--alg", "rsa2048")
    before = node.cli_json("ca", "list")
    base = ["--token", Pki.TOKEN, "--key", "spare"]
    node.fail("ca", "create", "root", "--dn", "CN=Dup", *base,
              match=r"root|exist")
    node.fail("ca", "create", "x1", "--dn", "CN=x", "--token", "nosuchtok",
              "--key", "spare", match=r"nosuchtok")
    node.fail("ca", "create", "x1", "--dn", "CN=x", "--token", Pki.TOKEN,
              "--key", "nosuchkey", match=r"nosuchkey")
    node.fail("ca", "create", "x1", "--dn", "CN=x", *base, "--signed-by",
              "nosuchca", match=r"nosuchca")
    node.fail("ca", "create", "x1", "--dn", "CN=x", "--token", Pki.TOKEN,
              "--key", "root-key", match=r"root-key|used|root")
    node.fail("ca", "create", "x1", "--dn", "CN=x", *base, "--profile",
              "TLS_SERVER", match=r"TLS_SERVER|CA")
    node.fail("ca", "create", "x1", "--dn", "CN=x", *base, "--profile",
              "NOSUCHPROFILE", match=r"NOSUCHPROFILE")
    node.fail("ca", "create", "x1", "--dn", "CN=x", *base, "--validity",
              "99999", match=r"validity|days")
    maxdays = node.cli_json("profile", "show", "SUBCA")["settings"]["validity_days"]
    node.fail("ca", "create", "x1", "--dn", "CN=x", *base, "--signed-by",
              "root", "--validity", str(maxdays + 1), match=r"validity|days")
    node.fail("ca", "create", "bad name!", "--dn", "CN=x", *base,
              match=r"name")
    node.fail("ca", "create", "x1", "--dn", "CN=x", *base, "--crl-period",
              "5", match=r"CRL|period")
    assert node.cli_json("ca", "list") == before
