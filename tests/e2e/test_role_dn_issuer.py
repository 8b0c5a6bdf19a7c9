"""A `dn` role member pins the issuer unless the operator asks for any
issuer (hostile test finding F9): the same subject from another trusted CA
must not get the role by accident. Matching is unit-tested in
tests/unit/authz; this is what the operator types and sees."""


def test_dn_member_needs_issuer_or_any_issuer(node):
    node.cli("role", "create", "R")
    node.fail("role", "member", "add", "R", "--match", "dn", "--value",
              "CN=va1,O=Example", match=r"--issuer.*--any-issuer", code=1)
    got = node.cli_json("role", "member", "add", "R", "--match", "dn",
                        "--value", "CN=va1,O=Example", "--issuer",
                        "CN=Management CA,O=Example")
    m = got["members"][0]
    assert m["issuer"] == "CN=Management CA,O=Example"
    assert m["any_issuer"] is False
    got = node.cli_json("role", "member", "add", "R", "--match", "dn",
                        "--value", "CN=va2,O=Example", "--any-issuer")
    m = [x for x in got["members"] if x["value"] == "CN=va2,O=Example"][0]
    assert m["issuer"] == "" and m["any_issuer"] is True
    node.fail("role", "member", "add", "R", "--match", "dn", "--value",
              "CN=va3", "--issuer", "CN=X", "--any-issuer",
              match=r"not both", code=1)
    # Removed as it was added.
    node.cli("role", "member", "remove", "R", "--match", "dn", "--value",
             "CN=va1,O=Example", "--issuer", "CN=Management CA,O=Example")
    shown = node.cli_json("role", "show", "R")
    assert [x["value"] for x in shown["members"]] == ["CN=va2,O=Example"]
    node.cli("role", "member", "remove", "R", "--match", "dn", "--value",
             "CN=va2,O=Example", "--any-issuer")
    assert node.cli_json("role", "show", "R")["members"] == []
    # Other match types still take no issuer.
    node.fail("role", "member", "add", "R", "--match", "cn", "--value",
              "va1", "--issuer", "CN=X", match=r"issuer", code=1)
