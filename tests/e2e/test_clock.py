"""The test clock (debug.clock, SP_TEST_HOOKS builds): a test ages a node
instead of sleeping, and what is due by the node's clock happens."""
import datetime
import time

from cryptography import x509


def _crl(node, ca="sub"):
    return x509.load_pem_x509_crl(
        node.cli("crl", "get", "--ca", ca).stdout.encode())


def _number(crl):
    return crl.extensions.get_extension_for_class(
        x509.CRLNumber).value.crl_number


def _node_now(reply):
    return datetime.datetime.fromisoformat(reply["now"].replace("Z", "+00:00"))


def test_clock_moves_and_is_bounded(fresh_pki):
    node = fresh_pki.node
    j = node.cli_json("debug", "clock")
    assert j["offset"] == 0
    real = datetime.datetime.now(datetime.timezone.utc)
    assert abs((_node_now(j) - real).total_seconds()) < 5
    j = node.cli_json("debug", "clock", "--advance", "3600")
    assert j["offset"] == 3600
    assert abs((_node_now(j) - real).total_seconds() - 3600) < 5
    j = node.cli_json("debug", "clock", "--advance", "600")
    assert j["offset"] == 4200
    node.fail("debug", "clock", "--offset", "soon", code=2,
              match="number")
    node.fail("debug", "clock", "--offset", "1", "--advance", "1",
              match="not both")
    assert node.cli_json("debug", "clock", "--offset", "0")["offset"] == 0


def test_crl_due_by_the_node_clock(fresh_pki):
    """A CRL falls due a day later (the default period): advancing the
    node's clock by a day makes the node issue the next one by itself,
    dated by its clock, without a day's wait."""
    node = fresh_pki.node
    node.cli("crl", "create", "--ca", "sub")
    before = _crl(node)
    n0 = _number(before)
    node.cli_json("debug", "clock", "--advance", str(86400 + 60))
    deadline = time.monotonic() + 20		# the CRL tick is 5 s
    while time.monotonic() < deadline:
        crl = _crl(node)
        if _number(crl) > n0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no CRL made after the clock passed its due time")
    assert (crl.last_update - before.last_update).total_seconds() > 86400
    node.cli_json("debug", "clock", "--offset", "0")
