#!/usr/bin/python3
"""Sync benchmark (issue 9): a new VA synchronized from a CA holding N
certificates, next to the raw SQLite insert rate of the same number of
rows measured in the same run.

Set-up (not timed): the two nodes of bench/vapair.py with no publisher, N
certificates issued over the CA's admin socket (4 connections; every
tenth revoked).

  empty VA     `peer sync start` -> `done`: entries/s (every entry is
               compared and pushed: readcerts, then publish/certs with
               the certificate, verified against the issuer at the VA)
  up to date   the same again: compared only, nothing pushed
  raw SQLite   N rows of the VA's shape inserted into a scratch database
               in one transaction (python sqlite3, synchronous=FULL, WAL):
               the floor of what storing N entries costs

The issue's target is 1M entries in under 60 s (empty) and 15 s (up to
date); the figures are printed per entry so they scale.

usage: bench/bench_sync.py [BINARY] [--count N] [--quick] [--keep]
"""
import base64
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import vapair
from vapair import Admin, sp, spj

vapair.BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and
                             not sys.argv[1].startswith("-")
                             else "build/sallyport")
QUICK = "--quick" in sys.argv
N = 10000 if QUICK else 100000
if "--count" in sys.argv:
    N = int(sys.argv[sys.argv.index("--count") + 1])


def raw_sqlite(work, n):
    db = sqlite3.connect(work / "raw.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (issuer_id INTEGER, serial TEXT, status "
               "INTEGER, revoked_at INTEGER, reason INTEGER, not_before "
               "INTEGER, not_after INTEGER, fingerprint TEXT, subject TEXT, "
               "der BLOB, seq INTEGER, updated INTEGER, PRIMARY KEY "
               "(issuer_id, serial))")
    der = os.urandom(600)
    rows = [(1, f"{i:040x}", 0, 0, -1, 0, 0, "f" * 64, "CN=leaf", der, 1, 0)
            for i in range(n)]
    t0 = time.perf_counter()
    db.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.commit()
    dt = time.perf_counter() - t0
    db.close()
    return n / dt


def run_sync(ca):
    sp(ca, "peer", "sync", "start", "va", "--restart")
    t0 = time.perf_counter()
    while True:
        st = spj(ca, "peer", "sync", "status", "va")
        if st["state"] != "running":
            break
        time.sleep(0.1)
    dt = time.perf_counter() - t0
    if st["state"] != "done" or st["failed"]:
        sys.exit(f"sync ended {st}")
    return st, dt


def main():
    work = Path(tempfile.mkdtemp(prefix="sallyport-bench-sync."))
    pair = vapair.Pair(work)
    try:
        pair.setup(publisher=False)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                          "leaf.example")]))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("leaf.example")]), critical=False)
            .sign(key, hashes.SHA256())).public_bytes(
                serialization.Encoding.DER)
        b64 = base64.b64encode(csr).decode()
        t0 = time.perf_counter()
        errs = []

        def issuer(k, t):
            a = Admin(pair.ca)
            try:
                for i in range(k):
                    r = a.call("cert.issue", ca="Pub", profile="TLS_SERVER",
                               csr=b64)
                    if (i * 4 + t) % 10 == 0:
                        s = format(x509.load_der_x509_certificate(
                            base64.b64decode(r["der"])).serial_number, "x")
                        a.call("cert.revoke", ca="Pub", serial=s,
                               reason="keyCompromise")
            except Exception as e:	# noqa: BLE001 (reported below)
                errs.append(e)
        ts = [threading.Thread(target=issuer, args=(N // 4, t))
              for t in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errs:
            sys.exit(f"issuing failed: {errs[0]}")
        print(f"set-up: {N} certificates issued in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
        st, dt_empty = run_sync(pair.ca)
        total = st["total"]
        st2, dt_same = run_sync(pair.ca)
        if st2["pushed"]:
            sys.exit(f"an up-to-date VA got {st2['pushed']} entries pushed")
        raw = raw_sqlite(work, total)
        print(f"sync of {total} entries (batches of 2000), 2 cores:")
        print(f"  empty VA     {dt_empty:7.1f} s  {total / dt_empty:8.0f} "
              f"entries/s  -> 1M in {1e6 / (total / dt_empty):5.0f} s "
              f"(target < 60 s)")
        print(f"  up to date   {dt_same:7.1f} s  {total / dt_same:8.0f} "
              f"entries/s  -> 1M in {1e6 / (total / dt_same):5.0f} s "
              f"(target < 15 s)")
        print(f"  raw SQLite   {total / raw:7.1f} s  {raw:8.0f} rows/s "
              f"(one transaction); empty-VA sync is "
              f"{100 * (total / dt_empty) / raw:.1f}% of it")
    finally:
        pair.close()
        if "--keep" not in sys.argv:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
