"""A CA node publishing to a VA node on 127.0.0.1, joined as in the demo:
the set-up shared by bench_publish.py and bench_ocsp.py.

The CA has two CAs on one soft token: "Mgmt" (the TLS certificates of the
peer link) and "Pub" (published to the VA, whose "ocsp" key binding is its
delegated OCSP signer). The CA is driven over its admin socket (the
protocol of src/admin/proto.h) where speed matters, with the CLI
otherwise.
"""
import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

PIN = "bench-PIN-1234"
BIN = "build/sallyport"


def sp(d, *args, check=True):
    r = subprocess.run([BIN, "-d", str(d), *map(str, args)],
                       capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        sys.exit(f"sallyport {' '.join(map(str, args))}: {r.stderr}")
    return r


def spj(d, *args):
    return json.loads(sp(d, "--json", *args).stdout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Admin:
    """One connection to a node's admin socket."""

    def __init__(self, d):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(str(Path(d) / "admin.sock"))

    def call(self, cmd, **args):
        body = json.dumps({"cmd": cmd, "args": args}).encode()
        self.s.sendall(struct.pack(">I", len(body)) + body)
        n = struct.unpack(">I", self._read(4))[0]
        res = json.loads(self._read(n))
        if not res.get("ok"):
            raise RuntimeError(f"{cmd}: {res}")
        return res.get("result")

    def _read(self, n):
        b = b""
        while len(b) < n:
            d = self.s.recv(n - len(b))
            if not d:
                raise RuntimeError("admin socket closed")
            b += d
        return b


def start(d, log):
    p = subprocess.Popen([BIN, "run", str(d)], stdout=open(log, "ab"),
                         stderr=subprocess.STDOUT)
    for _ in range(200):
        if sp(d, "status", check=False).returncode == 0:
            return p
        time.sleep(0.05)
    sys.exit(f"node {d} did not start; see {log}")


def stop(p):
    p.terminate()
    p.wait(timeout=60)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


class Pair:
    """Two nodes in work/: self.ca publishes CA "Pub" to self.va."""

    def __init__(self, work):
        self.work = Path(work)
        self.ca, self.va = self.work / "ca", self.work / "va"
        self.procs = {}
        self.pport, self.oport = free_port(), free_port()

    def start_va(self):
        self.procs["va"] = start(self.va, self.work / "va.log")
        sp(self.va, "token", "activate", "V", "--pin", PIN)

    def stop_va(self):
        stop(self.procs.pop("va"))

    def close(self):
        for p in self.procs.values():
            try:
                stop(p)
            except Exception:	# noqa: BLE001
                p.kill()
        self.procs.clear()

    def issue_file(self, csrtext, profile, cname="Mgmt"):
        f = self.work / "x.csr"
        f.write_text(csrtext)
        return sp(self.ca, "cert", "issue", "--ca", cname, "--profile",
                  profile, "--csr", f).stdout

    def setup(self, publisher=True):
        w, ca, va = self.work, self.ca, self.va
        sp(w, "init", ca, "--name", "bench-ca")
        sp(w, "init", va, "--name", "bench-va", "--peer-listen",
           f"127.0.0.1:{self.pport}", "--va-listen",
           f"127.0.0.1:{self.oport}")
        self.procs["ca"] = start(ca, w / "ca.log")
        self.procs["va"] = start(va, w / "va.log")
        sp(ca, "token", "create", "T", "--pin", PIN)
        for k in ("mgmt", "tls", "pub"):
            sp(ca, "token", "genkey", "T", k, "--alg", "ec-p256")
        sp(ca, "ca", "create", "Mgmt", "--dn", "CN=Bench Mgmt", "--token",
           "T", "--key", "mgmt")
        sp(ca, "ca", "create", "Pub", "--dn", "CN=Bench Published CA",
           "--token", "T", "--key", "pub")
        mgmt = w / "mgmt.pem"
        mgmt.write_text(sp(ca, "ca", "cert", "Mgmt").stdout)
        self.pub_pem = w / "pub.pem"
        self.pub_pem.write_text(sp(ca, "ca", "cert", "Pub").stdout)
        sp(ca, "keybinding", "create", "ca-tls", "--token", "T", "--key",
           "tls")
        (w / "ca.pem").write_text(self.issue_file(sp(
            ca, "keybinding", "csr", "ca-tls").stdout, "TLS_CLIENT"))
        sp(ca, "keybinding", "install-cert", "ca-tls", "--cert",
           w / "ca.pem", "--chain", mgmt)
        sp(ca, "trust", "add", "--cert", mgmt)
        sp(va, "token", "create", "V", "--pin", PIN)
        for k in ("tls", "ocsp"):
            sp(va, "token", "genkey", "V", k, "--alg", "ec-p256")
        sp(va, "keybinding", "create", "va-tls", "--token", "V", "--key",
           "tls")
        (w / "va.pem").write_text(self.issue_file(sp(
            va, "keybinding", "csr", "va-tls", "--san",
            "IP:127.0.0.1").stdout, "TLS_SERVER"))
        sp(va, "keybinding", "install-cert", "va-tls", "--cert",
           w / "va.pem", "--chain", mgmt)
        sp(va, "keybinding", "create", "ocsp", "--token", "V", "--key",
           "ocsp", "--type", "ocsp")
        (w / "ocsp.pem").write_text(self.issue_file(sp(
            va, "keybinding", "csr", "ocsp", "--dn",
            "CN=Bench OCSP").stdout, "OCSPSIGNER", "Pub"))
        sp(va, "keybinding", "install-cert", "ocsp", "--cert",
           w / "ocsp.pem", "--chain", self.pub_pem)
        sp(va, "trust", "add", "--cert", mgmt)
        sp(va, "peer", "incoming", "keybinding", "va-tls")
        sp(va, "peer", "incoming", "enable")
        sp(va, "role", "create", "bench")
        for rule in ("/peerincoming", "/peerpublish/writecert",
                     "/peerpublish/writecrl"):
            sp(va, "role", "rule", "set", "bench", rule, "allow")
        sp(va, "role", "rule", "set", "bench", "/ca/", "allow",
           "--recursive")
        sp(va, "role", "member", "add", "bench", "--match", "cn", "--value",
           "ca-tls")
        sp(ca, "peer", "connector", "add", "va", "--url",
           f"https://127.0.0.1:{self.pport}/peer/v1", "--auth", "ca-tls")
        if publisher:
            sp(ca, "publisher", "add", "vapub", "--connector", "va",
               "--ca", "Pub")
