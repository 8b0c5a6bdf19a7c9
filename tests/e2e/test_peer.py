"""End-to-end: two real nodes joined by the peer protocol (issue 3).

A CA node and a VA-side node on 127.0.0.1, joined the way an operator does
it: the VA makes its TLS key and CSR, the CA's Management CA issues it, the
VA installs it and trusts the Management CA; the CA gets a client identity
the same way and a Peer Connector to the VA. Independent clients (openssl
s_client, curl, python ssl) check the listener from outside.
"""
import datetime
import json
import re
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import helpers
from conftest import Node, _LIVE


class PeerNode(Node):
    """A Node whose init also sets a peer listener on a free port."""

    def __init__(self, base, name, listen=False):
        self.base = base
        self.dir = base / "node"
        self.log_path = base / "node.log"
        self.work = base / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.died = None
        self.name = name
        args = ["init", str(self.dir), "--name", name]
        if listen:
            args += ["--peer-listen", "127.0.0.1:0"]
        r = helpers.sp(*args)
        assert r.returncode == 0, r.stderr

    def port(self):
        st = self.cli_json("peer", "status")
        return int(st["listen"].rsplit(":", 1)[1])


def write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def client_identity(ca, work, cn, profile="TLS_CLIENT"):
    """A key made here and a cert issued by the Management CA: for curl,
    openssl s_client and python ssl (keys in files, unlike the nodes')."""
    key, csr = helpers.make_csr("ec-p256", cn=cn)
    csrf = write(work / f"{cn}.csr", csr)
    pem = ca.cli("cert", "issue", "--ca", "Mgmt", "--profile", profile,
                 "--csr", csrf).stdout
    keyf = write(work / f"{cn}.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    certf = write(work / f"{cn}.pem", pem)
    return certf, keyf


def self_made_ca(work, name, expired_leaf=False):
    """An independent CA (python) and a client cert under it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    cakey = ec.generate_private_key(ec.SECP256R1())
    caname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cacert = (x509.CertificateBuilder().subject_name(caname)
              .issuer_name(caname).public_key(cakey.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=10))
              .not_valid_after(now + datetime.timedelta(days=100))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                             critical=True)
              .sign(cakey, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    nb = now - datetime.timedelta(days=5)
    na = now - datetime.timedelta(days=1) if expired_leaf else \
        now + datetime.timedelta(days=5)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(
                NameOID.COMMON_NAME, name + " client")]))
            .issuer_name(caname).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(nb).not_valid_after(na)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(cakey, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    caf = write(work / f"{name}-ca.pem", pem(cacert))
    certf = write(work / f"{name}-client.pem", pem(leaf))
    keyf = write(work / f"{name}-client.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return caf, certf, keyf


class Pair:
    def __init__(self, ca, va, work):
        self.ca, self.va, self.work = ca, va, work
        self.port = va.port()
        self.mgmt = work / "mgmt.pem"

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def curl(self, path, cert, key, *extra):
        """curl with a client certificate; returns (status, body)."""
        r = subprocess.run(
            ["curl", "-sS", "--max-time", "20", "--cacert", str(self.mgmt),
             "--cert", str(cert), "--key", str(key), "-o", "-",
             "-w", "\n%{http_code}", *extra, self.url(path)],
            capture_output=True, text=True, timeout=30)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body, r.stderr

    def ping(self, *args, check=True):
        return self.ca.cli("peer", "ping", "va", *args, check=check)

    def ping_json(self, *args):
        return self.ca.cli_json("peer", "ping", "va", *args)

    def incoming(self):
        return self.va.cli_json("peer", "incoming", "list")

    def wait_incoming(self, pred, deadline=10):
        end = time.monotonic() + deadline
        while True:
            rows = self.incoming()
            if pred(rows):
                return rows
            if time.monotonic() > end:
                pytest.fail(f"incoming list never matched: {rows}")
            time.sleep(0.05)


def setup_va(ca, va, work, mgmt, tag="va"):
    """The VA node's server identity, issued by the CA's Management CA;
    it trusts the Management CA. Incoming stays as it is (off when new)."""
    va.cli("token", "create", "V", "--pin", "56781234")
    va.cli("token", "genkey", "V", "tls", "--alg", "ec-p256")
    va.cli("keybinding", "create", "va-tls", "--token", "V", "--key", "tls")
    csr = write(work / f"{tag}-tls.csr",
                va.cli("keybinding", "csr", "va-tls", "--dn", "CN=va-node",
                       "--san", "IP:127.0.0.1").stdout)
    pem = write(work / f"{tag}-tls.pem",
                ca.cli("cert", "issue", "--ca", "Mgmt", "--profile",
                       "TLS_SERVER", "--csr", csr).stdout)
    va.cli("keybinding", "install-cert", "va-tls", "--cert", pem,
           "--chain", mgmt)
    va.cli("trust", "add", "--cert", mgmt)
    va.cli("peer", "incoming", "keybinding", "va-tls")


def tls_client(p, certf, keyf):
    ctx = ssl.create_default_context(cafile=str(p.mgmt))
    ctx.load_cert_chain(str(certf), str(keyf))
    raw = socket.create_connection(("127.0.0.1", p.port), timeout=20)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def raw_exchange(p, certf, keyf, data):
    """Sends data on one TLS connection and reads until the server closes
    it (or 20 s pass); returns everything the server sent."""
    s = tls_client(p, certf, keyf)
    out = b""
    try:
        s.sendall(data)
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    finally:
        s.close()
    return out


# The VA closes idle keep-alive connections after this (default 10 s), so
# the idle test waits seconds, not tens of them.
IDLE_S = 3


def _start(base, name, listen, idle=None):
    n = PeerNode(base, name, listen)
    if idle is not None:
        with open(n.dir / "sallyport.conf", "a") as f:	# [peer] is last
            f.write(f"idle_timeout = {idle}\n")
    n.start()
    return n


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("peer")
    (base / "ca").mkdir()
    (base / "va").mkdir()
    work = base / "work"
    work.mkdir()
    ca = va = None
    try:
        ca = _start(base / "ca", "ca-node", False)
        va = _start(base / "va", "va-node", True, idle=IDLE_S)
        # The CA node: a Management CA and a TLS client identity.
        ca.cli("token", "create", "T", "--pin", "12345678")
        ca.cli("token", "genkey", "T", "mgmt", "--alg", "ec-p256")
        ca.cli("token", "genkey", "T", "tls", "--alg", "ec-p256")
        ca.cli("ca", "create", "Mgmt", "--dn", "CN=Test Management CA",
               "--token", "T", "--key", "mgmt")
        mgmt = write(work / "mgmt.pem", ca.cli("ca", "cert", "Mgmt").stdout)
        ca.cli("keybinding", "create", "ca-tls", "--token", "T", "--key",
               "tls")
        csr = write(work / "ca-tls.csr",
                    ca.cli("keybinding", "csr", "ca-tls", "--dn",
                           "CN=ca-node").stdout)
        pem = write(work / "ca-tls.pem",
                    ca.cli("cert", "issue", "--ca", "Mgmt", "--profile",
                           "TLS_CLIENT", "--csr", csr).stdout)
        ca.cli("keybinding", "install-cert", "ca-tls", "--cert", pem,
               "--chain", mgmt)
        ca.cli("trust", "add", "--cert", mgmt)
        setup_va(ca, va, work, mgmt)
        p = Pair(ca, va, work)
        ca.cli("peer", "connector", "add", "va", "--url",
               f"https://127.0.0.1:{p.port}/peer/v1", "--auth", "ca-tls",
               "--max", "4")
        yield p
        va.stop()
        ca.stop()
    finally:
        for n in (ca, va):
            if n is not None:
                n.kill()
                if n in _LIVE:
                    _LIVE.remove(n)


@pytest.fixture(scope="module")
def joined(pair):
    """The pair after the operator's join: incoming enabled, CA authorized."""
    p = pair
    p.va.cli("peer", "incoming", "enable")
    p.ping(check=False)
    rows = p.wait_incoming(lambda rows: any(
        r["subject"] == "CN=ca-node" for r in rows))
    row = [r for r in rows if r["subject"] == "CN=ca-node"][0]
    p.va.cli("peer", "incoming", "authorize", str(row["id"]), "--new-role",
             "CA1", "--rules", "va")
    return p


# --- the tests, in the order an operator meets them ----------------------

def test_incoming_disabled_by_default(pair, tmp_path):
    """A node of its own (the module's VA gets incoming enabled by other
    tests): incoming is off, and every path, known or not, answers 403
    incoming_disabled; the client is still listed."""
    (tmp_path / "va").mkdir()
    va = _start(tmp_path / "va", "fresh-va", True)
    try:
        setup_va(pair.ca, va, pair.work, pair.mgmt, tag="fresh")
        assert va.cli_json("peer", "status")["incoming_enabled"] is False
        fresh = Pair(pair.ca, va, pair.work)
        pair.ca.cli("peer", "connector", "add", "fresh", "--url",
                    f"https://127.0.0.1:{fresh.port}/peer/v1", "--auth",
                    "ca-tls")
        try:
            err = pair.ca.fail("peer", "ping", "fresh",
                               match=r"incoming peer connections are "
                                     r"disabled")
            assert "HTTP 403" in err
        finally:
            pair.ca.cli("peer", "connector", "delete", "fresh")
        certf, keyf = client_identity(pair.ca, pair.work, "early.example")
        for path in ("/peer/v1/ping", "/peer/v1/info", "/", "/admin",
                     "/peer/v2/ping"):
            code, body, _ = fresh.curl(path, certf, keyf)
            assert code == 403, (path, code, body)
            assert json.loads(body)["error"]["code"] == \
                "incoming_disabled", (path, body)
        # The handshakes completed: both certificates are listed anyway.
        fresh.wait_incoming(lambda rows: {"CN=ca-node", "CN=early.example"}
                            <= {r["subject"] for r in rows})
        va.stop()
    finally:
        va.kill()
        if va in _LIVE:
            _LIVE.remove(va)


def test_no_role_is_403_and_listed(pair):
    pair.va.cli("peer", "incoming", "enable")
    certf, keyf = client_identity(pair.ca, pair.work, "norole.example")
    code, body, _ = pair.curl("/peer/v1/ping", certf, keyf)
    assert code == 403, body
    assert json.loads(body)["error"]["code"] == "denied"
    assert "no role" in json.loads(body)["error"]["message"]
    pair.wait_incoming(lambda rows: any(
        r["subject"] == "CN=norole.example" and r["role"] == ""
        for r in rows))
    # Logged with the client's address (hostile test F8).
    assert re.search(r"peer: refused 127\.0\.0\.1:\d+: 403 denied: no role",
                     pair.va.log()), pair.va.log()[-2000:]


def test_refusals_logged_rate_limited(pair):
    """A burst of refused requests on one connection is logged with the
    address, but at most a few lines a second, with the count left out."""
    pair.va.cli("peer", "incoming", "enable")
    certf, keyf = client_identity(pair.ca, pair.work, "burst.example")
    before = pair.va.log().count("peer: refused")
    start = time.monotonic()
    urls = []
    for _ in range(200):	# one connection, keep-alive
        urls += ["-o", "/dev/null", pair.url("/peer/v1/ping")]
    r = subprocess.run(
        ["curl", "-sS", "--max-time", "60", "--cacert", str(pair.mgmt),
         "--cert", str(certf), "--key", str(keyf),
         "-w", "%{http_code}\n", *urls],
        capture_output=True, text=True, timeout=90)
    codes = r.stdout.split()
    assert codes == ["403"] * 200, r.stdout[-300:] + r.stderr
    seconds = time.monotonic() - start
    time.sleep(1.1)
    # One more, in a new second: it carries the count of those left out.
    code, _, _ = pair.curl("/peer/v1/ping", certf, keyf)
    assert code == 403
    log = pair.va.log()
    logged = log.count("peer: refused") - before
    # At most 10 a second (the burst's seconds, plus the last line's).
    assert 1 <= logged <= 10 * (int(seconds) + 3), (logged, seconds)
    assert logged < 201, logged
    assert re.search(r"refusals not logged\)", log)


def test_untrusted_and_missing_client_cert_fail_handshake(pair):
    caf, certf, keyf = self_made_ca(pair.work, "Untrusted")
    # openssl s_client with an untrusted client certificate: with TLS 1.2
    # the handshake itself fails; with TLS 1.3 the server's alert comes
    # after the client's Finished, and no response ever does.
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{pair.port}",
            "-CAfile", str(pair.mgmt), "-cert", str(certf), "-key",
            str(keyf), "-brief"]
    req = "GET /peer/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
    r = subprocess.run(base + ["-tls1_2"], input=req, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert re.search(r"alert|handshake failure|unknown ca", r.stderr, re.I), \
        r.stderr
    r = subprocess.run(base + ["-tls1_3", "-ign_eof"], input=req,
                       capture_output=True, text=True, timeout=30)
    assert "pong" not in r.stdout
    assert re.search(r"alert", r.stderr + r.stdout, re.I), r.stderr
    # curl without any client certificate.
    c = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert",
                        str(pair.mgmt), pair.url("/peer/v1/ping")],
                       capture_output=True, text=True, timeout=30)
    assert c.returncode != 0 and "pong" not in c.stdout
    # Logged with the client's address (F8), TLS 1.2 and 1.3.
    c = subprocess.run(["curl", "-sS", "--max-time", "20", "--tls-max",
                        "1.2", "--cacert", str(pair.mgmt),
                        pair.url("/peer/v1/ping")],
                       capture_output=True, text=True, timeout=30)
    assert c.returncode != 0 and "pong" not in c.stdout
    deadline = time.monotonic() + 5
    while len(re.findall(r"peer: refused 127\.0\.0\.1:\d+: TLS handshake "
                         r"without a client certificate", pair.va.log())) < 2:
        assert time.monotonic() < deadline, pair.va.log()[-2000:]
        time.sleep(0.05)
    # Neither reached the application: nothing recorded for them.
    rows = pair.incoming()
    assert not any("Untrusted" in r["subject"] for r in rows)


def test_norole_body_refused_before_it_is_read(pair):
    """A certificate without a role may announce at most a few KiB of
    body (issue 7 item 8): more gets 413 at once, without the body ever
    being sent; a small body is read and refused 403."""
    pair.va.cli("peer", "incoming", "enable")
    certf, keyf = client_identity(pair.ca, pair.work, "nobody.example")
    s = tls_client(pair, certf, keyf)
    try:
        s.settimeout(5)
        s.sendall(b"POST /peer/v1/ping HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 5000\r\n\r\n")
        resp = s.recv(65536)
    finally:
        s.close()
    assert resp.startswith(b"HTTP/1.1 413"), resp
    resp = raw_exchange(pair, certf, keyf,
                        b"POST /peer/v1/ping HTTP/1.1\r\nHost: x\r\n"
                        b"Connection: close\r\nContent-Length: 2\r\n\r\n{}")
    assert resp.startswith(b"HTTP/1.1 403"), resp


def test_expired_client_cert_refused(pair):
    caf, certf, keyf = self_made_ca(pair.work, "Shortlived",
                                    expired_leaf=True)
    pair.va.cli("trust", "add", "--cert", caf)
    try:
        code, body, err = pair.curl("/peer/v1/ping", certf, keyf)
        # Refused in the handshake: no HTTP status at all (curl's own
        # error varies: the alert, or the reset that follows it), and the
        # listener logged the reason.
        assert code == 0 and "pong" not in body, (code, body)
        assert re.search(r'refused client certificate subject "CN=Shortlived'
                         r' client".*certificate has expired',
                         pair.va.log()), err
    finally:
        fp = [t["fingerprint"] for t in pair.va.cli_json("trust", "list")
              if "Shortlived" in t["subject"]][0]
        pair.va.cli("trust", "remove", fp)


def test_authorize_then_ping_full_then_reused(joined):
    p = joined
    p.ca.cli("peer", "reset", "va")
    first = p.ping_json()
    assert first["ok"] == 1
    assert first["pings"][0]["connection"] == "full"
    later = p.ping_json("--count", "3")
    assert [x["connection"] for x in later["pings"]] == ["reused"] * 3
    # New connections in the same pool offer the saved TLS session. (The
    # server may still decline some of several concurrent resumptions of
    # one ticket, so "full" is not excluded.)
    par = p.ping_json("--count", "8", "--parallel", "4")
    kinds = [x["connection"] for x in par["pings"]]
    assert "resumed" in kinds, par
    assert kinds.count("full") < 3, par
    row = [r for r in p.incoming() if r["subject"] == "CN=ca-node"][0]
    assert row["role"] == "CA1"


def test_pool_never_exceeds_max(joined):
    p = joined
    p.ca.cli("peer", "reset", "va")
    res = p.ping_json("--count", "64", "--parallel", "64")
    assert res["ok"] == 64
    assert 1 <= res["max_in_use"] <= 4
    assert res["max_queued"] > 0
    lst = {c["name"]: c for c in p.ca.cli_json("peer", "connector", "list")}
    assert lst["va"]["max"] == 4
    assert lst["va"]["in_use"] + lst["va"]["ready"] <= 4
    # The operating system agrees: at most 4 connections to the VA port.
    ss = subprocess.run(["ss", "-Htn", "state", "established",
                         f"( dport = :{p.port} )"], capture_output=True,
                        text=True)
    assert len([l for l in ss.stdout.splitlines() if l.strip()]) <= 4
    assert "CN=va-node" in lst["va"]["tls_peer"]


def test_non_peer_paths_404(joined):
    """Unknown paths answer 404 only to a client the base rule
    /peerincoming allows; any other client gets 403 denied for them, as
    for the known endpoints, and is listed with no role."""
    p = joined
    paths = ("/", "/admin", "/peer/v1", "/peer/v1/", "/peer/v2/ping",
             "/peer/v1/ping/../../admin", "/ca/create")
    certf, keyf = client_identity(p.ca, p.work, "stranger.example")
    for path in paths:
        code, body, _ = p.curl(path, certf, keyf)
        assert code == 403, (path, code, body)
        assert json.loads(body)["error"]["code"] == "denied", (path, body)
        assert "no role" in json.loads(body)["error"]["message"]
    p.wait_incoming(lambda rows: any(
        r["subject"] == "CN=stranger.example" and r["role"] == ""
        for r in rows))
    certf, keyf = client_identity(p.ca, p.work, "probe.example")
    p.va.cli("role", "member", "add", "CA1", "--match", "cn", "--value",
             "probe.example")
    for path in paths:
        code, body, _ = p.curl(path, certf, keyf)
        assert code == 404, (path, code, body)
        assert json.loads(body)["error"]["code"] == "not_found"
    p.wait_incoming(lambda rows: any(
        r["subject"] == "CN=probe.example" and r["role"] == "CA1"
        for r in rows))
    # A deny on the base rule refuses unknown paths too.
    p.va.cli("role", "rule", "set", "CA1", "/peerincoming", "deny")
    try:
        code, body, _ = p.curl("/admin", certf, keyf)
        assert code == 403 and json.loads(body)["error"]["code"] == \
            "denied", (code, body)
    finally:
        p.va.cli("role", "rule", "set", "CA1", "/peerincoming", "allow")


def test_deny_beats_allow(joined):
    p = joined
    p.va.cli("role", "rule", "set", "CA1", "/peerincoming", "deny")
    try:
        err = p.ca.fail("peer", "ping", "va", match=r"HTTP 403")
        assert "deny" in err or "denied" in err
    finally:
        p.va.cli("role", "rule", "set", "CA1", "/peerincoming", "allow")
    assert p.ping_json()["ok"] == 1


def test_presets_are_a_starting_point(joined):
    """`--rules` takes several presets; `role show` says which preset made
    each rule, and a rule the operator sets afterwards is the operator's."""
    p = joined
    certf, keyf = client_identity(p.ca, p.work, "multi.example")
    p.curl("/peer/v1/ping", certf, keyf)
    rows = p.wait_incoming(lambda rows: any(
        r["subject"] == "CN=multi.example" for r in rows))
    rid = str([r for r in rows if r["subject"] == "CN=multi.example"][0]
              ["id"])
    for bad in ("va,va", "va,bogus", "va,", ",va"):
        p.va.fail("peer", "incoming", "authorize", rid, "--new-role",
                  "Multi", "--rules", bad, match=r"preset")
    p.va.cli("peer", "incoming", "authorize", rid, "--new-role", "Multi",
             "--rules", "va,renewal")
    role = p.va.cli_json("role", "show", "Multi")
    assert sorted(role["presets"]) == ["renewal", "va"]
    rules = {u["path"]: u for u in role["rules"]}
    assert rules["/peerincoming"]["preset"] == "va,renewal"
    assert rules["/peerpublish/writecert"]["preset"] == "va"
    assert rules["/internalkeybinding/modify/"]["preset"] == "renewal"
    assert rules["/ca/"]["recursive"] is True
    p.va.cli("role", "rule", "set", "Multi", "/ca/", "deny", "--recursive")
    role = p.va.cli_json("role", "show", "Multi")
    rules = {u["path"]: u for u in role["rules"]}
    assert rules["/ca/"]["preset"] == "" and rules["/ca/"]["allow"] is False
    assert sorted(role["presets"]) == ["renewal", "va"]
    # The text form shows the preset column.
    out = p.va.cli("role", "show", "Multi").stdout
    assert "renewal" in out


def test_reset_picks_up_new_client_certificate(joined):
    p = joined
    old = [r for r in p.incoming() if r["subject"] == "CN=ca-node"][0]
    csr = write(p.work / "ca-tls2.csr", p.ca.cli(
        "keybinding", "csr", "ca-tls", "--dn", "CN=ca-node").stdout)
    pem = write(p.work / "ca-tls2.pem", p.ca.cli(
        "cert", "issue", "--ca", "Mgmt", "--profile", "TLS_CLIENT",
        "--csr", csr).stdout)
    p.ca.cli("keybinding", "install-cert", "ca-tls", "--cert", pem,
             "--chain", p.mgmt)
    new_serial = helpers.serial_hex(helpers.load_cert(pem.read_bytes()))
    # Allow the new certificate too (same subject, new serial).
    p.va.cli("role", "member", "add", "CA1", "--match", "dn", "--value",
             "CN=ca-node", "--issuer", "CN=Test Management CA")
    p.ping_json()
    rows = p.incoming()
    assert not any(r["serial"] == new_serial for r in rows), \
        "the pool must keep the old certificate until reset"
    p.ca.cli("peer", "reset", "va")
    assert p.ping_json()["ok"] == 1
    p.wait_incoming(lambda rows: any(r["serial"] == new_serial
                                     for r in rows))
    assert old["serial"] != new_serial


def test_malformed_requests(joined):
    p = joined
    certf, keyf = client_identity(p.ca, p.work, "fuzzy.example")
    # Let this client ping.
    p.va.cli("role", "member", "add", "CA1", "--match", "cn", "--value",
             "fuzzy.example")
    code, body, _ = p.curl("/peer/v1/ping", certf, keyf)
    assert code == 200 and json.loads(body)["pong"] is True
    code, body, _ = p.curl("/peer/v1/ping", certf, keyf, "-X", "POST",
                           "-H", "Content-Type: application/json",
                           "--data", '{"nonce": "abc"}')
    assert code == 200 and json.loads(body)["nonce"] == "abc"
    # Bad JSON, wrong shape, bad nonce.
    for data in ('{"nonce":', '[1,2]', '{"nonce": 5}', '{"nonce":"a","x":1}'):
        code, body, _ = p.curl("/peer/v1/ping", certf, keyf, "-X", "POST",
                               "--data", data)
        assert code == 400, (data, code, body)
        assert json.loads(body)["error"]["code"] == "invalid"
    # Oversized body.
    big = p.work / "big.json"
    big.write_text('{"nonce":"' + "a" * (2 * 1024 * 1024) + '"}')
    code, body, _ = p.curl("/peer/v1/ping", certf, keyf, "-X", "POST",
                           "--data-binary", f"@{big}")
    assert code == 413, (code, body)
    # The same announced by Content-Length alone: refused before the body.
    resp = raw_exchange(p, certf, keyf,
                        b"POST /peer/v1/ping HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 2097152\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 413"), resp
    # Content-Length together with chunked: refused.
    ctx = ssl.create_default_context(cafile=str(p.mgmt))
    ctx.load_cert_chain(str(certf), str(keyf))
    with socket.create_connection(("127.0.0.1", p.port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"POST /peer/v1/ping HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                      b"\r\n0\r\n\r\n")
            resp = s.recv(65536).decode(errors="replace")
    assert resp.startswith("HTTP/1.1 400"), resp
    # A slow client is timed out while the node keeps serving others.
    raw = socket.create_connection(("127.0.0.1", p.port), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(b"GET /peer/v1/ping HTTP/1.1\r\nHost: x\r\n")	# never ends
    assert p.ping_json()["ok"] == 1
    t0 = time.monotonic()
    try:
        data = s.recv(65536)
    except (ssl.SSLError, OSError):
        data = b""
    s.close()
    waited = time.monotonic() - t0
    assert b"pong" not in data
    assert waited < 25, waited
    assert p.ping_json()["ok"] == 1


SMUGGLED = b"GET /peer/v1/info HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("status,head,body", [
    # Whitespace before the colon: evhttp would not see the framing.
    (400, b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    (400, b"Content-Length : 39\r\n", SMUGGLED),
    (400, b"Transfer-Encoding\t: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    # Codings evhttp does not decode: the body would be read as plain.
    (501, b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    (501, b"Transfer-Encoding: identity, chunked\r\n",
     b"0\r\n\r\n" + SMUGGLED),
    (501, b"Transfer-Encoding: gzip\r\n", b"0\r\n\r\n" + SMUGGLED),
    # Line ends evhttp accepts and a proxy may read otherwise (S7):
    # obs-fold hides a header in the one before, bare LF / CR.
    (400, b"X-Folded: a\r\n Transfer-Encoding: chunked\r\n",
     b"0\r\n\r\n" + SMUGGLED),
    (400, b"X-Folded: a\r\n\tContent-Length: 39\r\n", SMUGGLED),
    (400, b"X-Bare: a\nContent-Length: 39\r\n", SMUGGLED),
    (400, b"Content-Length: 39\n", SMUGGLED),
    (400, b"X-Cr: a\rContent-Length: 39\r\n", SMUGGLED),
    # evhttp itself refuses a list starting with chunked (HTML 400).
    (400, b"Transfer-Encoding: chunked, gzip\r\n",
     b"0\r\n\r\n" + SMUGGLED),
])
def test_framing_strict(joined, status, head, body):
    """Ambiguous framing (security finding F4/S7) is refused with the exact
    status, the connection is closed, and the request hidden in the body
    is never answered."""
    p = joined
    certf, keyf = client_identity(p.ca, p.work, "framing.example")
    p.va.cli("role", "member", "add", "CA1", "--match", "cn", "--value",
             "framing.example", check=False)
    resp = raw_exchange(p, certf, keyf,
                        b"POST /peer/v1/ping HTTP/1.1\r\nHost: x\r\n" +
                        head + b"\r\n" + body)
    assert resp.startswith(b"HTTP/1.1 %d" % status), resp
    assert resp.count(b"HTTP/1.1 ") == 1, resp
    assert b"sallyport" not in resp, resp	# /info never answered
    assert b"connection: close" in resp.lower(), resp
    if b"application/json" in resp:		# ours, not evhttp's own
        code = json.loads(resp.split(b"\r\n\r\n", 1)[1])["error"]["code"]
        assert code == ("invalid" if status == 400 else "not_implemented")
    else:	# evhttp's own 400: a list starting with chunked, a bare CR
        assert b"chunked, gzip" in head or \
            b"\r" in head.replace(b"\r\n", b""), resp
    # Sound chunked framing still works on the same listener.
    ok = raw_exchange(p, certf, keyf,
                      b"POST /peer/v1/ping HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: close"
                      b"\r\n\r\n10\r\n{\"nonce\":\"abcd\"}\r\n0\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), ok
    assert b'"nonce":"abcd"' in ok, ok


def test_line_ends_checked_per_request_on_keepalive(joined):
    """The line-end check (S7) restarts where each pipelined request
    starts: two sound requests both answer; a sound one followed by one
    with a bare LF gets 200, then 400 and the connection closes."""
    p = joined
    certf, keyf = client_identity(p.ca, p.work, "pipeline.example")
    p.va.cli("role", "member", "add", "CA1", "--match", "cn", "--value",
             "pipeline.example", check=False)
    ping = (b"POST /peer/v1/ping HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 16\r\n\r\n{\"nonce\":\"abcd\"}")
    resp = raw_exchange(p, certf, keyf, ping + ping.replace(
        b"Host: x", b"Connection: close"))
    assert resp.count(b"HTTP/1.1 200") == 2, resp
    resp = raw_exchange(p, certf, keyf, ping +
                        b"GET /peer/v1/info HTTP/1.1\nHost: x\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 200"), resp
    assert resp.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 400" in resp, resp
    assert b"sallyport" not in resp, resp	# /info never answered


def test_outgoing_disable_and_connector_admin(joined):
    p = joined
    p.ca.cli("peer", "outgoing", "disable")
    try:
        p.ca.fail("peer", "ping", "va", match=r"outgoing peer connections "
                                              r"are disabled")
    finally:
        p.ca.cli("peer", "outgoing", "enable")
    p.ca.cli("peer", "connector", "clone", "va", "va2")
    p.ca.cli("peer", "connector", "disable", "va2")
    p.ca.fail("peer", "ping", "va2", match=r"disabled")
    p.ca.cli("peer", "connector", "enable", "va2")
    p.ca.cli("peer", "connector", "edit", "va2", "--max", "2")
    lst = {c["name"]: c for c in p.ca.cli_json("peer", "connector", "list")}
    assert lst["va2"]["max"] == 2
    assert p.ca.cli_json("peer", "ping", "va2")["ok"] == 1
    p.ca.cli("peer", "connector", "delete", "va2")
    p.ca.fail("peer", "ping", "va2", match=r"no connector")
    # Bad input is refused with a reason.
    p.ca.fail("peer", "connector", "add", "bad", "--url", "http://x/peer/v1",
              "--auth", "ca-tls", match=r"https")
    p.ca.fail("peer", "connector", "add", "bad", "--url",
              "https://127.0.0.1:1/other", "--auth", "ca-tls",
              match=r"/peer/v1")
    p.ca.fail("peer", "connector", "add", "va", "--url",
              "https://127.0.0.1:1/peer/v1", "--auth", "ca-tls",
              match=r"exists")


def test_connector_to_nothing_fails_cleanly(joined):
    p = joined
    port = helpers.free_port()
    p.ca.cli("peer", "connector", "add", "nowhere", "--url",
             f"https://127.0.0.1:{port}/peer/v1", "--auth", "ca-tls")
    try:
        p.ca.fail("peer", "ping", "nowhere", match=r"failed|refused")
    finally:
        p.ca.cli("peer", "connector", "delete", "nowhere")
    assert p.ping_json()["ok"] == 1


def test_trickling_server_hits_the_request_deadline(joined):
    """A server that trickles its response one byte every 2 s never trips
    the 10 s inactivity timeout; the connector's total deadline per request
    (PEER_REQUEST_DEADLINE, 20 s) ends it (hostile test F5)."""
    import threading
    p = joined
    key, csr = helpers.make_csr("ec-p256", cn="slow.example",
                                ips=("127.0.0.1",))
    csrf = write(p.work / "slow.csr", csr)
    certf = write(p.work / "slow.pem", p.ca.cli(
        "cert", "issue", "--ca", "Mgmt", "--profile", "TLS_SERVER",
        "--csr", csrf).stdout)
    keyf = write(p.work / "slow.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(certf), str(keyf))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(str(p.mgmt))
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    lsock.settimeout(60)
    stop = threading.Event()

    def serve():
        try:
            raw, _ = lsock.accept()
            with ctx.wrap_socket(raw, server_side=True) as s:
                s.settimeout(60)
                s.recv(65536)
                for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
                    if stop.wait(2):
                        return
                    s.sendall(bytes([b]))
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    port = lsock.getsockname()[1]
    p.ca.cli("peer", "connector", "add", "slow", "--url",
             f"https://127.0.0.1:{port}/peer/v1", "--auth", "ca-tls")
    try:
        start = time.monotonic()
        err = p.ca.fail("peer", "ping", "slow", match=r"timed out")
        assert "no complete response within 20 s" in err, err
        assert time.monotonic() - start < 60
    finally:
        stop.set()
        p.ca.cli("peer", "connector", "delete", "slow")
        t.join(10)
        lsock.close()
    assert p.ping_json()["ok"] == 1


def test_revoked_client_certificate_refused(joined):
    """Revoking the CA node's TLS client certificate on the Management CA
    and installing the CRL on the VA cuts the CA off: its open keep-alive
    connection at the next request, new connections in the handshake."""
    p = joined
    assert p.ping_json()["ok"] == 1		# a warm connection
    serial = p.ca.cli_json("keybinding", "show", "ca-tls")["serial"]
    p.ca.cli("cert", "revoke", "--ca", "Mgmt", "--serial", serial,
             "--reason", "keyCompromise")
    p.ca.cli("crl", "create", "--ca", "Mgmt")
    crl = write(p.work / "mgmt.crl", p.ca.cli("crl", "get", "--ca",
                                              "Mgmt").stdout)
    got = p.va.cli_json("trust", "crl", crl)
    assert got["status"] == "installed" and got["entries"] >= 1
    assert p.va.cli_json("trust", "crl", crl)["status"] == \
        "already installed"
    err = p.ca.fail("peer", "ping", "va", match=r"HTTP 403")
    assert "revoked" in err, err
    p.ca.cli("peer", "reset", "va")
    err = p.ca.fail("peer", "ping", "va", match=r"failed|refused")
    # Recover: a new certificate for the same key, allowed by subject.
    csr = write(p.work / "ca-tls3.csr", p.ca.cli(
        "keybinding", "csr", "ca-tls", "--dn", "CN=ca-node").stdout)
    pem = write(p.work / "ca-tls3.pem", p.ca.cli(
        "cert", "issue", "--ca", "Mgmt", "--profile", "TLS_CLIENT",
        "--csr", csr).stdout)
    p.ca.cli("keybinding", "install-cert", "ca-tls", "--cert", pem,
             "--chain", p.mgmt)
    p.va.cli("role", "member", "add", "CA1", "--match", "dn", "--value",
             "CN=ca-node", "--issuer", "CN=Test Management CA", check=False)
    p.ca.cli("peer", "reset", "va")
    assert p.ping_json()["ok"] == 1
    # An older CRL is refused; garbage is refused.
    p.va.fail("trust", "crl", write(p.work / "junk.crl", "junk"),
              match=r"not a CRL")


def test_resumes_after_idle_close(joined):
    """The VA closes idle keep-alive connections after its timeout; the
    next ping opens a new connection that resumes the TLS session."""
    p = joined
    p.ca.cli("peer", "reset", "va")
    assert p.ping_json()["pings"][0]["connection"] == "full"
    end = time.monotonic() + 3 * IDLE_S + 5
    while True:		# wait for the VA's idle timeout to close it
        va = {c["name"]: c for c in p.ca.cli_json("peer", "connector",
                                                   "list")}["va"]
        if va["ready"] == 0 and va["in_use"] == 0:
            break
        assert time.monotonic() < end, va
        time.sleep(0.5)
    assert p.ping_json()["pings"][0]["connection"] == "resumed"


def _admin_frames(sock, *msgs):
    import struct
    for m in msgs:
        b = json.dumps(m).encode()
        sock.sendall(struct.pack(">I", len(b)) + b)
    out = []
    for _ in msgs:
        hdr = b""
        while len(hdr) < 4:
            d = sock.recv(4 - len(hdr))
            assert d, "admin socket closed"
            hdr += d
        n = int.from_bytes(hdr, "big")
        body = b""
        while len(body) < n:
            d = sock.recv(n - len(body))
            assert d, "admin socket closed"
            body += d
        out.append(json.loads(body))
    return out


def test_pipelined_admin_commands_around_a_ping(joined):
    """A reset pipelined behind a ping on one admin connection runs after
    the ping's reply, not inside the peer connection's callback."""
    p = joined
    assert p.ping_json()["ok"] == 1
    with socket.socket(socket.AF_UNIX) as a:
        a.settimeout(30)
        a.connect(str(p.ca.dir / "admin.sock"))
        r1, r2, r3 = _admin_frames(
            a, {"cmd": "peer.ping", "args": {"name": "va"}},
            {"cmd": "peer.reset", "args": {"name": "va"}},
            {"cmd": "status"})
    assert r1["ok"] and r1["result"]["ok"] == 1, r1
    assert r2["ok"] and r3["ok"], (r2, r3)
    assert p.ping_json()["ok"] == 1


def test_connector_follows_trust_changes(joined):
    """Removing the Management CA from the CA node's trust stops new and
    idle connections to the VA at once, without a reset; trusting it again
    brings them back."""
    p = joined
    assert p.ping_json()["ok"] == 1
    fp = [t["fingerprint"] for t in p.ca.cli_json("trust", "list")
          if "Management" in t["subject"]][0]
    p.ca.cli("trust", "remove", fp)
    try:
        p.ca.fail("peer", "ping", "va", match=r"server certificate|failed")
    finally:
        p.ca.cli("trust", "add", p.mgmt)
    assert p.ping_json()["ok"] == 1


def test_expired_client_cert_cut_off_on_open_and_resumed(joined):
    """A client certificate that expires while its keep-alive connection is
    open, or whose session is resumed later, is refused then."""
    p = joined
    now = datetime.datetime.now(datetime.timezone.utc)
    cakey = ec.generate_private_key(ec.SECP256R1())
    caname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Brief")])
    cacert = (x509.CertificateBuilder().subject_name(caname)
              .issuer_name(caname).public_key(cakey.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=10))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                             critical=True)
              .sign(cakey, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    expires = now + datetime.timedelta(days=1)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(
                NameOID.COMMON_NAME, "brief.example")]))
            .issuer_name(caname).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(expires)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(cakey, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    caf = write(p.work / "brief-ca.pem", pem(cacert))
    certf = write(p.work / "brief.pem", pem(leaf))
    keyf = write(p.work / "brief.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    p.va.cli("trust", "add", caf)
    # Once CRLs are in use on the VA (an earlier test may have installed
    # one), every trusted CA needs its own: fail closed.
    crl = (x509.CertificateRevocationListBuilder().issuer_name(caname)
           .last_update(now - datetime.timedelta(minutes=1))
           .next_update(now + datetime.timedelta(days=5))
           .add_extension(x509.CRLNumber(1), critical=False)
           .sign(cakey, hashes.SHA256()))
    p.va.cli("trust", "crl", write(p.work / "brief.crl",
                                   crl.public_bytes(serialization.Encoding.PEM)))
    p.va.cli("role", "member", "add", "CA1", "--match", "cn", "--value",
             "brief.example")
    ctx = ssl.create_default_context(cafile=str(p.mgmt))
    ctx.load_cert_chain(str(certf), str(keyf))

    def get(s):
        s.sendall(b"GET /peer/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                break
            data += d
        return data.split(b" ", 2)[1] if data else b""

    try:
        raw = socket.create_connection(("127.0.0.1", p.port), timeout=20)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        assert get(s) == b"200"
        sess = s.session
        # Two days later by the VA's clock (the test clock, no waiting).
        p.va.cli_json("debug", "clock", "--advance", str(2 * 86400))
        assert get(s) == b"403"		# the open connection
        s.close()
        raw = socket.create_connection(("127.0.0.1", p.port), timeout=20)
        # A resumed session: the handshake skips the certificate checks,
        # so its first request is refused (403 untrusted); should the
        # server decline to resume, the full handshake fails with the
        # "certificate expired" alert instead. Nothing else passes.
        s2 = ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                             session=sess)
        resumed = s2.session_reused
        try:
            code, alert = get(s2), None
        except ssl.SSLError as e:
            code, alert = None, e
        s2.close()
        if resumed:
            assert code == b"403", (code, alert)
        else:
            assert code is None and alert is not None and \
                re.search(r"certificate.expired", str(alert), re.I), \
                (code, alert)
    finally:
        p.va.cli_json("debug", "clock", "--offset", "0")
        fp = [t["fingerprint"] for t in p.va.cli_json("trust", "list")
              if "Brief" in t["subject"]][0]
        p.va.cli("trust", "remove", fp)
