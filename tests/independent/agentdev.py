#!/usr/bin/env python3
"""agentdev: an independent device side of the provisioning agent protocol.

Written from the protocol text (docs/agent-protocol.md, the agent protocol,
version 1) only, to check the station against a second reading of
that text. It shares no code with the station or its device simulator: own
COBS, own CRC-32, own frame and TLV code; keys, CSRs and signatures come from
python3-cryptography.

It serves devices one after another on a pseudo-terminal (raw mode), prints
the terminal's path as its first line, and exits when stdin closes.

    agentdev.py [--units N] [--seed S] [--mode MODE] [--state FILE]

Modes: good, bad-csr-sig, csr-trailing, wrong-curve, csr-greedy,
pop-other-key, readback-differs, commit-storage, garbage (a stream of bytes
without a frame delimiter instead of the KEYGEN answer), silence (answers
HELLO, then nothing more).

--state FILE is rewritten after every change: per device its uid (hex), the
committed certificate and chain (base64 DER), keys made and commits.
"""

import argparse
import base64
import json
import os
import random
import select
import sys
import termios
import time
import tty

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

# ---- wire format -----------------------------------------------------------

VERSION = 1
MAX_PAYLOAD = 2048
MAX_BODY = 6 + MAX_PAYLOAD + 4
# COBS adds one byte per 254 and one at the start; the delimiter is apart.
MAX_WIRE = MAX_BODY + MAX_BODY // 254 + 2

OK, BAD_REQUEST, UNKNOWN_OP, BAD_STATE, LOCKED, UNSUPPORTED, STORAGE, TOO_LARGE, INTERNAL = range(9)
HELLO, KEYGEN, PUT_KEY, WRITE, READ, SIGN, COMMIT, ABORT = range(1, 9)
P256, P384, ED25519 = 1, 2, 3
SLOT_CERT, SLOT_CHAIN = 1, 2
SLOT_MAX = 4096
KEY_MAX = 1024


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32(data):
    """CRC-32/ISO-HDLC: reflected 0x04C11DB7, init and final xor all ones."""
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def cobs_encode(data):
    """Canonical COBS: a final block of 254 bytes gets no further 0x01 code."""
    out = bytearray([0])
    code_at, code = 0, 1
    for i, b in enumerate(data):
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
            continue
        out.append(b)
        code += 1
        if code == 0xFF:
            out[code_at] = code
            if i + 1 == len(data):
                return bytes(out)
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data):
    """Accepts both forms; None when the encoding is broken."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0 or i + code > n:
            return None
        block = data[i + 1:i + code]
        if 0 in block:
            return None
        out += block
        i += code
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def frame_body(op, seq, payload):
    head = bytes([VERSION, op]) + seq.to_bytes(2, "little") + len(payload).to_bytes(2, "little")
    body = head + payload
    return body + crc32(body).to_bytes(4, "little")


def frame_wire(op, seq, payload):
    return cobs_encode(frame_body(op, seq, payload)) + b"\x00"


def parse_body(body):
    """(op, seq, payload) or None: the receiver's drop rules."""
    if body is None or len(body) < 10 or body[0] != VERSION:
        return None
    length = int.from_bytes(body[4:6], "little")
    if length > MAX_PAYLOAD or len(body) != 6 + length + 4:
        return None
    if crc32(body[:6 + length]) != int.from_bytes(body[6 + length:], "little"):
        return None
    return body[1], int.from_bytes(body[2:4], "little"), body[6:6 + length]


# ---- one device ------------------------------------------------------------

class Device:
    def __init__(self, index, rng, mode):
        self.index = index
        self.uid = bytes(rng.getrandbits(8) for _ in range(16))
        self.mode = mode
        self.rng = rng
        self.committed = None     # (key, cert, chain, locked)
        self.key = None           # the uncommitted key, if any
        self.alg = None
        self.slots = {}           # uncommitted slot contents
        self.partial = {}         # slot -> (total, bytearray) being written
        self.key_partial = None   # (alg, total, bytearray)
        self.keys_made = 0
        self.commits = 0
        self.finished = False
        self.hello_seen = False
        self.last_body = None
        self.last_response = None

    def locked(self):
        return self.committed is not None and self.committed[3]

    def state(self):
        if self.locked():
            return 3
        if self.key is not None:
            return 1
        return 2 if self.committed is not None else 0

    def current_key(self):
        if self.key is not None:
            return self.key
        return self.committed[0] if self.committed else None

    def current_slot(self, slot):
        if slot in self.slots:
            return self.slots[slot]
        if self.committed is None:
            return b""
        return self.committed[1] if slot == SLOT_CERT else self.committed[2]

    # -- operations: each returns (status, result bytes) --

    def op_hello(self, payload):
        if payload:
            return BAD_REQUEST, b""
        tlv = bytearray()
        tlv += bytes([1, len(self.uid)]) + self.uid
        model = b"INDEP-AGENT-1"
        tlv += bytes([2, len(model)]) + model
        fw = b"agentdev-py-1"
        tlv += bytes([3, len(fw)]) + fw
        tlv += bytes([4, 1, 0x07])
        tlv += bytes([5, 1, self.state()])
        tlv += bytes([6, 2]) + MAX_PAYLOAD.to_bytes(2, "little")
        tlv += bytes([0x7E, 3]) + b"xyz"   # a type the station does not know
        self.hello_seen = True
        return OK, bytes(tlv)

    def _new_key(self, alg):
        if alg == P256:
            curve = ec.SECP256K1() if self.mode == "wrong-curve" else ec.SECP256R1()
            return ec.generate_private_key(curve)
        if alg == P384:
            curve = ec.SECP256R1() if self.mode == "wrong-curve" else ec.SECP384R1()
            return ec.generate_private_key(curve)
        if alg == ED25519:
            return ed25519.Ed25519PrivateKey.generate()
        return None

    def op_keygen(self, payload):
        if len(payload) != 1:
            return BAD_REQUEST, b""
        if self.locked():
            return LOCKED, b""
        key = self._new_key(payload[0])
        if key is None:
            return UNSUPPORTED, b""
        self.key, self.alg = key, payload[0]
        self.slots.clear()
        self.partial.clear()
        self.keys_made += 1
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meaningless")]))
        if self.mode == "csr-greedy":
            builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, "Root of Everything"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Greedy Device Inc")]))
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("bank.example"), x509.DNSName("*.example.com")]), critical=False)
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
        md = None if isinstance(key, ed25519.Ed25519PrivateKey) else (
            hashes.SHA384() if payload[0] == P384 else hashes.SHA256())
        csr = bytearray(builder.sign(key, md).public_bytes(serialization.Encoding.DER))
        if self.mode == "bad-csr-sig":
            csr[-3] ^= 0x55        # inside the signature value
        if self.mode == "csr-trailing":
            csr += b"\x30\x03\x02\x01\x00"
        if len(csr) + 1 > MAX_PAYLOAD:
            return TOO_LARGE, b""
        return OK, bytes(csr)

    def _chunk(self, payload):
        """(offset, total, chunk) of a PUT_KEY / WRITE request body."""
        if len(payload) < 5:
            return None
        return (int.from_bytes(payload[1:3], "little"), int.from_bytes(payload[3:5], "little"),
                payload[5:])

    def op_put_key(self, payload):
        parsed = self._chunk(payload)
        if parsed is None:
            return BAD_REQUEST, b""
        if self.locked():
            return LOCKED, b""
        alg = payload[0]
        offset, total, chunk = parsed
        if alg not in (P256, P384, ED25519):
            return UNSUPPORTED, b""
        if total > KEY_MAX:
            return TOO_LARGE, b""
        if offset == 0:
            self.key_partial = (alg, total, bytearray())
        if self.key_partial is None or self.key_partial[0] != alg or self.key_partial[1] != total \
                or len(self.key_partial[2]) != offset or offset + len(chunk) > total:
            return BAD_REQUEST, b""
        self.key_partial[2].extend(chunk)
        if offset + len(chunk) == total:
            der = bytes(self.key_partial[2])
            self.key_partial = None
            try:
                key = serialization.load_der_private_key(der, password=None)
            except ValueError:
                return BAD_REQUEST, b""
            self.key, self.alg = key, alg
            self.slots.clear()
            self.partial.clear()
            self.keys_made += 1
        return OK, b""

    def op_write(self, payload):
        parsed = self._chunk(payload)
        if parsed is None:
            return BAD_REQUEST, b""
        slot = payload[0]
        offset, total, chunk = parsed
        if self.locked():
            return LOCKED, b""
        if slot not in (SLOT_CERT, SLOT_CHAIN):
            return UNSUPPORTED, b""
        if slot == SLOT_CERT and self.current_key() is None:
            return BAD_STATE, b""
        if total > SLOT_MAX:
            return TOO_LARGE, b""
        if offset == 0:
            self.partial[slot] = (total, bytearray())
        cur = self.partial.get(slot)
        if cur is None or cur[0] != total or len(cur[1]) != offset or offset + len(chunk) > total:
            return BAD_REQUEST, b""
        cur[1].extend(chunk)
        if offset + len(chunk) == total:
            self.slots[slot] = bytes(cur[1])
            del self.partial[slot]
        return OK, b""

    def op_read(self, payload):
        if len(payload) != 5 or payload[0] not in (SLOT_CERT, SLOT_CHAIN):
            return (BAD_REQUEST if len(payload) != 5 else UNSUPPORTED), b""
        offset = int.from_bytes(payload[1:3], "little")
        want = int.from_bytes(payload[3:5], "little")
        data = self.current_slot(payload[0])
        if offset > len(data):
            return BAD_REQUEST, b""
        part = data[offset:offset + min(want, MAX_PAYLOAD - 3)]
        if self.mode == "readback-differs" and part and payload[0] == SLOT_CERT:
            part = bytes([part[0] ^ 0x01]) + part[1:]
        return OK, len(data).to_bytes(2, "little") + part

    def op_sign(self, payload):
        if len(payload) != 32:
            return BAD_REQUEST, b""
        key = self.current_key()
        if key is None:
            return BAD_STATE, b""
        if self.mode == "pop-other-key":
            key = self._new_key(self.alg or P256)
        msg = b"PROVISION-POP-V1" + payload
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return OK, key.sign(msg)
        md = hashes.SHA384() if isinstance(key.curve, ec.SECP384R1) else hashes.SHA256()
        return OK, key.sign(msg, ec.ECDSA(md))

    def op_commit(self, payload):
        if len(payload) != 1:
            return BAD_REQUEST, b""
        if self.locked():
            return LOCKED, b""
        key = self.current_key()
        cert = self.current_slot(SLOT_CERT)
        if key is None or not cert:
            return BAD_STATE, b""
        if self.mode == "commit-storage":
            return STORAGE, b""
        self.committed = (key, cert, self.current_slot(SLOT_CHAIN), bool(payload[0] & 1))
        self.key = None
        self.slots.clear()
        self.partial.clear()
        self.commits += 1
        self.finished = True
        return OK, b""

    def op_abort(self, payload):
        if payload:
            return BAD_REQUEST, b""
        self.key = None
        self.slots.clear()
        self.partial.clear()
        self.key_partial = None
        if self.hello_seen:
            self.finished = True
        return OK, b""

    def execute(self, op, payload):
        handlers = {HELLO: self.op_hello, KEYGEN: self.op_keygen, PUT_KEY: self.op_put_key,
                    WRITE: self.op_write, READ: self.op_read, SIGN: self.op_sign,
                    COMMIT: self.op_commit, ABORT: self.op_abort}
        if op not in handlers:
            return UNKNOWN_OP, b""
        try:
            return handlers[op](payload)
        except Exception as exc:  # any other device-side failure
            print("agentdev: %s failed: %r" % (op, exc), file=sys.stderr)
            return INTERNAL, b""

    def record(self):
        c = self.committed
        return {
            "index": self.index,
            "uid": self.uid.hex(),
            "mode": self.mode,
            "cert": base64.b64encode(c[1]).decode() if c else None,
            "chain": base64.b64encode(c[2]).decode() if c else None,
            "locked": bool(c and c[3]),
            "keys_made": self.keys_made,
            "commits": self.commits,
        }


# ---- the socket: devices one after another ---------------------------------

class Socket:
    def __init__(self, args):
        self.rng = random.Random(args.seed)
        self.units = args.units
        self.mode = args.mode
        self.state_file = args.state
        self.swap_delay = args.swap_delay_ms / 1000.0
        self.devices = []
        self.cur = None
        self.empty_until = 0.0
        self.rx = bytearray()
        self.discarding = False
        self.fresh = False        # the station opened the port afresh
        self.streaming = False
        self.stream_until = 0.0
        self.silent = False
        self._next_device()

    def _next_device(self):
        if self.units and len(self.devices) >= self.units:
            self.cur = None
            return
        self.cur = Device(len(self.devices) + 1, self.rng, self.mode)
        self.devices.append(self.cur)
        self.streaming = False
        self.silent = False
        self.save()

    def save(self):
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"version": 1, "devices": [d.record() for d in self.devices]}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)

    def tick(self):
        if self.cur is None and self.empty_until and time.monotonic() >= self.empty_until:
            self.empty_until = 0.0
            self._next_device()

    def receive(self, data):
        """Bytes from the station; returns the bytes to send back."""
        out = bytearray()
        for b in data:
            self.tick()
            if b != 0:
                if self.discarding:
                    continue
                self.rx.append(b)
                if len(self.rx) > MAX_WIRE:
                    self.rx.clear()
                    self.discarding = True
                continue
            if self.discarding:
                self.discarding = False
                continue
            if not self.rx:
                self.fresh = True   # a lone 0x00: a freshly opened port
                continue
            body = cobs_decode(bytes(self.rx))
            self.rx.clear()
            out += self.handle_body(body)
        return bytes(out)

    def handle_body(self, body):
        parsed = parse_body(body)
        dev = self.cur
        if parsed is None or dev is None or self.streaming or self.silent:
            return b""
        op, seq, payload = parsed
        if op & 0x80:
            return b""
        fresh, self.fresh = self.fresh, False
        if body == dev.last_body:
            return dev.last_response      # a retry: never executed twice
        if self.mode == "silence" and op != HELLO:
            self.silent = True
            return b""
        if self.mode == "garbage" and op == KEYGEN:
            self.streaming = True
            self.stream_until = time.monotonic() + 20.0
            return b""
        status, result = dev.execute(op, payload)
        response = frame_wire(op | 0x80, seq, bytes([status]) + (result if status == OK else b""))
        dev.last_body, dev.last_response = body, response
        self.save()
        if op == HELLO and status == OK and dev.finished and not fresh:
            # The station showed its result: the operator swaps the device.
            self.cur = None
            self.empty_until = time.monotonic() + self.swap_delay
        return response

    def garbage(self, n):
        if not self.streaming or time.monotonic() > self.stream_until:
            return b""
        return bytes(self.rng.randrange(1, 256) for _ in range(n))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--units", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mode", default="good",
                   choices=["good", "bad-csr-sig", "csr-trailing", "wrong-curve", "csr-greedy",
                            "pop-other-key", "readback-differs", "commit-storage", "garbage", "silence"])
    p.add_argument("--state")
    p.add_argument("--swap-delay-ms", type=int, default=150)
    args = p.parse_args()

    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    os.set_blocking(master, False)
    print(os.ttyname(slave), flush=True)

    sock = Socket(args)
    pending = bytearray()
    junk = b""
    while True:
        want_write = bool(pending) or sock.streaming
        r, w, _ = select.select([master, sys.stdin], [master] if want_write else [], [], 0.02)
        if sys.stdin in r and not os.read(sys.stdin.fileno(), 4096):
            break
        if master in r:
            try:
                data = os.read(master, 4096)
            except OSError:      # no one has the port open
                data = b""
                time.sleep(0.02)
            pending += sock.receive(data)
        sock.tick()
        if master in w:
            if not pending and sock.streaming:
                if not junk:
                    junk = sock.garbage(4096)
                pending += junk
            try:
                n = os.write(master, bytes(pending))
                del pending[:n]
            except (BlockingIOError, OSError):
                pass
    os.close(slave)
    os.close(master)


if __name__ == "__main__":
    main()
