"""Fixtures for the end-to-end tests: a real `sallyport run` node per test
(or per module, where sharing state is harmless), driven through the CLI.

Every process gets the sanitizer options; any sanitizer report in a CLI
process's stderr or in the node log fails the test, and so does a node that
does not exit 0 on SIGTERM (LeakSanitizer turns a leak into exit 1).
"""
import signal
import subprocess
import time
from pathlib import Path

import pytest

import helpers
from helpers import BIN, CLI_TIMEOUT, sanitizer_report, sp_env

START_DEADLINE = 30.0	# seconds for a node to answer `status`
STOP_DEADLINE = 30.0	# seconds for a node to exit after SIGTERM

# Nodes started and not yet torn down; their logs go into failure reports.
_LIVE = []


class Node:
    """One node: its directory, its `run` process and its log."""

    def __init__(self, base, name="test"):
        self.base = Path(base)
        self.dir = self.base / "node"
        self.log_path = self.base / "node.log"
        self.work = self.base / "work"	# scratch files (CSRs, PEMs)
        self.work.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.died = None	# why the node is gone, once it died
        self.name = name
        r = helpers.sp("init", str(self.dir), "--name", name)
        assert r.returncode == 0, f"init failed: {r.stderr}"

    # --- process control --------------------------------------------------

    def start(self):
        assert self.proc is None, "node already started"
        self.died = None
        with open(self.log_path, "ab") as log:
            log.write(b"--- sallyport run ---\n")
            log.flush()
            self.proc = subprocess.Popen(
                [BIN, "run", str(self.dir)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, env=sp_env())
        _LIVE.append(self)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                pytest.fail(f"node exited with {rc} while starting\n"
                            + self.log())
            r = helpers.sp("-d", str(self.dir), "status", timeout=10)
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"node did not answer status within "
                            f"{START_DEADLINE}s: rc={r.returncode} "
                            f"{r.stderr}\n" + self.log())
            time.sleep(0.05)	# poll interval, not a wait for an event

    def stop(self, sig=signal.SIGTERM):
        """Signals the node and asserts a clean exit 0 with no report."""
        assert self.proc is not None, "node not running"
        proc = self.proc
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.proc = None
            pytest.fail(f"node did not exit within {STOP_DEADLINE}s of "
                        f"{sig.name}\n" + self.log())
        self.proc = None
        log = self.log()
        assert rc == 0, f"node exited with {rc} after {sig.name}\n{log}"
        rep = sanitizer_report(log)
        assert rep is None, f"sanitizer report in node log:\n{log}"

    def assert_alive(self, args=()):
        """Fails at once, with the log, if the node we started has died."""
        if self.died:
            pytest.fail(f"the node died earlier: {self.died}")
        if self.proc is not None and self.proc.poll() is not None:
            rc = self.proc.returncode
            self.proc = None
            self.died = (f"exit {rc} during or before sallyport "
                         f"{' '.join(map(str, args))}")
            pytest.fail(f"the node died ({self.died})\n" + self.log())

    def restart(self):
        self.stop()
        self.start()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def kill(self):
        """Teardown: stop by PID, whatever state the node is in."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no node log)"

    # --- CLI ----------------------------------------------------------------

    def cli(self, *args, check=True, input=None, env=None, timeout=CLI_TIMEOUT):
        """Runs `sallyport -d DIR ARGS`; check=True asserts exit 0."""
        if self.died:
            pytest.fail(f"the node died earlier: {self.died}")
        r = helpers.sp("-d", str(self.dir), *args, input=input, env=env,
                       timeout=timeout)
        self.assert_alive(args)
        if check:
            assert r.returncode == 0, (
                f"sallyport {' '.join(map(str, args))}: exit "
                f"{r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def cli_json(self, *args, input=None):
        r = self.cli(*args, "--json", input=input)
        return helpers.parse_json(r)

    def fail(self, *args, match=None, code=1, input=None):
        """Runs a command that must fail with `code`; returns stderr.

        Exit 1 must come with one line "sallyport: <message>" on stderr,
        and the message must match the regular expression `match`."""
        r = self.cli(*args, check=False, input=input)
        return helpers.expect_fail(r, code=code, match=match, args=args)

    # --- conveniences -------------------------------------------------------

    def write(self, name, data):
        p = self.work / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return p

    def cert_count(self, ca=None):
        args = ["cert", "list"] + (["--ca", ca] if ca else [])
        return len(self.cli_json(*args))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for n in list(_LIVE):
            tail = "\n".join(n.log().splitlines()[-300:])
            rep.sections.append((f"node log {n.log_path}", tail))


def _node_fixture(base):
    n = Node(base)
    try:
        n.start()
        yield n
        if n.proc is not None:
            n.stop()
    finally:
        n.kill()
        if n in _LIVE:
            _LIVE.remove(n)


@pytest.fixture
def node(tmp_path):
    """A fresh running node for one test."""
    yield from _node_fixture(tmp_path)


@pytest.fixture(scope="module")
def mnode(tmp_path_factory):
    """A running node shared by the tests of one module."""
    yield from _node_fixture(tmp_path_factory.mktemp("mnode"))


@pytest.fixture(scope="module")
def pki(mnode):
    """mnode with an active token, a root CA and a sub CA under it."""
    return helpers.Pki.build(mnode)


@pytest.fixture
def fresh_pki(node):
    """Like pki, on a node of the test's own."""
    return helpers.Pki.build(node)
