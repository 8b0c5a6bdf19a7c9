#!/usr/bin/python3
"""OCSP responder benchmark (issue 8): responses per second at the VA, next
to a static-file server serving a body of the same size and to
`openssl ocsp` as a responder, all on this machine in one run.

Set-up (not timed): a CA node publishing to a VA node (bench/vapair.py),
one certificate issued and published, one nonce-less request for it; the
VA's response to that request is the body nginx serves.

Rows, each run ROUNDS times interleaved (so drift hits all alike), the
median printed; wrk with 2 threads and 64 keep-alive connections, D
seconds per run:

  va GET  loops=L   GET /ocsp/<base64>, a pre-signed response from memory
  va POST loops=L   POST /ocsp, the same request in the body
  va nonce          POST with a fresh 16-byte nonce per request: signed
                    per request (loops = cores)
  nginx   workers=W the response as a static file (open_file_cache on,
                    access_log off, sendfile on)
  bare evhttp       build/bench/bench_bare_http: the same bytes from an
                    evhttp server that does nothing else (one loop), the
                    ceiling of "va ... loops=1" with this HTTP library
  openssl ocsp      `openssl ocsp -port -multi 2`: signs every response,
                    one connection per request (it does not keep alive)
  openssl speed     ecdsap256 signatures/s, -multi 2: the ceiling of the
                    nonce row (no HTTP, no ASN.1)

wrk runs on the same 2 cores as the server it measures, for every row
alike. The machine is shared and noisy: compare the ratios of one run.

usage: bench/bench_ocsp.py [BINARY] [--quick] [--keep]
"""
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

import vapair
from vapair import sp

vapair.BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and
                             not sys.argv[1].startswith("-")
                             else "build/sallyport")
QUICK = "--quick" in sys.argv
ROUNDS = 1 if QUICK else 3
DUR = 2 if QUICK else 5
CONNS = 64
NCPU = os.cpu_count() or 1


def lua_bytes(b):
    return '"' + "".join(f"\\{c}" for c in b) + '"'


def wrk(url, script=None):
    """Requests/s of one wrk run (non-2xx answers make it fail)."""
    cmd = ["wrk", "-t2", f"-c{CONNS}", f"-d{DUR}s"]
    if script is not None:
        cmd += ["-s", str(script)]
    r = subprocess.run(cmd + [url], capture_output=True, text=True,
                       timeout=DUR + 60)
    if r.returncode != 0:
        sys.exit(f"wrk {url}: {r.stderr}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if m is None:
        sys.exit(f"wrk {url}: no rate in\n{r.stdout}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if bad is not None:
        sys.exit(f"wrk {url}: {bad.group(1)} error answers\n{r.stdout}")
    return float(m.group(1))


def wait_port(port, proc):
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return		# an answer, whatever it is
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"server on {port} exited")
            time.sleep(0.05)
    sys.exit(f"nothing listening on {port}")


def set_loops(va, n):
    conf = va / "sallyport.conf"
    text = re.sub(r"\nloops = \d+\n", "\n", conf.read_text())
    conf.write_text(text.replace("\n[va]\n", f"\n[va]\nloops = {n}\n"))


def nginx_start(work, port, workers):
    www = work / "www"
    conf = work / f"nginx{workers}.conf"
    conf.write_text(f"""daemon off;
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx.err;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    open_file_cache max=16;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location / {{ default_type application/ocsp-response; }}
    }}
}}
""")
    p = subprocess.Popen(["nginx", "-p", str(work), "-c", str(conf),
                          "-e", str(work / "nginx.err")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, p)
    return p


def openssl_speed():
    r = subprocess.run(["openssl", "speed", "-seconds", "1" if QUICK else
                        "3", "-multi", str(NCPU), "ecdsap256"],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)",
                  r.stdout)
    return float(m.group(1)) if m else float("nan")


def openssl_ocsp(work, ca_pem, post):
    """wrk against `openssl ocsp`, both in a network namespace of their
    own: openssl ocsp -port binds the wildcard address, and nothing here
    may listen beyond the loopback. None if no namespace can be made."""
    cmd = f"""ip link set lo up || exit 97
openssl ocsp -port 8888 -index {work}/index.txt -CA {ca_pem} \\
    -rsigner {work}/ossl.pem -rkey {work}/ossl.key -multi {NCPU} \\
    -nmin 60 >/dev/null 2>&1 &
pid=$!
sleep 1
wrk -t2 -c{CONNS} -d{DUR}s -s {post} http://127.0.0.1:8888
rc=$?
# Its children first known, then all at once (it would restart them).
kill -KILL $pid $(pgrep -P $pid)
wait
exit $rc
"""
    try:
        r = subprocess.run(["unshare", "-n", "bash", "-c", cmd],
                           capture_output=True, text=True, timeout=DUR + 60)
    except subprocess.TimeoutExpired:
        print("openssl ocsp row skipped: timed out", file=sys.stderr)
        return None
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if r.returncode != 0 or m is None:
        print(f"openssl ocsp row skipped (needs unshare -n, i.e. root): "
              f"{r.stderr.strip()[:200]}", file=sys.stderr)
        return None
    return float(m.group(1))


def main():
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: scripts/deps.sh bench installs it")
    work = Path(tempfile.mkdtemp(prefix="sallyport-bench-ocsp."))
    os.chmod(work, 0o755)		# nginx workers may run as nobody
    (work / "nginx-tmp").mkdir()
    pair = vapair.Pair(work)
    procs = []
    try:
        pair.setup()
        pubca = x509.load_pem_x509_certificate(pair.pub_pem.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                          "leaf.example")]))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("leaf.example")]), critical=False)
            .sign(key, hashes.SHA256()))
        leaf_pem = pair.issue_file(csr.public_bytes(
            serialization.Encoding.PEM).decode(), "TLS_SERVER", "Pub")
        leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
        req = (ocsp.OCSPRequestBuilder().add_certificate(
            leaf, pubca, hashes.SHA1()).build()).public_bytes(
                serialization.Encoding.DER)
        path = "/ocsp/" + urllib.parse.quote(base64.b64encode(req).decode(),
                                             safe="")
        va_url = f"http://127.0.0.1:{pair.oport}"

        def va_body():
            deadline = time.monotonic() + 30
            while True:
                with urllib.request.urlopen(va_url + path,
                                            timeout=10) as r:
                    body = r.read()
                st = ocsp.load_der_ocsp_response(body)
                if (st.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
                        and st.certificate_status ==
                        ocsp.OCSPCertStatus.GOOD):
                    return body
                if time.monotonic() > deadline:
                    sys.exit("the VA never said good")
                time.sleep(0.1)
        body = va_body()
        (work / "www").mkdir()
        (work / "www" / "resp").write_bytes(body)

        # The scripts: POST the same request; POST with a fresh nonce.
        nonce = b"\xa5" * 16
        nreq = (ocsp.OCSPRequestBuilder().add_certificate(
            leaf, pubca, hashes.SHA1()).add_extension(
                x509.OCSPNonce(nonce), False).build()).public_bytes(
                    serialization.Encoding.DER)
        at = nreq.index(nonce)
        head = ('wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/ocsp-request"\n')
        post = work / "post.lua"
        post.write_text(head + f'wrk.path = "/ocsp"\nwrk.body = '
                        f'{lua_bytes(req)}\n')
        noncel = work / "nonce.lua"
        noncel.write_text(head + f"local pre = {lua_bytes(nreq[:at])}\n"
                          f"local post = {lua_bytes(nreq[at + 16:])}\n" + """
request = function()
    local t = {}
    for i = 1, 16 do t[i] = string.char(math.random(0, 255)) end
    return wrk.format(nil, "/ocsp", nil, pre .. table.concat(t) .. post)
end
""")

        # openssl ocsp: its own signer (a key file), the same CA.
        okey = ec.generate_private_key(ec.SECP256R1())
        (work / "ossl.key").write_bytes(okey.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        ocsr = (x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                          "openssl ocsp")]))
            .sign(okey, hashes.SHA256()))
        (work / "ossl.pem").write_text(pair.issue_file(ocsr.public_bytes(
            serialization.Encoding.PEM).decode(), "OCSPSIGNER", "Pub"))
        exp = leaf.not_valid_after.strftime("%y%m%d%H%M%SZ")
        (work / "index.txt").write_text(
            f"V\t{exp}\t\t{leaf.serial_number:X}\tunknown\t"
            f"{leaf.subject.rfc4514_string()}\n")

        rows = {}

        def add(name, v):
            rows.setdefault(name, []).append(v)
            print(f"  {name}: {v:.0f}/s", file=sys.stderr)

        for rnd in range(ROUNDS):
            print(f"round {rnd + 1}/{ROUNDS}", file=sys.stderr)
            for loops in sorted({1, NCPU}):
                pair.stop_va()
                set_loops(pair.va, loops)
                pair.start_va()
                va_body()	# the cache filled (re-signed at start)
                add(f"va GET  loops={loops}", wrk(va_url + path))
                add(f"va POST loops={loops}", wrk(va_url, post))
            add(f"va nonce loops={NCPU}", wrk(va_url, noncel))
            bare = Path(vapair.BIN).parent / "bench" / "bench_bare_http"
            if bare.exists():
                port = vapair.free_port()
                p = subprocess.Popen([str(bare), str(port),
                                      str(work / "www" / "resp")])
                procs.append(p)
                wait_port(port, p)
                add("bare evhttp loops=1", wrk(f"http://127.0.0.1:{port}/"))
                p.terminate()
                p.wait(timeout=30)
                procs.remove(p)
            for workers in sorted({1, NCPU}):
                port = vapair.free_port()
                p = nginx_start(work, port, workers)
                procs.append(p)
                add(f"nginx   workers={workers}",
                    wrk(f"http://127.0.0.1:{port}/resp"))
                p.terminate()
                p.wait(timeout=30)
                procs.remove(p)
            v = openssl_ocsp(work, pair.pub_pem, post)
            if v is not None:
                add(f"openssl ocsp -multi {NCPU}", v)
        speed = openssl_speed()

        med = {k: statistics.median(v) for k, v in rows.items()}
        ng = med[f"nginx   workers={NCPU}"]
        ng1 = med["nginx   workers=1"]
        print(f"OCSP responses/s, {len(body)}-byte response, wrk -t2 "
              f"-c{CONNS}, {DUR} s runs, median of {ROUNDS}, {NCPU} cores")
        for k, v in med.items():
            ref = ng1 if k.endswith("=1") else ng
            print(f"  {k:<24} {v:>9.0f}/s   {100 * v / ref:5.0f}% of "
                  f"nginx {'1 worker' if ref is ng1 else f'{NCPU} workers'}")
        print(f"  {'openssl speed ecdsap256':<24} {speed:>9.0f}/s   "
              f"(signatures, -multi {NCPU}); va nonce is "
              f"{100 * med[f'va nonce loops={NCPU}'] / speed:.0f}% of it")
    finally:
        for p in procs:
            p.kill()
        pair.close()
        if "--keep" not in sys.argv:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
