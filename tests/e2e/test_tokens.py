"""Crypto tokens: create, PINs, activation, key generation and deletion."""
import hashlib
import re

import pytest

import helpers
from helpers import make_csr


def _token(node, name):
    toks = [t for t in node.cli_json("token", "list") if t["name"] == name]
    assert len(toks) == 1, f"token {name} listed {len(toks)} times"
    return toks[0]


def test_create_and_list(mnode):
    r = mnode.cli("token", "create", "alpha", "--pin", "12345678")
    assert r.returncode == 0
    t = _token(mnode, "alpha")
    assert t == {"name": "alpha", "active": True, "keys": []}
    r = mnode.cli("token", "list")
    assert "alpha" in r.stdout


def test_create_json_output(mnode):
    r = mnode.cli("token", "create", "jtok", "--pin", "12345678", "--json")
    if r.stdout.strip():
        helpers.parse_json(r)
    assert _token(mnode, "jtok")["active"] is True


def test_pin_file(mnode):
    pf = mnode.write("pin.txt", "from-a-file-4321\n")
    mnode.cli("token", "create", "filetok", "--pin-file", pf)
    mnode.cli("token", "deactivate", "filetok")
    mnode.cli("token", "activate", "filetok", "--pin-file", pf)
    assert _token(mnode, "filetok")["active"] is True
    # The same PIN given directly works too (a trailing newline is not part
    # of the PIN).
    mnode.cli("token", "activate", "filetok", "--pin", "from-a-file-4321")


def test_create_duplicate(mnode):
    mnode.cli("token", "create", "dup", "--pin", "12345678")
    mnode.fail("token", "create", "dup", "--pin", "56781234", match=r"dup|exist")


@pytest.mark.parametrize("pin", ["123", "x" * 257])
def test_pin_length_refused(mnode, pin):
    mnode.fail("token", "create", "shortpin", "--pin", pin, match=r"PIN")
    assert all(t["name"] != "shortpin" for t in mnode.cli_json("token", "list"))


def test_short_pin_refused_for_new_token(mnode):
    """A new token needs a PIN of at least 8 characters (hostile test F6):
    seven are refused with a clear message and a non-zero exit, and no
    token is made."""
    err = mnode.fail("token", "create", "pin7", "--pin", "1234567",
                     match=r"PIN must have 8 to 256 characters")
    assert "pin7" not in err or "PIN" in err
    pf = mnode.write("short-pin.txt", "abcdefg\n")
    mnode.fail("token", "create", "pin7f", "--pin-file", pf,
               match=r"PIN must have 8")
    names = [t["name"] for t in mnode.cli_json("token", "list")]
    assert "pin7" not in names and "pin7f" not in names


def test_pin_length_limits_ok(mnode):
    mnode.cli("token", "create", "pin8", "--pin", "abcdefgh")
    mnode.cli("token", "create", "pin256", "--pin", "p" * 256)
    mnode.cli("token", "deactivate", "pin256")
    mnode.cli("token", "activate", "pin256", "--pin", "p" * 256)


def test_bad_token_name(mnode):
    mnode.fail("token", "create", "bad name/..", "--pin", "12345678",
               match=r"name")


def test_wrong_pin(mnode):
    mnode.cli("token", "create", "pintok", "--pin", "right-pin")
    mnode.cli("token", "genkey", "pintok", "k", "--alg", "ec-p256")
    mnode.cli("token", "deactivate", "pintok")
    assert _token(mnode, "pintok")["active"] is False
    mnode.fail("token", "activate", "pintok", "--pin", "wrong-pin", match=r"PIN")
    assert _token(mnode, "pintok")["active"] is False
    mnode.cli("token", "activate", "pintok", "--pin", "right-pin")
    assert _token(mnode, "pintok")["active"] is True
    # A wrong PIN for an active token is refused too.
    mnode.fail("token", "activate", "pintok", "--pin", "wrong-pin", match=r"PIN")


def test_failed_activations_slow_down(mnode):
    """PIN guessing is rate limited per token (hostile test F7): after
    three failures in a row each one doubles the wait before the next
    attempt (2 s, 4 s, ...), which is refused without testing the PIN;
    failures are logged, not only audited. A success resets the count.
    The waits are seconds long so a slow machine cannot step past them."""
    import time
    mnode.cli("token", "create", "guess", "--pin", "right-pin-1")
    mnode.cli("token", "create", "other", "--pin", "other-pin-1")
    mnode.cli("token", "deactivate", "guess")
    for _ in range(4):
        mnode.fail("token", "activate", "guess", "--pin", "nope",
                   match=r"wrong PIN")
    # The fourth failure set a 2 s wait: even the right PIN is refused.
    mnode.fail("token", "activate", "guess", "--pin", "right-pin-1",
               match=r"too many failed activations; retry in [12] s")
    # Per token: another token is not slowed down.
    mnode.cli("token", "activate", "other", "--pin", "other-pin-1")
    time.sleep(2.2)
    mnode.fail("token", "activate", "guess", "--pin", "nope",
               match=r"wrong PIN")
    # The fifth doubled it.
    mnode.fail("token", "activate", "guess", "--pin", "right-pin-1",
               match=r"retry in [34] s")
    time.sleep(4.2)
    mnode.cli("token", "activate", "guess", "--pin", "right-pin-1")
    assert _token(mnode, "guess")["active"] is True
    # Reset: three more failures pass without a wait.
    for _ in range(3):
        mnode.fail("token", "activate", "guess", "--pin", "nope",
                   match=r"wrong PIN")
    mnode.cli("token", "activate", "guess", "--pin", "right-pin-1")
    log = mnode.log()
    assert re.search(r"token guess: activation by .* failed \(5 in a row; "
                     r"next attempt delayed\)", log), log[-2000:]
    assert re.search(r"token guess: activation by .* refused", log)


def test_pin_not_disclosed(mnode):
    pin = "Do-Not-Log-This-PIN-8472"
    mnode.cli("token", "create", "secret", "--pin", pin)
    mnode.cli("token", "deactivate", "secret")
    mnode.cli("token", "activate", "secret", "--pin", pin)
    mnode.fail("token", "activate", "secret", "--pin", pin + "x", match="PIN")
    out = mnode.cli("audit", "list", "--json").stdout
    assert pin not in out
    assert pin not in mnode.log()
    assert pin not in mnode.cli("token", "list", "--json").stdout


def test_unknown_token(mnode):
    mnode.fail("token", "activate", "nosuchtok", "--pin", "12345678",
               match=r"nosuchtok")
    mnode.fail("token", "deactivate", "nosuchtok", match=r"nosuchtok")
    mnode.fail("token", "genkey", "nosuchtok", "k", "--alg", "ec-p256",
               match=r"nosuchtok")
    mnode.fail("token", "delkey", "nosuchtok", "k", match=r"nosuchtok")


@pytest.mark.parametrize("alg", ["ec-p256", "ec-p384", "rsa2048", "rsa3072",
                                 "rsa4096", "ed25519"])
def test_genkey(mnode, alg):
    tok = "keys-" + alg
    mnode.cli("token", "create", tok, "--pin", "12345678")
    js = mnode.cli_json("token", "genkey", tok, "k1", "--alg", alg)
    assert js["token"] == tok and js["alias"] == "k1" and js["alg"] == alg
    assert re.fullmatch(r"[0-9a-f]{64}", js["public_key_sha256"]), js
    t = _token(mnode, tok)
    assert t["keys"] == [{"alias": "k1", "alg": alg}]


def test_genkey_human_and_delkey(mnode):
    mnode.cli("token", "create", "hk", "--pin", "12345678")
    r = mnode.cli("token", "genkey", "hk", "human-key", "--alg", "ec-p256")
    assert "human-key" in r.stdout
    mnode.cli("token", "genkey", "hk", "other", "--alg", "ed25519")
    mnode.fail("token", "genkey", "hk", "other", "--alg", "ec-p256",
               match=r"other|exist")
    r = mnode.cli("token", "delkey", "hk", "human-key")
    assert r.returncode == 0
    assert _token(mnode, "hk")["keys"] == [{"alias": "other", "alg": "ed25519"}]
    mnode.fail("token", "delkey", "hk", "human-key", match=r"human-key")
    js = mnode.cli("token", "delkey", "hk", "other", "--json")
    if js.stdout.strip():
        helpers.parse_json(js)
    assert _token(mnode, "hk")["keys"] == []


def test_genkey_distinct_keys(mnode):
    mnode.cli("token", "create", "distinct", "--pin", "12345678")
    a = mnode.cli_json("token", "genkey", "distinct", "a", "--alg", "ec-p256")
    b = mnode.cli_json("token", "genkey", "distinct", "b", "--alg", "ec-p256")
    assert a["public_key_sha256"] != b["public_key_sha256"]


def test_genkey_bad_alg(mnode):
    mnode.cli("token", "create", "badalg", "--pin", "12345678")
    r = mnode.cli("token", "genkey", "badalg", "k", "--alg", "rsa1024",
                  check=False)
    # Either the CLI (usage) or the node refuses; both must name it.
    assert r.returncode in (1, 2), r
    assert "rsa1024" in r.stderr or "alg" in r.stderr, r.stderr
    assert _token(mnode, "badalg")["keys"] == []


def test_genkey_bad_alias(mnode):
    mnode.cli("token", "create", "badalias", "--pin", "12345678")
    mnode.fail("token", "genkey", "badalias", "no/slash", "--alg", "ec-p256",
               match=r"alias")


def test_genkey_inactive(mnode):
    mnode.cli("token", "create", "sleepy", "--pin", "12345678")
    mnode.cli("token", "deactivate", "sleepy")
    mnode.fail("token", "genkey", "sleepy", "k", "--alg", "ec-p256",
               match=r"active|sleepy")
    assert _token(mnode, "sleepy")["keys"] == []


def test_public_key_sha256_matches_ca_cert(mnode):
    # public_key_sha256 is the SHA-256 of the SubjectPublicKeyInfo DER:
    # check against the self-signed CA certificate made with the key.
    from cryptography.hazmat.primitives import serialization
    mnode.cli("token", "create", "spki", "--pin", "12345678")
    js = mnode.cli_json("token", "genkey", "spki", "k", "--alg", "ec-p256")
    mnode.cli("ca", "create", "spki-ca", "--dn", "CN=SPKI", "--token", "spki",
              "--key", "k")
    cert = helpers.load_cert(mnode.cli("ca", "cert", "spki-ca").stdout)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(spki).hexdigest() == js["public_key_sha256"]
    # A key in use by a CA cannot be deleted.
    mnode.fail("token", "delkey", "spki", "k", match=r"spki-ca|used|CA")
    assert _token(mnode, "spki")["keys"] == [{"alias": "k", "alg": "ec-p256"}]


def test_deactivated_token_blocks_issuance(fresh_pki):
    pki, node = fresh_pki, fresh_pki.node
    csr = make_csr(dns=["a.example"])[1]
    pki.issue(csr)
    r = node.cli("token", "deactivate", pki.TOKEN)
    assert r.returncode == 0
    assert _token(node, pki.TOKEN)["active"] is False
    pki.issue_fail(csr, match=r"token|active")
    pki.issue_fail(csr, match=r"token|active")
    node.fail("crl", "create", "--ca", "sub", match=r"token|active")
    node.fail("ca", "create", "sub2", "--dn", "CN=Sub2", "--token", pki.TOKEN,
              "--key", "sub-key", "--signed-by", "root",
              match=r"token|active|used")
    node.fail("token", "activate", pki.TOKEN, "--pin", "not-the-pin", match="PIN")
    pki.issue_fail(csr, match=r"token|active")
    r = node.cli("token", "activate", pki.TOKEN, "--pin", pki.PIN)
    assert r.returncode == 0
    leaf = pki.issue(csr)
    assert helpers.openssl_verify(pki.root_pem, pki.sub_pem,
                                  leaf.path).returncode == 0


def test_key_registry_both_ways(mnode):
    """A key is used by CAs or by key bindings, never both (issue 6 item
    8): `ca create` refuses a key binding's key, `keybinding create` a CA's
    key, and neither creates anything."""
    mnode.cli("token", "create", "reg", "--pin", "registry-pin")
    mnode.cli("token", "genkey", "reg", "tls", "--alg", "ec-p256")
    mnode.cli("token", "genkey", "reg", "sign", "--alg", "ec-p256")
    mnode.cli("keybinding", "create", "reg-tls", "--token", "reg", "--key",
              "tls")
    mnode.fail("ca", "create", "reg-ca", "--dn", "CN=Reg", "--token", "reg",
               "--key", "tls", match=r"key binding reg-tls")
    mnode.cli("ca", "create", "reg-ca", "--dn", "CN=Reg", "--token", "reg",
              "--key", "sign")
    mnode.fail("keybinding", "create", "reg-tls2", "--token", "reg", "--key",
               "sign", match=r"signing key of CA reg-ca")
    names = [c["name"] for c in mnode.cli_json("ca", "list")]
    assert "reg-ca" in names and names.count("reg-ca") == 1
    kbs = [k["name"] for k in mnode.cli_json("keybinding", "list")]
    assert "reg-tls" in kbs and "reg-tls2" not in kbs
