"""CLI conventions: --help everywhere, usage errors (exit 2), an unreachable
node (exit 3), -d and SALLYPORT_DIR, --json anywhere, init and check."""
import json
import re

import pytest

import helpers
from helpers import sp

COMMANDS = [
    [], ["init"], ["run"], ["check"], ["status"],
    ["token"], ["token", "create"], ["token", "activate"],
    ["token", "deactivate"], ["token", "list"], ["token", "genkey"],
    ["token", "delkey"],
    ["ca"], ["ca", "create"], ["ca", "list"], ["ca", "show"], ["ca", "cert"],
    ["profile"], ["profile", "list"], ["profile", "show"],
    ["profile", "create"], ["profile", "edit"],
    ["cert"], ["cert", "issue"], ["cert", "revoke"], ["cert", "unrevoke"],
    ["cert", "list"], ["cert", "show"],
    ["crl"], ["crl", "create"], ["crl", "get"],
    ["audit"], ["audit", "verify"], ["audit", "list"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help(cmd, tmp_path):
    # No node anywhere: --help must not need one.
    r = sp("-d", tmp_path / "nonode", *cmd, "--help")
    assert r.returncode == 0, f"{cmd} --help: exit {r.returncode}: {r.stderr}"
    assert re.search(r"usage", r.stdout, re.I), r.stdout
    if cmd:
        assert cmd[-1] in r.stdout, f"usage of {cmd} does not name it"


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["token"],
    ["token", "frobnicate"],
    ["token", "create"],				# NAME missing
    ["token", "create", "t9"],			# no --pin / --pin-file
    ["token", "genkey", "tok"],			# ALIAS missing
    ["token", "genkey", "tok", "k"],		# --alg missing
    ["ca", "create", "x"],				# --dn etc. missing
    ["ca", "create", "x", "--dn", "CN=x", "--token", "tok", "--key", "k",
     "--validity", "abc"],
    ["ca", "show"],
    ["cert", "issue", "--ca", "sub", "--profile", "TLS_SERVER"],	# no --csr
    ["cert", "revoke", "--ca", "sub"],		# no --serial
    ["cert", "list", "--bogus-option"],
    ["crl", "get"],					# no --ca
    ["audit", "list", "--limit"],			# value missing
    ["profile", "edit", "P"],			# no --set
    ["status", "extra-argument"],
], ids=lambda a: " ".join(a) or "none")
def test_usage_errors(mnode, args):
    r = mnode.cli(*args, check=False)
    helpers.expect_fail(r, code=2, args=args)
    assert re.search(r"usage", r.stderr, re.I), r.stderr


def test_not_running_exit_3(tmp_path):
    d = tmp_path / "idle"
    assert sp("init", d, "--name", "idle").returncode == 0
    for args in (["status"], ["ca", "list"], ["token", "list"],
                 ["audit", "verify"]):
        r = sp("-d", d, *args)
        assert r.returncode == 3, f"{args}: expected 3, got {r.returncode}: {r.stderr}"
        assert r.stderr.strip(), "exit 3 without a message"
    r = sp("-d", d, "status", "--json")
    assert r.returncode == 3


def test_stopped_node_exit_3(node):
    node.stop()
    r = node.cli("status", check=False)
    assert r.returncode == 3, r.stderr


def test_sallyport_dir_env(mnode):
    r = sp("status", "--json", env={"SALLYPORT_DIR": str(mnode.dir)})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "test"


@pytest.mark.parametrize("pos", ["first", "before-noun", "last", "middle"])
def test_json_anywhere(mnode, pos):
    d = str(mnode.dir)
    args = {
        "first": ["--json", "-d", d, "profile", "show", "TLS_SERVER"],
        "before-noun": ["-d", d, "--json", "profile", "show", "TLS_SERVER"],
        "last": ["-d", d, "profile", "show", "TLS_SERVER", "--json"],
        "middle": ["-d", d, "profile", "--json", "show", "TLS_SERVER"],
    }[pos]
    r = sp(*args)
    assert r.returncode == 0, r.stderr
    js = helpers.parse_json(r)
    assert js["name"] == "TLS_SERVER"


def test_init(tmp_path):
    d = tmp_path / "n1"
    r = sp("init", d, "--name", "alpha")
    assert r.returncode == 0, r.stderr
    assert (d / "sallyport.conf").is_file()
    conf = (d / "sallyport.conf").read_text()
    assert re.search(r"^\s*name\s*=\s*alpha\s*$", conf, re.M), conf
    r = sp("check", d)
    assert r.returncode == 0, r.stderr
    # A second init must not overwrite it.
    r = sp("init", d, "--name", "beta")
    helpers.expect_fail(r, code=1, match=r"sallyport\.conf|exist|already",
                        args=("init", d))
    assert (d / "sallyport.conf").read_text() == conf


def test_init_default_name(tmp_path):
    d = tmp_path / "n2"
    r = sp("init", d)
    assert r.returncode == 0, r.stderr
    assert sp("check", d).returncode == 0


# --- check -------------------------------------------------------------------

def _conf(tmp_path):
    d = tmp_path / "c"
    assert sp("init", d, "--name", "chk").returncode == 0
    return d, d / "sallyport.conf"


def test_check_ok(tmp_path):
    d, conf = _conf(tmp_path)
    r = sp("check", d)
    assert r.returncode == 0, r.stderr
    assert re.search(r": OK\s*$", r.stdout), r.stdout


def _append(conf, line):
    text = conf.read_text()
    if not text.endswith("\n"):
        text += "\n"
    n = len(text.splitlines()) + 1
    conf.write_text(text + line + "\n")
    return n


def _expect_line(r, n, what):
    assert r.returncode == 1, f"{what}: expected exit 1, got {r.returncode}: {r.stderr}"
    m = re.search(r"sallyport\.conf:(\d+): \S", r.stderr)
    assert m, f"{what}: no 'FILE:LINE: message' in {r.stderr!r}"
    assert int(m.group(1)) == n, f"{what}: line {m.group(1)}, expected {n}: {r.stderr!r}"


def test_check_unknown_key(tmp_path):
    d, conf = _conf(tmp_path)
    n = _append(conf, "frobnicate = yes")
    r = sp("check", d)
    _expect_line(r, n, "unknown key")
    assert "frobnicate" in r.stderr


def test_check_duplicate_key(tmp_path):
    d, conf = _conf(tmp_path)
    n = _append(conf, "name = again")
    r = sp("check", d)
    _expect_line(r, n, "duplicate key")
    assert re.search(r"name", r.stderr), r.stderr


def test_check_bad_log_level(tmp_path):
    d, conf = _conf(tmp_path)
    lines = conf.read_text().splitlines()
    idx = [i for i, l in enumerate(lines) if re.match(r"\s*log_level\s*=", l)]
    if idx:
        lines[idx[0]] = "log_level = chatty"
        conf.write_text("\n".join(lines) + "\n")
        n = idx[0] + 1
    else:
        n = _append(conf, "log_level = chatty")
    r = sp("check", d)
    _expect_line(r, n, "bad log_level")
    assert "log_level" in r.stderr or "chatty" in r.stderr


@pytest.mark.parametrize("line", [
    "workers = 0", "workers = 65", "workers = many",
    "database = relative/path.db",
])
def test_check_bad_values(tmp_path, line):
    d, conf = _conf(tmp_path)
    key = line.split()[0]
    lines = conf.read_text().splitlines()
    idx = [i for i, l in enumerate(lines) if re.match(rf"\s*{key}\s*=", l)]
    if idx:
        lines[idx[0]] = line
        conf.write_text("\n".join(lines) + "\n")
        n = idx[0] + 1
    else:
        n = _append(conf, line)
    _expect_line(sp("check", d), n, line)


def test_check_unknown_section(tmp_path):
    d, conf = _conf(tmp_path)
    n = _append(conf, "[bogus]")
    _append(conf, "name = x")
    r = sp("check", d)
    assert r.returncode == 1, r.stdout + r.stderr
    m = re.search(r"sallyport\.conf:(\d+): \S", r.stderr)
    assert m and int(m.group(1)) in (n, n + 1), r.stderr
    assert "bogus" in r.stderr, r.stderr


def test_check_unknown_empty_section(tmp_path):
    # An unknown section is an error even with no keys in it.
    d, conf = _conf(tmp_path)
    n = _append(conf, "[bogus]")
    _expect_line(sp("check", d), n, "unknown empty section")


def test_check_valid_settings(tmp_path):
    d, conf = _conf(tmp_path)
    db = tmp_path / "elsewhere.db"
    text = conf.read_text()
    kept = [l for l in text.splitlines()
            if not re.match(r"\s*(log_level|workers|database)\s*=", l)]
    conf.write_text("\n".join(kept) + f"\nlog_level = debug\nworkers = 64\n"
                    f"database = {db}\n")
    r = sp("check", d)
    assert r.returncode == 0, r.stderr


def test_check_missing_config(tmp_path):
    r = sp("check", tmp_path / "nothing-here")
    assert r.returncode == 1, r.stderr
    assert "sallyport.conf" in r.stderr


def test_json_output_of_node_commands(mnode):
    """--json gives JSON for every command that talks to the node, also
    those whose JSON shape the contract leaves open."""
    def j(*args):
        r = mnode.cli(*args, "--json")
        return helpers.parse_json(r)

    j("token", "create", "jt", "--pin", "12345678")
    j("token", "deactivate", "jt")
    j("token", "activate", "jt", "--pin", "12345678")
    j("token", "genkey", "jt", "k", "--alg", "ec-p256")
    j("ca", "create", "jca", "--dn", "CN=J", "--token", "jt", "--key", "k")
    pem = j("ca", "cert", "jca")
    assert "BEGIN CERTIFICATE" in json.dumps(pem)
    j("profile", "create", "JP", "--from", "ENDUSER")
    j("profile", "edit", "JP", "--set", "validity_days=3")
    _, csr = helpers.make_csr(cn="j")
    f = mnode.write("j.csr", csr)
    serial = j("cert", "issue", "--ca", "jca", "--profile", "JP", "--csr", f)["serial"]
    j("cert", "revoke", "--ca", "jca", "--serial", serial, "--reason",
      "certificateHold")
    j("cert", "unrevoke", "--ca", "jca", "--serial", serial)
    j("crl", "create", "--ca", "jca")
    assert "BEGIN X509 CRL" in json.dumps(j("crl", "get", "--ca", "jca"))
    j("token", "genkey", "jt", "gone", "--alg", "ec-p256")
    j("token", "delkey", "jt", "gone")
    assert isinstance(j("audit", "list", "--limit", "1"), list)


# --- NOUN --help, help NOUN ---------------------------------------------------

# Every noun, and the multi-word verb prefixes, with a verb each must list.
NOUN_HELP = [
    (["token"], ["create", "activate", "deactivate", "list", "genkey",
                 "delkey"]),
    (["ca"], ["create", "list", "show", "cert"]),
    (["profile"], ["list", "show", "create", "edit"]),
    (["cert"], ["issue", "revoke", "unrevoke", "list", "show"]),
    (["crl"], ["create", "get"]),
    (["audit"], ["verify", "list"]),
    (["role"], ["create", "delete", "list", "show", "member add",
                "member remove", "rule set", "rule remove"]),
    (["role", "member"], ["member add", "member remove"]),
    (["role", "rule"], ["rule set", "rule remove"]),
    (["peer"], ["status", "incoming list", "incoming enable",
                "connector add", "connector list", "ping", "reset",
                "outgoing disable"]),
    (["peer", "connector"], ["connector add", "connector edit",
                             "connector delete", "connector list"]),
    (["peer", "incoming"], ["incoming list", "incoming authorize",
                            "incoming enable", "incoming keybinding"]),
    (["peer", "outgoing"], ["outgoing enable", "outgoing disable"]),
    (["keybinding"], ["create", "csr", "install-cert", "list", "show"]),
    (["trust"], ["add", "list", "crl", "crls", "remove"]),
]


def _assert_noun_help(r, noun, verbs, how):
    assert r.returncode == 0, f"{how}: exit {r.returncode}: {r.stderr}"
    assert r.stderr == "", f"{how}: stderr {r.stderr!r}"
    lines = [l for l in r.stdout.splitlines() if l.startswith("usage:")]
    assert lines, f"{how}: no usage lines: {r.stdout!r}"
    prefix = "usage: sallyport " + " ".join(noun)
    for l in lines:
        assert l.startswith(prefix), f"{how}: foreign usage line {l!r}"
    for v in verbs:
        want = f"usage: sallyport {noun[0]} {v}"
        assert any(l == want or l.startswith(want + " ") for l in lines), (
            f"{how}: verb {v!r} missing:\n{r.stdout}")
    assert "unknown" not in r.stdout and "missing" not in r.stdout


@pytest.mark.parametrize("form", ["--help", "-h", "help"])
@pytest.mark.parametrize("noun,verbs", NOUN_HELP,
                         ids=[" ".join(n) for n, _ in NOUN_HELP])
def test_noun_help(noun, verbs, form, tmp_path):
    # No node: help needs none.
    args = (["help", *noun] if form == "help" else [*noun, form])
    r = sp("-d", tmp_path / "nonode", *args)
    _assert_noun_help(r, noun, verbs, " ".join(args))
    # --json anywhere does not change it.
    r = sp("--json", *args)
    _assert_noun_help(r, noun, verbs, "--json " + " ".join(args))


@pytest.mark.parametrize("args", [
    ["peer"], ["peer", "frobnicate"], ["peer", "frobnicate", "--help"],
    ["peer", "connector", "frobnicate", "--help"], ["ca", "frobnicate"],
    ["help", "ca", "frobnicate"], ["token", "frobnicate", "-h"],
    ["role", "member"], ["trust", "frobnicate", "-h"],
], ids=lambda a: " ".join(a))
def test_unknown_verb_is_usage_error(args, tmp_path):
    r = sp("-d", tmp_path / "nonode", *args)
    helpers.expect_fail(r, code=2, args=args)
    assert r.stdout == ""
    assert re.search(r"unknown verb|missing verb", r.stderr), r.stderr
    assert re.search(rf"usage: sallyport {args[0] if args[0] != 'help' else args[1]} ",
                     r.stderr), r.stderr


def test_help_unknown_command(tmp_path):
    r = sp("help", "frobnicate")
    helpers.expect_fail(r, code=2)
    assert "unknown command" in r.stderr


def test_help_full_command(tmp_path):
    # `help NOUN VERB` is `NOUN VERB --help`: the command's own usage.
    for args in (["ca", "show"], ["peer", "connector", "add"], ["init"]):
        a = sp("help", *args)
        b = sp(*args, "--help")
        assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
        assert a.stdout == b.stdout and args[-1] in a.stdout


# --- a node that drops the admin connection (S8) -----------------------------

class _DroppingAdmin:
    """A fake admin socket in DIR that accepts and closes at once."""

    def __init__(self, d):
        import socket
        import threading
        self.path = str(d / "admin.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("big", [False, True], ids=["small", "large"])
def test_dropped_admin_connection_exit_3(tmp_path, big):
    d = tmp_path / "fake"
    d.mkdir()
    fake = _DroppingAdmin(d)
    try:
        if big:
            # Larger than the socket buffer: the CLI is still writing when
            # the "node" closes, so it gets EPIPE (SIGPIPE before the fix).
            sets = []
            for _ in range(6):
                sets += ["--set", "x=" + "v" * 120000]
            args = ["profile", "create", "P", "--from", "TLS_SERVER", *sets]
        else:
            args = ["status"]
        for _ in range(3):
            r = sp("-d", d, *args)
            assert r.returncode == 3, (
                f"expected exit 3, got {r.returncode}: {r.stderr!r}")
            assert re.search(r"^sallyport: .*(closed|connection|reach)",
                             r.stderr, re.M), r.stderr
    finally:
        fake.close()


# --- names "." and ".." (S4) ------------------------------------------------

@pytest.fixture(scope="module")
def dot_key(mnode):
    """An active token with a key, so that only the name can be wrong."""
    mnode.cli("token", "create", "dottok", "--pin", "dot-pin-1")
    mnode.cli("token", "genkey", "dottok", "dotkey", "--alg", "ec-p256")
    return ("dottok", "dotkey")


@pytest.mark.parametrize("name", [".", ".."])
@pytest.mark.parametrize("what", ["token", "ca", "profile", "keybinding",
                                  "connector"])
def test_dot_names_refused(mnode, dot_key, what, name):
    tok, key = dot_key
    args = {
        "token": ["token", "create", name, "--pin", "12345678"],
        "ca": ["ca", "create", name, "--dn", "CN=dot", "--token", tok,
               "--key", key],
        "profile": ["profile", "create", name, "--from", "TLS_SERVER"],
        "keybinding": ["keybinding", "create", name, "--token", tok,
                       "--key", key],
        "connector": ["peer", "connector", "add", name, "--url",
                      "https://127.0.0.1:1/peer/v1", "--auth", "kb"],
    }[what]
    err = mnode.fail(*args, match=r"name|invalid")
    assert "out of memory" not in err
    # The message says why: the characters are allowed, the name is not.
    assert 'not "." or ".."' in err, err
    # Nothing was created under that name.
    assert name not in [l.split("\t")[0] for l in mnode.cli(
        *({"connector": ["peer", "connector"]}.get(what, [what])),
        "list").stdout.splitlines()[1:]]


# --- error messages stay UTF-8 when cut ---------------------------------------

@pytest.mark.parametrize("name", [
    "n" * 63 + "é",			# "%.64s" cuts inside the "é"
    "n" * 62 + "éé",
    "é" * 40,			# 80 bytes, cut at 64: between characters
    "n" + "é" * 200,			# 401 bytes, cut at 64: inside one
], ids=["63+e", "62+ee", "40e", "1+200e"])
def test_ca_show_multibyte_name(mnode, name):
    r = mnode.cli("ca", "show", name, check=False)
    err = helpers.expect_fail(r, code=1, match=r"no CA named",
                              args=["ca", "show", "..."])
    assert "out of memory" not in err
    r.stdout_bytes.decode("utf-8")	# valid UTF-8 or raises
    r = mnode.cli("ca", "show", name, "--json", check=False)
    assert r.returncode == 1 and "no CA named" in r.stderr, r.stderr


# --- process hardening (S5) ---------------------------------------------------

def _limits_core(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.lower().startswith("max core file size"):
                return line.split()[4:6]
    pytest.fail(f"no core file size in /proc/{pid}/limits")


def test_node_no_core_dumps(node):
    import os
    assert node.pid is not None
    # Soft and hard limit 0 (ASan alone lowers only the soft one).
    assert _limits_core(node.pid) == ["0", "0"]
    # Not dumpable: /proc/PID then belongs to root. Only visible when we
    # are not root ourselves; the unit test test_harden checks prctl.
    if os.geteuid() != 0:
        assert os.stat(f"/proc/{node.pid}").st_uid == 0
    node.assert_alive()


def test_node_takes_its_descriptor_hard_limit(node):
    """Each peer connection costs a descriptor (hostile test F1): the node
    raises its soft limit to the hard one at start and logs the figure."""
    import re
    with open(f"/proc/{node.pid}/limits") as f:
        line = [x for x in f if x.startswith("Max open files")][0]
    soft, hard = line.split()[3:5]
    assert soft == hard, line
    assert re.search(rf"node: up to {soft} file descriptors", node.log())
