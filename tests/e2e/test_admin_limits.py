"""Admin socket back-pressure (hostile test finding S1): a client that sends
requests and never reads the replies must not grow the node's memory."""
import json
import socket
import struct
import time

import helpers

REQUESTS = 30000	# ~6 KiB of profile list each: ~180 MiB if all were answered


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_unread_replies_stop_the_reading(node):
    frame = json.dumps({"cmd": "profile.list", "args": {}}).encode()
    frame = struct.pack(">I", len(frame)) + frame
    reply = helpers.sp("-d", str(node.dir), "--json", "profile", "list")
    assert reply.returncode == 0, reply.stderr
    # Warm the node up, so allocator growth from first use is not counted.
    for _ in range(3):
        assert helpers.sp("-d", str(node.dir), "profile", "list"
                          ).returncode == 0
    before = rss_kib(node.proc.pid)

    a = socket.socket(socket.AF_UNIX)
    a.connect(str(node.dir / "admin.sock"))
    a.setblocking(False)
    stream = frame * REQUESTS
    off = 0
    deadline = time.monotonic() + 15
    stuck_since = None
    while off < len(stream) and time.monotonic() < deadline:
        try:
            off += a.send(stream[off:off + 65536])
            stuck_since = None
        except BlockingIOError:
            # The node stopped reading: wait a little to be sure.
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > 2:
                break
            time.sleep(0.05)
    sent = off // len(frame)
    time.sleep(1)	# let the node answer what it has read
    during = rss_kib(node.proc.pid)
    time.sleep(2)	# and it stays there: nothing more is read
    later = rss_kib(node.proc.pid)

    # The node is still healthy for everyone else.
    r = helpers.sp("-d", str(node.dir), "status", timeout=10)
    assert r.returncode == 0, r.stderr
    growth = during - before
    assert sent < REQUESTS, "the node read every request without replies " \
        f"being read ({sent} sent)"
    print(f"sent {sent} of {REQUESTS}, RSS {before} -> {during} -> "
          f"{later} KiB")
    # Bounded (the sanitizers' quarantine keeps some of what one MiB of
    # replies cost), and flat once the node has stopped reading.
    assert growth < 64 * 1024, f"RSS grew by {growth} KiB ({sent} sent)"
    assert later - during < 4 * 1024, f"RSS still growing: {during} -> " \
        f"{later} KiB"

    # Reading resumes once the client drains its replies: finish the
    # frame cut in the middle, if any, from a thread of its own.
    import threading
    rest = (-off) % len(frame)
    sent += 1 if rest else 0
    a.setblocking(True)
    a.settimeout(20)
    t = threading.Thread(target=a.sendall, args=(stream[off:off + rest],))
    t.start()
    got = 0
    buf = b""
    while got < sent:
        d = a.recv(1 << 20)
        assert d, f"admin socket closed after {got} of {sent} replies"
        buf += d
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + n:
                break
            assert json.loads(buf[4:4 + n])["ok"]
            buf = buf[4 + n:]
            got += 1
    t.join()
    a.close()
    assert got == sent
