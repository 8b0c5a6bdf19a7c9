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

    j("token", "create", "jt", "--pin", "1234")
    j("token", "deactivate", "jt")
    j("token", "activate", "jt", "--pin", "1234")
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
