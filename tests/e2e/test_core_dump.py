"""Secrets stay out of core dumps (hostile test S5).

A node with an active token is sent SIGABRT from a shell that allows core
dumps (RLIMIT_CORE unlimited, a scratch working directory). The node must
have made itself non-dumpable at start (sp_harden_process(): RLIMIT_CORE 0
and PR_SET_DUMPABLE 0), and no core file holding the PIN may appear.

The test is self-contained (its own node, stopped by PID). When run as
root it runs the node as "nobody": /proc/PID files of a non-dumpable
process belong to root, which is how dumpability shows from outside, and
for a process that is root anyway it would not show. A control process
(python3 aborting with the PIN in memory, same user, same limits) shows
that the checks can fail: its /proc files are its own and, where the core
pattern names a file, its core file is found and holds the PIN.
"""
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import helpers
from helpers import BIN

PIN = "core-dump-PIN-5d1c9e7a"
WAIT = 30.0	# seconds for any step


def _core_pattern():
    try:
        return Path("/proc/sys/kernel/core_pattern").read_text().strip()
    except OSError:
        return ""


def _run_as():
    """(uid, gid) to run the node as: ourselves, or nobody if we are root
    and nobody can run the binary; None if neither tells dumpability."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None
    probe = subprocess.run([BIN, "--version"], capture_output=True,
                           preexec_fn=_drop(pw.pw_uid, pw.pw_gid),
                           timeout=WAIT)
    if probe.returncode != 0:
        return None
    return pw.pw_uid, pw.pw_gid


def _drop(uid, gid):
    def f():
        if os.getuid() == 0 and uid != 0:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
    return f


def _cores_allowed(uid, gid):
    """preexec_fn: core dumps allowed, then the user switched."""
    drop = _drop(uid, gid)

    def f():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                  resource.RLIM_INFINITY))
        drop()
    return f


def _env():
    env = helpers.sp_env()
    # ASan turns core dumps off by itself (disable_coredump=1); allow them
    # here, so that the node's own hardening is what is tested. An abort
    # leaves memory unfreed: no leak report.
    env["ASAN_OPTIONS"] = "detect_leaks=0:disable_coredump=0:abort_on_error=0"
    env["HOME"] = "/tmp"
    return env


def _core_files(pattern, cwd, since):
    """Files a core of a process with cwd may have been written to."""
    if not pattern or pattern.startswith("|"):
        return []
    base = pattern.split("%", 1)[0]
    d = Path(base) if base.startswith("/") else Path(cwd) / base
    if base.endswith("/"):
        folder, prefix = d, ""
    else:
        folder, prefix = d.parent, d.name
    out = []
    try:
        for f in folder.iterdir():
            try:
                if f.name.startswith(prefix) and f.is_file() and \
                        f.stat().st_mtime >= since - 1:
                    out.append(f)
            except OSError:
                pass
    except OSError:
        pass
    return out


def _holds(path, secret):
    with open(path, "rb") as f:
        return secret.encode() in f.read()


def _wait_signalled(proc):
    try:
        rc = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("process did not end after SIGABRT")
    return rc


def _sp(args, uid, gid, cwd, input=None):
    return subprocess.run([BIN, *map(str, args)], input=input,
                          capture_output=True, cwd=cwd, env=_env(),
                          preexec_fn=_cores_allowed(uid, gid), timeout=WAIT)


def test_sigabrt_leaves_no_core_with_the_pin():
    who = _run_as()
    if who is None:
        pytest.skip("cannot run the node as a user whose dumpability shows")
    uid, gid = who
    pattern = _core_pattern()
    plain = bool(pattern) and not pattern.startswith("|")
    base = Path(tempfile.mkdtemp(prefix="sp-core-", dir="/tmp"))
    node_dir, cwd, ctl = base / "node", base / "cwd", base / "ctl"
    cwd.mkdir()
    ctl.mkdir()
    for p in (base, cwd, ctl):
        os.chown(p, uid, gid)
    proc = None
    since = time.time()
    try:
        r = _sp(["init", node_dir, "--name", "core"], uid, gid, cwd)
        assert r.returncode == 0, r.stderr
        log = open(base / "node.log", "wb")
        proc = subprocess.Popen([BIN, "run", str(node_dir)], cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, env=_env(),
                                preexec_fn=_cores_allowed(uid, gid))
        deadline = time.monotonic() + WAIT
        while _sp(["-d", node_dir, "status"], uid, gid, cwd).returncode != 0:
            assert proc.poll() is None, (base / "node.log").read_text()
            assert time.monotonic() < deadline, "node did not start"
            time.sleep(0.05)	# poll interval
        pinf = base / "pin.txt"
        pinf.write_text(PIN + "\n")
        os.chown(pinf, uid, gid)
        os.chmod(pinf, 0o600)
        r = _sp(["-d", node_dir, "token", "create", "core-tok",
                 "--pin-file", pinf], uid, gid, cwd)
        assert r.returncode == 0, r.stderr
        r = _sp(["-d", node_dir, "token", "genkey", "core-tok", "k",
                 "--alg", "ec-p256"], uid, gid, cwd)
        assert r.returncode == 0, r.stderr
        r = _sp(["-d", node_dir, "token", "deactivate", "core-tok"], uid,
                gid, cwd)
        assert r.returncode == 0, r.stderr
        r = _sp(["-d", node_dir, "token", "activate", "core-tok",
                 "--pin-file", pinf], uid, gid, cwd)
        assert r.returncode == 0, r.stderr

        # The node's state as the kernel sees it.
        pid = proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        uid_line = [l for l in status.splitlines() if l.startswith("Uid:")]
        assert int(uid_line[0].split()[1]) == uid, uid_line
        assert uid != 0
        # Non-dumpable: its /proc files belong to root, not to its user.
        assert os.stat(f"/proc/{pid}/status").st_uid == 0, \
            "the node is dumpable (PR_SET_DUMPABLE not 0)"
        limits = Path(f"/proc/{pid}/limits").read_text()
        core = [l for l in limits.splitlines()
                if l.startswith("Max core file size")]
        assert core and core[0].split()[4:6] == ["0", "0"], core

        proc.send_signal(signal.SIGABRT)
        rc = _wait_signalled(proc)
        proc = None
        assert rc == -signal.SIGABRT, rc
        log.close()
        for f in _core_files(pattern, cwd, since) + \
                _core_files(pattern, node_dir, since):
            assert not _holds(f, PIN), f"core file {f} holds the PIN"
        if plain:
            assert _core_files(pattern, cwd, since) == [], \
                "a core file was written for the node"

        # Control: the same user and limits, a dumpable process holding
        # the PIN, aborted the same way.
        c = subprocess.Popen(
            [sys.executable, "-c",
             "import os, sys, time; s = sys.stdin.readline(); "
             "print('ready', flush=True); time.sleep(60)"],
            cwd=ctl, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", "/usr/bin")},
            preexec_fn=_cores_allowed(uid, gid))
        c.stdin.write((PIN + "\n").encode())
        c.stdin.flush()
        assert c.stdout.readline().strip() == b"ready"
        assert os.stat(f"/proc/{c.pid}/status").st_uid == uid, \
            "the ownership check cannot tell a dumpable process"
        c.send_signal(signal.SIGABRT)
        assert _wait_signalled(c) == -signal.SIGABRT
        if plain:
            ctl_cores = _core_files(pattern, ctl, since)
            if ctl_cores:	# the kernel may still refuse (limits, fs)
                assert any(_holds(f, PIN) for f in ctl_cores), \
                    "the search for the PIN cannot find it in a core"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)
