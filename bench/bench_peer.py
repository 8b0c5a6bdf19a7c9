#!/usr/bin/python3
"""Peer transport benchmark: pooled keep-alive round trips against a fresh
TLS connection per request, measured side by side in one run, and requests
per second through a connector pool of 8.

Two real nodes on 127.0.0.1 (a CA node and a VA node joined as in the
demo). Figures are medians and 99th percentiles; the machine is shared and
noisy, so compare the ratios printed, which come from the same run.

usage: bench/bench_peer.py [BINARY] [--quick]
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
QUICK = "--quick" in sys.argv
BIN = os.path.abspath(ARGS[0] if ARGS else "build/sallyport")
N_POOLED = 300 if QUICK else 3000
N_FRESH = 100 if QUICK else 600
N_RATE = 2000 if QUICK else 20000


def sp(d, *args, check=True):
    r = subprocess.run([BIN, "-d", str(d), *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        sys.exit(f"sallyport {' '.join(map(str, args))}: {r.stderr}")
    return r


def spj(d, *args):
    return json.loads(sp(d, *args, "--json").stdout)


def start(d, log):
    p = subprocess.Popen([BIN, "run", str(d)], stdout=subprocess.DEVNULL,
                         stderr=open(log, "wb"))
    for _ in range(300):
        if sp(d, "status", check=False).returncode == 0:
            return p
        time.sleep(0.05)
    sys.exit(f"node {d} did not start")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))]


def main():
    work = Path(tempfile.mkdtemp(prefix="sallyport-bench-peer."))
    ca, va = work / "ca", work / "va"
    procs = []
    try:
        sp(work, "init", ca, "--name", "bench-ca")
        sp(work, "init", va, "--name", "bench-va", "--peer-listen",
           "127.0.0.1:0")
        procs.append(start(ca, work / "ca.log"))
        procs.append(start(va, work / "va.log"))
        port = int(spj(va, "peer", "status")["listen"].rsplit(":", 1)[1])
        sp(ca, "token", "create", "T", "--pin", "bench-PIN-1234")
        for k in ("mgmt", "tls"):
            sp(ca, "token", "genkey", "T", k, "--alg", "ec-p256")
        sp(ca, "ca", "create", "Mgmt", "--dn", "CN=Bench Mgmt", "--token",
           "T", "--key", "mgmt")
        mgmt = work / "mgmt.pem"
        mgmt.write_text(sp(ca, "ca", "cert", "Mgmt").stdout)

        def issue(csrtext, profile):
            f = work / "x.csr"
            f.write_text(csrtext)
            return sp(ca, "cert", "issue", "--ca", "Mgmt", "--profile",
                      profile, "--csr", f).stdout

        sp(ca, "keybinding", "create", "ca-tls", "--token", "T", "--key",
           "tls")
        (work / "ca.pem").write_text(issue(sp(ca, "keybinding", "csr",
                                              "ca-tls").stdout, "TLS_CLIENT"))
        sp(ca, "keybinding", "install-cert", "ca-tls", "--cert",
           work / "ca.pem", "--chain", mgmt)
        sp(ca, "trust", "add", "--cert", mgmt)
        sp(va, "token", "create", "V", "--pin", "bench-PIN-1234")
        sp(va, "token", "genkey", "V", "tls", "--alg", "ec-p256")
        sp(va, "keybinding", "create", "va-tls", "--token", "V", "--key",
           "tls")
        (work / "va.pem").write_text(issue(sp(
            va, "keybinding", "csr", "va-tls", "--san",
            "IP:127.0.0.1").stdout, "TLS_SERVER"))
        sp(va, "keybinding", "install-cert", "va-tls", "--cert",
           work / "va.pem", "--chain", mgmt)
        sp(va, "trust", "add", "--cert", mgmt)
        sp(va, "peer", "incoming", "keybinding", "va-tls")
        sp(va, "peer", "incoming", "enable")
        sp(va, "role", "create", "bench")
        sp(va, "role", "rule", "set", "bench", "/peerincoming", "allow")
        sp(va, "role", "member", "add", "bench", "--match", "cn", "--value",
           "ca-tls")
        sp(va, "role", "member", "add", "bench", "--match", "cn", "--value",
           "bench-client")
        url = f"https://127.0.0.1:{port}/peer/v1"
        sp(ca, "peer", "connector", "add", "one", "--url", url, "--auth",
           "ca-tls", "--max", "1")
        sp(ca, "peer", "connector", "add", "eight", "--url", url, "--auth",
           "ca-tls", "--max", "8")

        # A client identity in files, for the Python client.
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                          "bench-client")]))
            .sign(key, hashes.SHA256()))
        (work / "cl.pem").write_text(issue(csr.public_bytes(
            serialization.Encoding.PEM).decode(), "TLS_CLIENT"))
        (work / "cl.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

        # (1) The node's own pooled ping: one keep-alive connection.
        spj(ca, "peer", "ping", "one", "--count", "50")	# warm up
        pooled = spj(ca, "peer", "ping", "one", "--count", N_POOLED)

        # (2)-(4) The same endpoint from one Python client.
        def ctx():
            c = ssl.create_default_context(cafile=str(mgmt))
            c.load_cert_chain(str(work / "cl.pem"), str(work / "cl.key"))
            return c

        def one(conn):
            t0 = time.perf_counter()
            conn.request("GET", "/peer/v1/ping")
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, body
            return (time.perf_counter() - t0) * 1e3

        c = ctx()
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=c)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        one(conn)
        py_keep = [one(conn) for _ in range(N_POOLED)]
        conn.close()

        def fresh(resume):
            c = ctx()
            sess = None
            xs = []
            for _ in range(N_FRESH):
                t0 = time.perf_counter()
                raw = socket.create_connection(("127.0.0.1", port))
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s = c.wrap_socket(raw, server_hostname="127.0.0.1",
                                  session=sess if resume else None)
                s.sendall(b"GET /peer/v1/ping HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                assert b" 200 " in data.split(b"\r\n", 1)[0], data[:100]
                if resume:
                    sess = s.session
                s.close()
                xs.append((time.perf_counter() - t0) * 1e3)
            return xs

        py_full = fresh(False)
        py_resumed = fresh(True)

        # (5) Throughput through a pool of 8.
        spj(ca, "peer", "ping", "eight", "--count", "200", "--parallel", 8)
        rate = spj(ca, "peer", "ping", "eight", "--count", N_RATE,
                   "--parallel", "64")

        print(f"Peer transport benchmark ({os.cpu_count()} cores, "
              f"{ssl.OPENSSL_VERSION}; latency in ms, median / p99)")
        rows = [
            ("node connector, pooled keep-alive (pool of 1)",
             pooled["median_ms"], pooled["p99_ms"], N_POOLED),
            ("python client, one keep-alive connection",
             statistics.median(py_keep), pct(py_keep, .99), N_POOLED),
            ("python client, fresh TLS connection, resumed",
             statistics.median(py_resumed), pct(py_resumed, .99), N_FRESH),
            ("python client, fresh TLS connection, full handshake",
             statistics.median(py_full), pct(py_full, .99), N_FRESH),
        ]
        print(f"{'':55} {'median':>8} {'p99':>8} {'n':>7}")
        for name, med, p99, n in rows:
            print(f"{name:55} {med:8.3f} {p99:8.3f} {n:7d}")
        print(f"ratio fresh full handshake / keep-alive (python, median): "
              f"{statistics.median(py_full) / statistics.median(py_keep):.1f}x")
        print(f"ratio fresh resumed / keep-alive (python, median):        "
              f"{statistics.median(py_resumed) / statistics.median(py_keep):.1f}x")
        print(f"pool of 8, 64 in flight: {rate['per_second']:.0f} pings/s "
              f"({rate['ok']} in {rate['elapsed_ms']:.0f} ms, max in use "
              f"{rate['max_in_use']}, max queued {rate['max_queued']})")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
