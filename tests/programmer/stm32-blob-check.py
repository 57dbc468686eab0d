#!/usr/bin/env python3
"""Independent check of a credential blob read back from a device.

Written from docs/agent-protocol.md (Credential blob) alone; it shares no
code with programmer/st-blob.c. Uses only the Python standard library and
the stock `openssl` command.

usage: stm32-blob-check.py AREA.bin UID.bin ROOT.pem
       stm32-blob-check.py --structure AREA.bin
  AREA.bin  the credential area as read from flash (blob, 0xFF padding)
  UID.bin   the device uid as read from the device
  ROOT.pem  the trusted root
  --structure  only the blob's structure and its Matter entries

Checks: magic, version, total length, CRC-32, entry count and bounds,
the uid entry equals UID.bin, the rest of the area is erased (0xFF), the
device certificate chains through the CA entries to ROOT.pem, and the
private key belongs to the certificate. Version 2 (extension matter-1):
exactly one Certification Declaration entry (a DER SEQUENCE) and one
commissioning data record, whose fields are decoded and range-checked;
version 1 must hold neither. Prints one line per check and exits 0 only
when every check passed.
"""
import os
import struct
import subprocess
import sys
import tempfile
import zlib

TYPES = {1: "uid", 2: "key", 3: "cert", 4: "ca", 5: "serial", 6: "matter_cd", 7: "matter_data"}


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def parse(area):
    if len(area) < 16:
        fail("area shorter than a blob header and CRC")
    magic, version, count, total = struct.unpack_from("<4sHHI", area, 0)
    if magic != b"PCB1":
        fail("magic %r" % magic)
    if version not in (1, 2):
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
        if etype not in TYPES or (version == 1 and etype >= 6):
            fail("entry type %d in a version %d blob" % (etype, version))
        if length == 0 or off + length > end:
            fail("entry length %d past the end" % length)
        entries.append((TYPES[etype], area[off : off + length]))
        off += length
    if len(entries) != count:
        fail("count %d, entries %d" % (count, len(entries)))
    padding = area[total:]
    if padding.strip(b"\xff"):
        fail("bytes after the blob are not erased (0xFF)")
    print("ok   blob: version %d, %d bytes, %d entries, CRC-32 %08x" % (version, total, count, crc))
    matter = [e for e in entries if e[0].startswith("matter_")]
    if version == 2:
        for name in ("matter_cd", "matter_data"):
            if sum(1 for e in matter if e[0] == name) != 1:
                fail("a version 2 blob needs exactly one %s entry" % name)
        cd = [v for n, v in matter if n == "matter_cd"][0]
        if len(cd) > 4096 or cd[0] != 0x30:
            fail("the Certification Declaration is not a DER SEQUENCE of at most 4096 bytes")
        check_matter_record([v for n, v in matter if n == "matter_data"][0])
    return entries


def check_matter_record(rec):
    """The commissioning data record, version 1 (docs/agent-protocol.md)."""
    sizes = {1: (2, 2), 2: (2, 2), 3: (2, 2), 4: (4, 4), 5: (16, 32), 6: (97, 97), 7: (16, 32)}
    names = {1: "vendor id", 2: "product id", 3: "discriminator", 4: "iterations",
             5: "salt", 6: "verifier", 7: "rotating device id unique id"}
    if not rec or rec[0] != 1:
        fail("commissioning data: version byte %r" % rec[:1])
    off, want, fields = 1, 1, {}
    while off < len(rec):
        if off + 2 > len(rec):
            fail("commissioning data: entry header cut at %d" % off)
        t, n = rec[off], rec[off + 1]
        if t not in sizes or t < want:
            fail("commissioning data: type %d at %d unknown, repeated or out of order" % (t, off))
        if t > want and want <= 6:
            fail("commissioning data: %s missing" % names[want])
        lo, hi = sizes[t]
        if not lo <= n <= hi or off + 2 + n > len(rec):
            fail("commissioning data: %s of %d bytes" % (names[t], n))
        fields[t] = rec[off + 2 : off + 2 + n]
        off += 2 + n
        want = t + 1
    if want <= 6:
        fail("commissioning data: %s missing" % names[want])
    disc = int.from_bytes(fields[3], "little")
    iters = int.from_bytes(fields[4], "little")
    if disc > 4095 or not 1000 <= iters <= 100000 or fields[6][32] != 0x04:
        fail("commissioning data: discriminator %d, iterations %d or verifier L out of range" % (disc, iters))
    print("ok   matter: VID 0x%04x PID 0x%04x discriminator %d iterations %d salt %d bytes%s" % (
        int.from_bytes(fields[1], "little"), int.from_bytes(fields[2], "little"), disc, iters,
        len(fields[5]), ", rotating id" if 7 in fields else ""))


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
    if len(sys.argv) == 3 and sys.argv[1] == "--structure":
        parse(open(sys.argv[2], "rb").read())
        print("PASS")
        return 0
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
