"""End-to-end: OCSP signer key bindings (`keybinding create --type ocsp`,
whose certificate must carry id-kp-OCSPSigning) and `init --va-listen`.
The responder asked by real clients is in test_va_e2e.py."""
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from helpers import sp


def _chain(pki):
    return pki.node.write("chain.pem", pki.sub_pem.read_text() +
                          pki.root_pem.read_text())


def _binding(pki, name, key):
    n = pki.node
    n.cli("token", "genkey", pki.TOKEN, key, "--alg", "ec-p256")
    js = n.cli_json("keybinding", "create", name, "--token", pki.TOKEN,
                    "--key", key, "--type", "ocsp")
    assert js["type"] == "ocsp"
    return n.cli("keybinding", "csr", name, "--dn", f"CN={name}").stdout


def test_ocsp_binding_installs_ocspsigner_cert(pki):
    n = pki.node
    csr = _binding(pki, "ocsp-sub", "ocsp-key")
    iss = pki.issue(csr, profile="OCSPSIGNER")
    cert = x509.load_pem_x509_certificate(iss.path.read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert ExtendedKeyUsageOID.OCSP_SIGNING in eku.value
    n.cli("keybinding", "install-cert", "ocsp-sub", "--cert", iss.path,
          "--chain", _chain(pki))
    kb = [k for k in n.cli_json("keybinding", "list")
          if k["name"] == "ocsp-sub"][0]
    assert kb["type"] == "ocsp"


def test_ocsp_binding_refuses_cert_without_ocspsigning(pki):
    n = pki.node
    csr = _binding(pki, "ocsp-bad", "ocsp-bad-key")
    iss = pki.issue(csr, profile="TLS_CLIENT")
    n.fail("keybinding", "install-cert", "ocsp-bad", "--cert", iss.path,
           "--chain", _chain(pki), match="OCSPSigning")


def test_unknown_binding_type(pki):
    n = pki.node
    n.cli("token", "genkey", pki.TOKEN, "typ-key", "--alg", "ec-p256")
    n.fail("keybinding", "create", "typ", "--token", pki.TOKEN, "--key",
           "typ-key", "--type", "tsa", match="known: auth, ocsp")


def test_init_va_listen(tmp_path):
    d = tmp_path / "n"
    assert sp("init", d, "--va-listen", "127.0.0.1:18080").returncode == 0
    conf = (d / "sallyport.conf").read_text()
    assert "[va]" in conf and "listen = 127.0.0.1:18080" in conf
    assert sp("check", d).returncode == 0
    r = sp("init", tmp_path / "m", "--va-listen", "nope")
    assert r.returncode != 0 and "HOST:PORT" in r.stderr


def _va_conf(tmp_path, name, port, loops=None):
    d = tmp_path / name
    assert sp("init", d, "--va-listen", f"127.0.0.1:{port}").returncode == 0
    if loops is not None:
        conf = d / "sallyport.conf"
        conf.write_text(conf.read_text().replace(
            "\n[va]\n", f"\n[va]\nloops = {loops}\n"))
    return d


def test_va_loops_setting_and_port_in_use(tmp_path):
    """[va] loops is checked; a port another socket holds is refused at
    start (the SO_REUSEPORT group must not join a stranger's socket)."""
    import socket

    import helpers
    from conftest import Node

    port = helpers.free_port()
    bad = _va_conf(tmp_path, "bad", port, loops=9)
    r = sp("check", bad)
    assert r.returncode != 0 and "loops" in r.stderr, r.stderr
    n = Node(tmp_path / "one", "one")
    conf = n.dir / "sallyport.conf"
    conf.write_text(conf.read_text() +
                    f"\n[va]\nloops = 1\nlisten = 127.0.0.1:{port}\n")
    n.start()
    try:
        assert n.cli_json("va", "status")["responder"]["loops"] == 1
    finally:
        n.stop()
    # Someone else's listening socket, even one with SO_REUSEPORT set.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        r = sp("run", n.dir, timeout=30)
        assert r.returncode != 0, r
        assert "cannot listen" in r.stderr, r.stderr
