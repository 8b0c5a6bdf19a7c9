"""End-to-end: a CA node publishes to a VA node through its publisher
queue (issue 8): outages, a CA killed mid-delivery, a role that does not
cover every CA. Real nodes on 127.0.0.1; the VA's state is read back with
its own CLI.
"""
import concurrent.futures
import json
import os
import signal
import time

import base64
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

import helpers
from conftest import Node, _LIVE
from test_peer import setup_va, write

N_ISSUE = int(os.environ.get("SP_TEST_PUB_N", "1000"))
N_REVOKE = N_ISSUE // 10


class FixedPortNode(Node):
    """A node whose peer listener keeps its port across restarts."""

    def __init__(self, base, name, listen=False):
        super().__init__(base, name)
        self.port = self.oport = None
        if listen:
            self.port = helpers.free_port()
            self.oport = helpers.free_port()
            conf = self.dir / "sallyport.conf"
            text = conf.read_text()
            with open(conf, "a") as f:
                if "[peer]" not in text:
                    f.write("\n[peer]\n")
                f.write(f"listen = 127.0.0.1:{self.port}\n")
                f.write(f"\n[va]\nlisten = 127.0.0.1:{self.oport}\n")


def wait_for(pred, deadline, what):
    end = time.monotonic() + deadline
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            pytest.fail(f"{what() if callable(what) else what} within "
                        f"{deadline}s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("pub")
    work = base / "work"
    work.mkdir()
    ca = va = None
    try:
        ca = FixedPortNode(base / "ca", "ca-node")
        va = FixedPortNode(base / "va", "va-node", listen=True)
        ca.start()
        va.start()
        ca.cli("token", "create", "T", "--pin", "12345678")
        for k in ("mgmt", "tls", "pub", "other"):
            ca.cli("token", "genkey", "T", k, "--alg", "ec-p256")
        ca.cli("ca", "create", "Mgmt", "--dn", "CN=Test Management CA",
               "--token", "T", "--key", "mgmt")
        ca.cli("ca", "create", "Pub", "--dn", "CN=Published CA",
               "--token", "T", "--key", "pub")
        ca.cli("ca", "create", "Other", "--dn", "CN=Other CA",
               "--token", "T", "--key", "other")
        mgmt = write(work / "mgmt.pem", ca.cli("ca", "cert", "Mgmt").stdout)
        ca.cli("keybinding", "create", "ca-tls", "--token", "T", "--key",
               "tls")
        csr = write(work / "ca-tls.csr", ca.cli(
            "keybinding", "csr", "ca-tls", "--dn", "CN=ca-node").stdout)
        pem = write(work / "ca-tls.pem", ca.cli(
            "cert", "issue", "--ca", "Mgmt", "--profile", "TLS_CLIENT",
            "--csr", csr).stdout)
        ca.cli("keybinding", "install-cert", "ca-tls", "--cert", pem,
               "--chain", mgmt)
        ca.cli("trust", "add", "--cert", mgmt)
        setup_va(ca, va, work, mgmt)
        va.cli("peer", "incoming", "enable")
        ca.cli("peer", "connector", "add", "va", "--url",
               f"https://127.0.0.1:{va.port}/peer/v1", "--auth", "ca-tls")
        ca.cli("peer", "ping", "va", check=False)
        rows = wait_for(lambda: [r for r in va.cli_json(
            "peer", "incoming", "list") if r["subject"] == "CN=ca-node"],
            10, "the CA never showed in the VA's incoming list")
        va.cli("peer", "incoming", "authorize", str(rows[0]["id"]),
               "--new-role", "CA1", "--rules", "va")
        assert ca.cli_json("peer", "ping", "va")["ok"] == 1
        _, leaf = helpers.make_csr("ec-p256", cn="leaf.example",
                                   dns=["leaf.example"])
        leaf_csr = write(work / "leaf.csr", leaf)
        # The VA's OCSP signer for Pub, issued with OCSPSIGNER.
        va.cli("token", "genkey", "V", "ocsp", "--alg", "ec-p256")
        va.cli("keybinding", "create", "ocsp", "--token", "V", "--key",
               "ocsp", "--type", "ocsp")
        ocsr = write(work / "ocsp.csr", va.cli(
            "keybinding", "csr", "ocsp", "--dn", "CN=Pub OCSP").stdout)
        opem = write(work / "ocsp.pem", ca.cli(
            "cert", "issue", "--ca", "Pub", "--profile", "OCSPSIGNER",
            "--csr", ocsr).stdout)
        pubpem = write(work / "pub.pem", ca.cli("ca", "cert", "Pub").stdout)
        va.cli("keybinding", "install-cert", "ocsp", "--cert", opem,
               "--chain", pubpem)
        ca.cli("publisher", "add", "vapub", "--connector", "va", "--ca",
               "Pub", "--ca", "Other")
        yield ca, va, work, leaf_csr
        va.stop()
        ca.stop()
    finally:
        for n in (ca, va):
            if n is not None:
                n.kill()
                if n in _LIVE:
                    _LIVE.remove(n)


def issue(ca, csr, n, cname="Pub", threads=6):
    def one(_):
        pem = ca.cli("cert", "issue", "--ca", cname, "--profile",
                     "TLS_SERVER", "--csr", csr).stdout
        return helpers.serial_hex(helpers.load_cert(pem))
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(one, range(n)))


def revoke(ca, serials, cname="Pub", threads=6):
    def one(s):
        ca.cli("cert", "revoke", "--ca", cname, "--serial", s, "--reason",
               "keyCompromise")
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, serials))


def start_va(va):
    """A restarted node knows no PIN: its TLS key is usable once the
    operator activates the token again."""
    va.start()
    va.cli("token", "activate", "V", "--pin", "56781234")


def publisher(ca):
    return ca.cli_json("publisher", "show", "vapub")


def va_statuses(va, issuer):
    rows = va.cli_json("va", "cert", "list", "--issuer", issuer, "--limit",
                       "10000")
    return {r["serial"]: r for r in rows}


def norm(s):
    return s.lower().lstrip("0") or "0"


def check_statuses(va, issuer, good, revoked):
    st = {norm(k): v for k, v in va_statuses(va, issuer).items()}
    for s in good:
        assert st[norm(s)]["status"] == "good", (s, st.get(norm(s)))
    for s in revoked:
        assert st[norm(s)]["status"] == "revoked", (s, st.get(norm(s)))


def test_published_live(env):
    ca, va, _, csr = env
    [s] = issue(ca, csr, 1)
    wait_for(lambda: publisher(ca)["queue"] == 0, 20,
             "the queue never drained")
    check_statuses(va, "Pub", [s], [])
    revoke(ca, [s])
    wait_for(lambda: norm(s) in {norm(k) for k, v in va_statuses(
        va, "Pub").items() if v["status"] == "revoked"}, 10,
        "the revocation never reached the VA")


def test_drain_after_outage(env):
    """VA down while the CA issues 1000 and revokes 100; VA back: the
    queue drains and every one of the 1100 statuses is right."""
    ca, va, _, csr = env
    va.stop()
    serials = issue(ca, csr, N_ISSUE)
    gone = serials[:N_REVOKE]
    revoke(ca, gone)
    p = publisher(ca)
    assert p["queue"] >= N_ISSUE + N_REVOKE, p
    start_va(va)
    ca.cli("publisher", "retry", "vapub")
    wait_for(lambda: publisher(ca)["queue"] == 0, 300,
             lambda: f"the queue never drained after the outage: "
             f"{publisher(ca)} {ca.cli('publisher', 'queue', 'vapub', '--limit', '5').stdout}")
    check_statuses(va, "Pub", serials[N_REVOKE:], gone)


def test_ca_killed_mid_delivery(env):
    """SIGKILL while the queue is being delivered: after the restart
    nothing is lost, and no older update undoes a newer one."""
    ca, va, _, csr = env
    va.stop()
    serials = issue(ca, csr, 400)
    gone = serials[:50]
    revoke(ca, gone)
    start_va(va)
    ca.cli("publisher", "retry", "vapub")
    base = publisher(ca)["delivered"]
    wait_for(lambda: publisher(ca)["delivered"] > base, 60,
             "delivery never started")
    ca.proc.send_signal(signal.SIGKILL)
    ca.proc.wait()
    ca.proc = None
    ca.start()
    ca.cli("token", "activate", "T", "--pin", "12345678")
    wait_for(lambda: publisher(ca)["queue"] == 0, 120,
             "the queue never drained after the restart")
    check_statuses(va, "Pub", serials[50:], gone)


def test_role_without_ca_refuses_its_entries(env):
    """A VA role without /ca/Other: Other's entries are refused and
    audited at the VA and listed as failing at the CA; Pub's still
    arrive."""
    ca, va, _, csr = env
    va.cli("role", "rule", "remove", "CA1", "/ca/")
    va.cli("role", "rule", "set", "CA1", "/ca/Pub", "allow")
    try:
        [o] = issue(ca, csr, 1, cname="Other")
        [s] = issue(ca, csr, 1)
        wait_for(lambda: publisher(ca)["failing"] >= 1, 30,
                 "the refused entry never showed as failing")
        q = ca.cli_json("publisher", "queue", "vapub")
        assert any("forbidden" in (i.get("last_error") or "") for i in q), q
        wait_for(lambda: norm(s) in {norm(k) for k in va_statuses(va, "Pub")},
                 20, "Pub's entry never arrived")
        assert norm(o) not in {norm(k) for k in va_statuses(va, "Other")}
        audit = va.cli_json("audit", "list", "--limit", "50")
        assert any(a["event"] == "va.publish.forbidden" and
                   "Other" in json.dumps(a) for a in audit), audit
    finally:
        va.cli("role", "rule", "set", "CA1", "/ca/", "allow", "--recursive")
        ca.cli("publisher", "retry", "vapub")
    wait_for(lambda: publisher(ca)["queue"] == 0, 30,
             "the queue never drained once the role allowed Other")
    check_statuses(va, "Other", [o], [])


# --- the OCSP responder and CRLs, asked by real clients ----------------------

def ocsp_url(va, path="/ocsp"):
    return f"http://127.0.0.1:{va.oport}{path}"


def openssl_ocsp(va, work, *args):
    r = subprocess.run(["openssl", "ocsp", "-issuer", str(work / "pub.pem"),
                        "-url", ocsp_url(va), "-CAfile",
                        str(work / "pub.pem"), *map(str, args)],
                       capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def post(va, body, ctype="application/ocsp-request"):
    req = urllib.request.Request(ocsp_url(va), body, {"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def build_req(cert, issuer, algo=None, nonce=None):
    b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer,
                                                   algo or hashes.SHA1())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def issued(env):
    """One good and one revoked certificate of Pub, known at the VA."""
    ca, va, work, csr = env
    good, bad = issue(ca, csr, 2)
    revoke(ca, [bad])
    wait_for(lambda: publisher(ca)["queue"] == 0, 30, "not delivered")
    # The responder picks up a newly published CA asynchronously.
    wait_for(lambda: ": good" in openssl_ocsp(va, work, "-cert",
                                              leaf(ca, work, good)),
             10, "the VA never answered for Pub")
    return good, bad


def leaf(ca, work, serial):
    pem = ca.cli("cert", "show", "--ca", "Pub", "--serial", serial).stdout
    f = work / f"{serial}.pem"
    f.write_text(pem[pem.index("-----BEGIN"):])
    return f


def test_openssl_ocsp_good_revoked_unknown(env, issued):
    ca, va, work, _ = env
    good, bad = issued
    out = openssl_ocsp(va, work, "-cert", leaf(ca, work, good))
    assert "Response verify OK" in out and ": good" in out, out
    out = openssl_ocsp(va, work, "-cert", leaf(ca, work, bad))
    assert ": revoked" in out and "keyCompromise" in out, out
    assert "Revocation Time" in out
    out = openssl_ocsp(va, work, "-serial", "0x7e57ab1e")
    assert "Response verify OK" in out and ": unknown" in out, out


def test_get_nonce_sha256_and_ocsptool(env, issued):
    ca, va, work, _ = env
    good, _ = issued
    cert = x509.load_pem_x509_certificate(leaf(ca, work, good).read_bytes())
    issuer = x509.load_pem_x509_certificate((work / "pub.pem").read_bytes())
    # GET (RFC 6960 A.1): openssl writes the request, curl fetches it.
    reqf = work / "get.req"
    openssl_ocsp(va, work, "-cert", leaf(ca, work, good), "-no_nonce",
                 "-reqout", reqf)
    b64 = urllib.parse.quote(base64.b64encode(reqf.read_bytes()).decode(),
                             safe="")
    r = subprocess.run(["curl", "-sS", "-o", str(work / "get.resp"), "-w",
                        "%{http_code}", ocsp_url(va, "/ocsp/" + b64)],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout == "200", r
    resp = ocsp.load_der_ocsp_response((work / "get.resp").read_bytes())
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    # GnuTLS parses the same response.
    r = subprocess.run(["ocsptool", "--response-info", "--infile",
                        str(work / "get.resp")], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "status: good" in r.stdout.lower(), \
        r.stdout + r.stderr
    # A nonce is echoed (and so the answer is signed for this request).
    nonce = os.urandom(16)
    st, _, body = post(va, build_req(cert, issuer, nonce=nonce))
    resp = ocsp.load_der_ocsp_response(body)
    assert resp.extensions.get_extension_for_class(
        x509.OCSPNonce).value.nonce == nonce
    # A SHA-256 CertID is answered with SHA-256.
    st, _, body = post(va, build_req(cert, issuer, hashes.SHA256()))
    resp = ocsp.load_der_ocsp_response(body)
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert isinstance(resp.hash_algorithm, hashes.SHA256)
    assert resp.responder_key_hash is not None


def test_refusals(env, issued):
    ca, va, work, _ = env
    good, _ = issued
    cert = x509.load_pem_x509_certificate(leaf(ca, work, good).read_bytes())
    st, _, body = post(va, b"\x30\x03garbage")
    assert st == 200 and ocsp.load_der_ocsp_response(body).response_status \
        == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    st, _, _ = post(va, b"\x00" * (70 * 1024))
    assert st == 413
    mgmt = x509.load_pem_x509_certificate((work / "mgmt.pem").read_bytes())
    st, _, body = post(va, build_req(cert, mgmt))
    assert ocsp.load_der_ocsp_response(body).response_status == \
        ocsp.OCSPResponseStatus.UNAUTHORIZED
    st, _, _ = post(va, build_req(cert, mgmt), ctype="text/plain")
    assert st == 415


def test_cached_answer_follows_revocation_on_every_loop(env):
    """The same nonce-less request on fresh connections (spread over the
    responder's loops by SO_REUSEPORT): served from the pre-signed cache,
    and revoked on all of them soon after `cert revoke`."""
    ca, va, work, csr = env
    serial, = issue(ca, csr, 1)
    cert = x509.load_pem_x509_certificate(leaf(ca, work, serial).read_bytes())
    issuer = x509.load_pem_x509_certificate((work / "pub.pem").read_bytes())
    req = build_req(cert, issuer)

    def statuses(n=16):
        out = []
        for _ in range(n):
            st, h, body = post(va, req)
            assert st == 200 and h["Content-Type"] == \
                "application/ocsp-response"
            out.append(ocsp.load_der_ocsp_response(body).certificate_status)
        return out
    wait_for(lambda: statuses(1) == [ocsp.OCSPCertStatus.GOOD], 10,
             "the VA never said good")
    before = va.cli_json("va", "status")["responder"]
    assert before["loops"] == min(os.cpu_count(), 8)
    assert statuses() == [ocsp.OCSPCertStatus.GOOD] * 16
    after = va.cli_json("va", "status")["responder"]["requests"]
    assert after["cache_hits"] >= before["requests"]["cache_hits"] + 15
    st, h, _ = post(va, req)
    assert "max-age=" in h["Cache-Control"] and h["Last-Modified"]
    revoke(ca, [serial])
    wait_for(lambda: statuses() == [ocsp.OCSPCertStatus.REVOKED] * 16, 5,
             "a loop kept serving the good answer")


def test_non_issued_revoked(env, issued):
    ca, va, work, _ = env
    va.cli("va", "set", "non_issued", "revoked")
    try:
        out = openssl_ocsp(va, work, "-serial", "0x7e57ab1f")
        assert ": revoked" in out and "certificateHold" in out, out
    finally:
        va.cli("va", "set", "non_issued", "unknown")
    st = va.cli_json("va", "status")
    assert st["responder"]["signers"][0]["name"] == "ocsp"
    assert st["responder"]["requests"]["good"] >= 1


def test_crl_with_etag(env):
    ca, va, work, _ = env
    ca.cli("crl", "create", "--ca", "Pub")
    url = ocsp_url(va, "/crl/Pub.crl")

    def fetch(etag=None):
        h = {"If-None-Match": etag} if etag else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    url, headers=h), timeout=20) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()
    st, h, body = wait_for(lambda: (lambda t: t if t[0] == 200 else None)(
        fetch()), 20, "the CRL never reached the VA")
    crl = x509.load_der_x509_crl(body)
    assert crl.issuer.rfc4514_string() == "CN=Published CA"
    assert h["ETag"] and "max-age=" in h["Cache-Control"]
    assert h["Content-Type"] == "application/pkix-crl"
    st, _, _ = fetch(h["ETag"])
    assert st == 304
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(ocsp_url(va, "/crl/Nope.crl"), timeout=20)
    assert e.value.code == 404
