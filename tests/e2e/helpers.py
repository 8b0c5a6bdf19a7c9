"""Helpers for the end-to-end tests: running the binary, making CSRs with
python3-cryptography and `openssl req`, cross-checking with openssl and
certtool."""
import datetime
import ipaddress
import itertools
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SALLYPORT_BIN") or str(REPO / "build-asan" / "sallyport")
if not os.path.isabs(BIN):
    BIN = str(REPO / BIN)
CLI_TIMEOUT = 60

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}

_SAN_PATTERNS = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
    r"SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)")

_seq = itertools.count()


def sp_env(extra=None):
    """The environment for every process we start."""
    env = dict(os.environ)
    env.pop("SALLYPORT_DIR", None)
    env.update(SANITIZER_ENV)
    if extra:
        env.update(extra)
    return env


def sanitizer_report(text):
    m = _SAN_PATTERNS.search(text)
    return m.group(0) if m else None


def sp(*args, input=None, env=None, timeout=CLI_TIMEOUT):
    """Runs the binary; returns a CompletedProcess with text stdout/stderr
    and the raw bytes in .stdout_bytes. Fails on a sanitizer report."""
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run([BIN, *map(str, args)], input=input,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       capture_output=True, env=sp_env(env), timeout=timeout)
    r = subprocess.CompletedProcess(
        p.args, p.returncode, p.stdout.decode(errors="replace"),
        p.stderr.decode(errors="replace"))
    r.stdout_bytes = p.stdout
    rep = sanitizer_report(r.stderr)
    if rep is not None:
        pytest.fail(f"sanitizer report from sallyport {' '.join(map(str, args))}"
                    f":\n{r.stderr}")
    return r


def parse_json(r):
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        pytest.fail(f"{' '.join(r.args[1:])}: stdout is not JSON ({e}):\n"
                    f"{r.stdout!r}\nstderr: {r.stderr}")


def expect_fail(r, code=1, match=None, args=()):
    """Asserts r failed as the contract says; returns its stderr."""
    what = f"sallyport {' '.join(map(str, args))}"
    assert r.returncode == code, (
        f"{what}: expected exit {code}, got {r.returncode}\n"
        f"stdout: {r.stdout}\nstderr: {r.stderr}")
    if code == 1:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sallyport: "), (
            f"{what}: expected one line 'sallyport: <message>' on stderr, "
            f"got {r.stderr!r}")
    else:
        assert r.stderr.strip(), f"{what}: exit {code} with empty stderr"
    if match is not None:
        assert re.search(match, r.stderr, re.I), (
            f"{what}: stderr does not match /{match}/: {r.stderr!r}")
    return r.stderr


# --- keys and CSRs ---------------------------------------------------------

def make_key(kind):
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def make_csr(kind="ec-p256", cn="test.example", dns=(), ips=(), emails=(),
             uris=(), der=False, key=None):
    """Returns (key, CSR bytes) made with python3-cryptography."""
    key = key or make_key(kind)
    b = x509.CertificateSigningRequestBuilder()
    b = b.subject_name(x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    names = ([x509.DNSName(d) for d in dns]
             + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
             + [x509.RFC822Name(e) for e in emails]
             + [x509.UniformResourceIdentifier(u) for u in uris])
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    alg = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = b.sign(key, alg)
    enc = serialization.Encoding.DER if der else serialization.Encoding.PEM
    return key, csr.public_bytes(enc)


def openssl_csr(workdir, cn, kind="ec-p256", sans=None):
    """A PEM CSR made by `openssl req` (sans like "DNS:a.example,IP:1.2.3.4")."""
    n = next(_seq)
    keyf = Path(workdir) / f"ossl{n}.key"
    newkey = {"ec-p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
              "ec-p384": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
              "rsa2048": ["-newkey", "rsa:2048"],
              "ed25519": ["-newkey", "ed25519"]}[kind]
    cmd = ["openssl", "req", "-new", *newkey, "-nodes", "-keyout", str(keyf),
           "-subj", f"/CN={cn}"]
    if sans:
        cmd += ["-addext", f"subjectAltName={sans}"]
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


# --- certificates ----------------------------------------------------------

def split_pems(text):
    """The PEM certificates in text, in order (cryptography 38 has no
    load_pem_x509_certificates)."""
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                        text, re.S)
    return [x509.load_pem_x509_certificate(b.encode()) for b in blocks]


def load_cert(pem):
    if isinstance(pem, str):
        pem = pem.encode()
    return x509.load_pem_x509_certificate(pem)


def ext(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def fingerprint(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


def serial_hex(cert):
    return format(cert.serial_number, "040x")


def to_colon_upper(serial):
    return ":".join(serial[i:i + 2] for i in range(0, len(serial), 2)).upper()


def utcnow():
    return datetime.datetime.utcnow()


def openssl_verify(root, untrusted, leaf, crl=None):
    cmd = ["openssl", "verify", "-x509_strict", "-CAfile", str(root)]
    if untrusted:
        cmd += ["-untrusted", str(untrusted)]
    if crl:
        cmd += ["-crl_check", "-CRLfile", str(crl)]
    cmd.append(str(leaf))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def certtool_verify(root, chain):
    return subprocess.run(
        ["certtool", "--verify", "--load-ca-certificate", str(root),
         "--infile", str(chain)], capture_output=True, text=True, timeout=60)


# --- a node with a token, a root CA and a sub CA -------------------------

class Issued:
    def __init__(self, js, path):
        self.json = js
        self.pem = js["pem"]
        self.cert = load_cert(self.pem)
        self.serial = js["serial"]
        self.path = path


class Pki:
    TOKEN = "tok"
    PIN = "s3cret-PIN-1"
    ROOT_DN = "CN=Test Root,O=Example,C=SE"
    SUB_DN = "CN=Test Sub,OU=Issuing,O=Example,C=SE"
    SUB_CRL_PERIOD = 3600

    def __init__(self, node):
        self.node = node
        self.work = node.work

    @classmethod
    def build(cls, node):
        p = cls(node)
        node.cli("token", "create", cls.TOKEN, "--pin", cls.PIN)
        node.cli("token", "genkey", cls.TOKEN, "root-key", "--alg", "ec-p256")
        node.cli("token", "genkey", cls.TOKEN, "sub-key", "--alg", "ec-p384")
        p.root = node.cli_json("ca", "create", "root", "--dn", cls.ROOT_DN,
                               "--token", cls.TOKEN, "--key", "root-key")
        p.sub = node.cli_json("ca", "create", "sub", "--dn", cls.SUB_DN,
                              "--token", cls.TOKEN, "--key", "sub-key",
                              "--signed-by", "root", "--crl-period",
                              str(cls.SUB_CRL_PERIOD))
        p.root_pem = node.write("root.pem", node.cli("ca", "cert", "root").stdout)
        p.sub_pem = node.write("sub.pem", node.cli("ca", "cert", "sub").stdout)
        p.root_cert = load_cert(p.root_pem.read_bytes())
        p.sub_cert = load_cert(p.sub_pem.read_bytes())
        return p

    def csr_file(self, csr):
        return self.node.write(f"req{next(_seq)}.csr", csr)

    def issue(self, csr, profile="TLS_SERVER", ca="sub", days=None):
        args = ["cert", "issue", "--ca", ca, "--profile", profile,
                "--csr", self.csr_file(csr)]
        if days is not None:
            args += ["--days", str(days)]
        js = self.node.cli_json(*args)
        path = self.node.write(f"cert-{js['serial']}.pem", js["pem"])
        return Issued(js, path)

    def issue_fail(self, csr, match=None, profile="TLS_SERVER", ca="sub", days=None,
                   code=1):
        """Issuance must fail with `match` and store nothing."""
        before = self.node.cert_count()
        args = ["cert", "issue", "--ca", ca, "--profile", profile,
                "--csr", csr if isinstance(csr, Path) else self.csr_file(csr)]
        if days is not None:
            args += ["--days", str(days)]
        msg = self.node.fail(*args, match=match, code=code)
        after = self.node.cert_count()
        assert after == before, (
            f"failed issuance stored something: cert list {before} -> {after}")
        return msg

    def chain_file(self, issued):
        return self.node.write(f"chain-{issued.serial}.pem",
                               issued.pem + self.sub_pem.read_text())


# --- a TLS server for curl ------------------------------------------------

def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TlsServer:
    """`openssl s_server -www` on 127.0.0.1 with a certificate we issued."""

    def __init__(self, workdir, cert_pem, key, chain_pem):
        import socket
        import time
        n = next(_seq)
        self.keyf = Path(workdir) / f"srv{n}.key"
        self.keyf.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        certf = Path(workdir) / f"srv{n}.crt"
        certf.write_text(cert_pem)
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-quiet", "-www", "-accept",
             f"127.0.0.1:{self.port}", "-cert", str(certf), "-key",
             str(self.keyf), "-cert_chain", str(chain_pem)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("s_server exited: "
                                     + self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise AssertionError("s_server did not listen")
                time.sleep(0.05)	# poll interval

    def curl(self, host, cafile, crlfile=None):
        cmd = ["curl", "-sS", "-o", "/dev/null", "--max-time", "20",
               "--cacert", str(cafile),
               "--resolve", f"{host}:{self.port}:127.0.0.1"]
        if crlfile:
            cmd += ["--crlfile", str(crlfile)]
        cmd.append(f"https://{host}:{self.port}/")
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
