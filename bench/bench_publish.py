#!/usr/bin/python3
"""Publishing benchmark (issue 8): how soon a revocation is visible at the
VA, and how fast a queue drains after an outage.

Two real nodes on 127.0.0.1 (a CA node publishing to a VA node, joined as
in the demo). The CA is driven over its admin socket directly (the
protocol of src/admin/proto.h), so the figures do not include starting a
CLI process per request.

  latency  `cert.revoke` answered -> the VA's OCSP responder says revoked
           (a request with a nonce, so never a cached answer); p50 / p99
           over N revocations, one at a time.
  drain    the VA stopped while the CA issues N certificates; the VA
           started again: entries delivered per second until the queue is
           empty.

The machine is shared and noisy: figures are medians, quoted with the
run's other figures.

usage: bench/bench_publish.py [BINARY] [--quick]
"""
import base64
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

import vapair
from vapair import Admin, pct, sp, spj

vapair.BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and
                             not sys.argv[1].startswith("-")
                             else "build/sallyport")
QUICK = "--quick" in sys.argv
N_LAT = 100 if QUICK else 1000
N_DRAIN = 5000 if QUICK else 100000


def main():
    work = Path(tempfile.mkdtemp(prefix="sallyport-bench-pub."))
    pair = vapair.Pair(work)
    procs = pair.procs
    ca, oport = pair.ca, pair.oport
    try:
        pair.setup()
        pubca = x509.load_pem_x509_certificate(pair.pub_pem.read_bytes())

        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                          "leaf.example")]))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("leaf.example")]), critical=False)
            .sign(key, hashes.SHA256())).public_bytes(
                serialization.Encoding.DER)
        csr_b64 = base64.b64encode(csr).decode()
        adm = Admin(ca)

        def issue():
            pem = adm.call("cert.issue", ca="Pub", profile="TLS_SERVER",
                           csr=csr_b64)
            return x509.load_der_x509_certificate(
                base64.b64decode(pem["der"]))

        def ocsp_status(cert):
            rq = (ocsp.OCSPRequestBuilder().add_certificate(
                cert, pubca, hashes.SHA1())
                .add_extension(x509.OCSPNonce(os.urandom(16)), False)
                .build())
            req = urllib.request.Request(
                f"http://127.0.0.1:{oport}/ocsp",
                rq.public_bytes(serialization.Encoding.DER),
                {"Content-Type": "application/ocsp-request"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return ocsp.load_der_ocsp_response(r.read()).certificate_status

        # (1) Latency: revoke returns -> the VA says revoked.
        certs = [issue() for _ in range(N_LAT)]
        deadline = time.monotonic() + 60
        while ocsp_status(certs[-1]) != ocsp.OCSPCertStatus.GOOD:
            if time.monotonic() > deadline:
                sys.exit("the VA never learnt of the issued certificates")
            time.sleep(0.05)
        lat = []
        for c in certs:
            adm.call("cert.revoke", ca="Pub",
                     serial=format(c.serial_number, "x"),
                     reason="keyCompromise")
            t0 = time.perf_counter()
            while ocsp_status(c) != ocsp.OCSPCertStatus.REVOKED:
                if time.perf_counter() - t0 > 10:
                    sys.exit("a revocation never reached the VA")
            lat.append(time.perf_counter() - t0)
        print(f"publish latency (cert.revoke answered -> OCSP revoked), "
              f"{N_LAT} revocations: p50 {pct(lat, .5) * 1e3:.1f} ms, "
              f"p99 {pct(lat, .99) * 1e3:.1f} ms (target p50 < 50 ms)")

        # (2) Drain: VA down while the CA issues N_DRAIN.
        pair.stop_va()
        t0 = time.perf_counter()
        n_threads = 4
        errs = []

        def issuer(k):
            a = Admin(ca)
            try:
                for _ in range(k):
                    a.call("cert.issue", ca="Pub", profile="TLS_SERVER",
                           csr=csr_b64)
            except Exception as e:	# noqa: BLE001 (reported below)
                errs.append(e)
        ts = [threading.Thread(target=issuer, args=(N_DRAIN // n_threads,))
              for _ in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errs:
            sys.exit(f"issuing failed: {errs[0]}")
        t_issue = time.perf_counter() - t0
        depth = spj(ca, "publisher", "show", "vapub")["queue"]
        pair.start_va()
        sp(ca, "publisher", "retry", "vapub")
        t0 = time.perf_counter()
        while True:
            d = spj(ca, "publisher", "show", "vapub")["queue"]
            if d == 0:
                break
            if time.perf_counter() - t0 > 1800:
                sys.exit(f"queue still {d} deep after 30 minutes")
            time.sleep(0.2)
        t_drain = time.perf_counter() - t0
        print(f"queue drain after an outage: {depth} entries in "
              f"{t_drain:.1f} s = {depth / t_drain:.0f} entries/s "
              f"(issued at {N_DRAIN / t_issue:.0f}/s over the admin "
              f"socket meanwhile)")
    finally:
        pair.close()
        if "--keep" not in sys.argv:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
