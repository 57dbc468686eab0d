#!/usr/bin/env python3
"""Independent check of a credential blob read back from a device.

Written from docs/agent-protocol.md (Credential blob) alone; it shares no
code with programmer/st-blob.c. Uses only the Python standard library and
the stock `openssl` command.

usage: stm32-blob-check.py AREA.bin UID.bin ROOT.pem
  AREA.bin  the credential area as read from flash (blob, 0xFF padding)
  UID.bin   the device uid as read from the device
  ROOT.pem  the trusted root

Checks: magic, version, total length, CRC-32, entry count and bounds,
the uid entry equals UID.bin, the rest of the area is erased (0xFF), the
device certificate chains through the CA entries to ROOT.pem, and the
private key belongs to the certificate. Prints one line per check and
exits 0 only when every check passed.
"""
import os
import struct
import subprocess
import sys
import tempfile
import zlib

TYPES = {1: "uid", 2: "key", 3: "cert", 4: "ca", 5: "serial"}


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def parse(area):
    if len(area) < 16:
        fail("area shorter than a blob header and CRC")
    magic, version, count, total = struct.unpack_from("<4sHHI", area, 0)
    if magic != b"PCB1":
        fail("magic %r" % magic)
    if version != 1:
        fail("version %d" % version)
    if total < 16 or total > len(area):
        fail("total length %d outside 16..%d" % (total, len(area)))
    (crc,) = struct.unpack_from("<I", area, total - 4)
    if zlib.crc32(area[: total - 4]) & 0xFFFFFFFF != crc:
        fail("CRC-32 mismatch")
    entries = []
    off = 12
    end = total - 4
    while off < end:
        if off + 4 > end:
            fail("entry header past the end")
        etype, reserved, length = struct.unpack_from("<BBH", area, off)
        off += 4
        if reserved != 0:
            fail("reserved byte %d" % reserved)
        if etype not in TYPES:
            fail("unknown entry type %d" % etype)
        if length == 0 or off + length > end:
            fail("entry length %d past the end" % length)
        entries.append((TYPES[etype], area[off : off + length]))
        off += length
    if len(entries) != count:
        fail("count %d, entries %d" % (count, len(entries)))
    padding = area[total:]
    if padding.strip(b"\xff"):
        fail("bytes after the blob are not erased (0xFF)")
    print("ok   blob: %d bytes, %d entries, CRC-32 %08x" % (total, count, crc))
    return entries


def der_to_pem(der, label):
    import base64

    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    if r.returncode != 0:
        fail("openssl %s: %s" % (" ".join(args), r.stderr.decode(errors="replace").strip()))
    return r.stdout


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    area = open(sys.argv[1], "rb").read()
    uid = open(sys.argv[2], "rb").read()
    root = sys.argv[3]
    entries = parse(area)
    by = {}
    for name, value in entries:
        by.setdefault(name, []).append(value)
    for single in ("uid", "key", "cert"):
        if len(by.get(single, [])) != 1:
            fail("%d %s entries" % (len(by.get(single, [])), single))
    if by["uid"][0] != uid:
        fail("uid %s in the blob, %s on the device" % (by["uid"][0].hex(), uid.hex()))
    print("ok   uid: %s" % uid.hex())
    if not by.get("ca"):
        fail("no CA certificates")
    with tempfile.TemporaryDirectory() as tmp:
        cert = os.path.join(tmp, "cert.pem")
        chain = os.path.join(tmp, "chain.pem")
        key = os.path.join(tmp, "key.pem")
        open(cert, "w").write(der_to_pem(by["cert"][0], "CERTIFICATE"))
        open(chain, "w").write("".join(der_to_pem(c, "CERTIFICATE") for c in by["ca"]))
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, der_to_pem(by["key"][0], "PRIVATE KEY").encode())
        os.close(fd)
        out = openssl("verify", "-CAfile", root, "-untrusted", chain, cert)
        if b": OK" not in out:
            fail("chain: %s" % out.decode())
        print("ok   chain: the certificate chains to the root through %d CA certificates" % len(by["ca"]))
        pub_key = openssl("pkey", "-in", key, "-pubout")
        pub_cert = openssl("x509", "-in", cert, "-noout", "-pubkey")
        if pub_key != pub_cert:
            fail("the private key does not match the certificate")
        print("ok   key: the private key matches the certificate's public key")
        subject = openssl("x509", "-in", cert, "-noout", "-subject").decode()
        if uid.hex() not in subject:
            fail("the certificate subject %s does not name uid %s" % (subject.strip(), uid.hex()))
        print("ok   subject names the uid")
    if "serial" in by:
        print("ok   product serial: %s" % by["serial"][0].decode("utf-8"))
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
