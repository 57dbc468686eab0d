#!/usr/bin/env python3
"""agentdev: an independent device side of the provisioning agent protocol.

Written from the protocol text (docs/agent-protocol.md, the agent protocol,
version 1, and its extension matter-1) only, to check the station against a
second reading of that text. It shares no code with the station or its device simulator: own
COBS, own CRC-32, own frame and TLV code; keys, CSRs and signatures come from
python3-cryptography.

It serves devices one after another on a pseudo-terminal (raw mode), prints
the terminal's path as its first line, and exits when stdin closes.

    agentdev.py [--units N] [--seed S] [--mode MODE] [--state FILE]
                [--matter] [--extensions HEX] [--max-payload N] [--stay]
    agentdev.py --self-test docs/agent-protocol.md

Modes: good, bad-csr-sig, csr-trailing, wrong-curve, csr-greedy,
pop-other-key, readback-differs, commit-storage, garbage (a stream of bytes
without a frame delimiter instead of the KEYGEN answer), silence (answers
HELLO, then nothing more), readback-differs-slot4 (READ of slot 4 returns
one byte changed), matter-unsupported (announces matter-1, then answers
UNSUPPORTED to slots 3 and 4 all the same).

--matter implements the extension matter-1: HELLO TLV 0x07 (bit 0), slot 3
(the Certification Declaration, up to 4096 bytes) and slot 4 (the
commissioning data record, up to 186 bytes). Without it slots 3 and 4 are
unknown slots (UNSUPPORTED). --extensions HEX sends these bytes as the value
of TLV 0x07 instead (e.g. 01000080: matter-1 and an unknown bit, 4 bytes);
"none" leaves the TLV out. --max-payload N (256-2048) is announced in TLV
0x06 and enforced (TOO_LARGE above it). --stay leaves the last device in
the socket after its result, for QA's `unit verify`.

--state FILE is rewritten after every change: per device its uid (hex), the
committed certificate and chain (base64 DER), with matter-1 the committed
Certification Declaration and commissioning record (base64) and what this
program's own parser made of the record, keys made, commits, and how many
WRITE and READ requests arrived per slot (with the WRITE chunks).

--self-test FILE decodes the hex vectors of the section "Vectors of
matter-1" of the protocol text, and the version 1 frames of "Test vectors",
with this program's code and exits 0 when they all agree with the text
around them.
"""

import argparse
import base64
import re
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
SLOT_CERT, SLOT_CHAIN, SLOT_CD, SLOT_COMMISSIONING = 1, 2, 3, 4
SLOT_MAX = 4096
KEY_MAX = 1024
EXT_MATTER_1 = 0x01          # bit 0 of HELLO TLV 0x07
TLV_EXTENSIONS = 0x07
# Capacities: slots 1 and 2 are this device's choice; 3 and 4 are the
# largest objects matter-1 defines.
SLOT_CAPACITY = {SLOT_CERT: SLOT_MAX, SLOT_CHAIN: SLOT_MAX, SLOT_CD: 4096, SLOT_COMMISSIONING: 186}


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


# ---- the commissioning data record (matter-1, slot 4) ----------------------

RECORD_VERSION = 1
RECORD_MAX = 186
# type -> (field name, smallest length, largest length); all mandatory but 7.
RECORD_ENTRIES = {
    0x01: ("vendor_id", 2, 2),
    0x02: ("product_id", 2, 2),
    0x03: ("discriminator", 2, 2),
    0x04: ("iterations", 4, 4),
    0x05: ("salt", 16, 32),
    0x06: ("verifier", 97, 97),
    0x07: ("rotating_id", 16, 32),
}
RECORD_OPTIONAL = {0x07}


class RecordError(ValueError):
    def __init__(self, offset, reason):
        super().__init__("offset %d: %s" % (offset, reason))
        self.offset = offset
        self.reason = reason


def parse_commissioning(data):
    """The record's fields as a dict (integers, byte strings as hex);
    RecordError with the offset and reason for anything the text refuses."""
    data = bytes(data)
    if not data:
        raise RecordError(0, "empty record")
    if len(data) > RECORD_MAX:
        raise RecordError(RECORD_MAX, "record longer than %d bytes" % RECORD_MAX)
    if data[0] != RECORD_VERSION:
        raise RecordError(0, "format version %d, not %d" % (data[0], RECORD_VERSION))
    fields = {}
    pos, last = 1, 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise RecordError(pos, "entry header runs past the end")
        typ, length = data[pos], data[pos + 1]
        if typ not in RECORD_ENTRIES:
            raise RecordError(pos, "unknown type 0x%02x" % typ)
        if typ <= last:
            raise RecordError(pos, "type 0x%02x twice or out of order" % typ)
        for missing in range(last + 1, typ):
            if missing not in RECORD_OPTIONAL:
                raise RecordError(pos, "mandatory type 0x%02x missing" % missing)
        name, lo, hi = RECORD_ENTRIES[typ]
        if not lo <= length <= hi:
            raise RecordError(pos + 1, "type 0x%02x has length %d" % (typ, length))
        if pos + 2 + length > len(data):
            raise RecordError(pos, "type 0x%02x runs past the end" % typ)
        value = data[pos + 2:pos + 2 + length]
        if typ in (0x01, 0x02, 0x03, 0x04):
            value = int.from_bytes(value, "little")
            if typ == 0x03 and value > 4095:
                raise RecordError(pos + 2, "discriminator %d above 4095" % value)
            if typ == 0x04 and not 1000 <= value <= 100000:
                raise RecordError(pos + 2, "iteration count %d outside 1000-100000" % value)
            fields[name] = value
        elif typ == 0x06:
            if value[32] != 0x04:
                raise RecordError(pos + 2 + 32, "L is not an uncompressed point (0x04)")
            fields["w0"] = value[:32].hex()
            fields["L"] = value[32:].hex()
        else:
            fields[name] = value.hex()
        last = typ
        pos += 2 + length
    for typ in RECORD_ENTRIES:
        if typ > last and typ not in RECORD_OPTIONAL:
            raise RecordError(len(data), "mandatory type 0x%02x missing" % typ)
    fields.setdefault("rotating_id", None)
    return fields


def encode_commissioning(vendor_id, product_id, discriminator, iterations, salt, verifier,
                         rotating_id=None):
    """The record of format version 1 (for the self-test)."""
    entries = [(0x01, vendor_id.to_bytes(2, "little")), (0x02, product_id.to_bytes(2, "little")),
               (0x03, discriminator.to_bytes(2, "little")), (0x04, iterations.to_bytes(4, "little")),
               (0x05, bytes(salt)), (0x06, bytes(verifier))]
    if rotating_id is not None:
        entries.append((0x07, bytes(rotating_id)))
    out = bytearray([RECORD_VERSION])
    for typ, value in entries:
        out += bytes([typ, len(value)]) + value
    return bytes(out)


# ---- one device ------------------------------------------------------------

class Device:
    def __init__(self, index, rng, mode, matter=False, extensions=None, max_payload=MAX_PAYLOAD):
        self.index = index
        self.uid = bytes(rng.getrandbits(8) for _ in range(16))
        self.mode = mode
        self.rng = rng
        # The value of HELLO TLV 0x07 (None: left out), and whether slots 3
        # and 4 really work (matter-unsupported announces without them).
        self.extensions = extensions
        self.matter = matter and mode != "matter-unsupported"
        self.max_payload = max_payload
        self.committed = None     # (key, {slot: bytes}, locked)
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
        self.requests = {"write": {}, "read": {}}   # op -> slot -> count
        self.chunks = {}          # slot -> [[offset, chunk length, total], ...]

    def locked(self):
        return self.committed is not None and self.committed[2]

    def slots_known(self):
        return (SLOT_CERT, SLOT_CHAIN, SLOT_CD, SLOT_COMMISSIONING) if self.matter else (SLOT_CERT, SLOT_CHAIN)

    def count(self, op, slot):
        per = self.requests[op]
        per[str(slot)] = per.get(str(slot), 0) + 1

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
        if slot in self.partial:
            return b""            # reads as empty until the last chunk
        if slot in self.slots:
            return self.slots[slot]
        if self.committed is None:
            return b""
        return self.committed[1].get(slot, b"")

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
        tlv += bytes([6, 2]) + self.max_payload.to_bytes(2, "little")
        if self.extensions is not None:
            tlv += bytes([TLV_EXTENSIONS, len(self.extensions)]) + self.extensions
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
            # The text drops uncommitted slot contents at KEYGEN and ABORT
            # only: a PUT_KEY key leaves them as they are.
            self.key, self.alg = key, alg
            self.keys_made += 1
        return OK, b""

    def op_write(self, payload):
        parsed = self._chunk(payload)
        if parsed is None:
            return BAD_REQUEST, b""
        slot = payload[0]
        offset, total, chunk = parsed
        self.count("write", slot)
        if self.locked():
            return LOCKED, b""
        if slot not in self.slots_known():
            return UNSUPPORTED, b""
        if slot == SLOT_CERT and self.current_key() is None:
            return BAD_STATE, b""
        if total > SLOT_CAPACITY[slot]:
            return TOO_LARGE, b""
        self.chunks.setdefault(str(slot), []).append([offset, len(chunk), total])
        if offset == 0:
            self.slots.pop(slot, None)
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
        if len(payload) != 5:
            return BAD_REQUEST, b""
        self.count("read", payload[0])
        if payload[0] not in self.slots_known():
            return UNSUPPORTED, b""
        offset = int.from_bytes(payload[1:3], "little")
        want = int.from_bytes(payload[3:5], "little")
        data = self.current_slot(payload[0])
        if offset > len(data):
            return BAD_REQUEST, b""
        part = data[offset:offset + min(want, MAX_PAYLOAD - 3)]
        if self.mode == "readback-differs" and part and payload[0] == SLOT_CERT:
            part = bytes([part[0] ^ 0x01]) + part[1:]
        if self.mode == "readback-differs-slot4" and part and payload[0] == SLOT_COMMISSIONING:
            part = part[:-1] + bytes([part[-1] ^ 0x01])
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
        if key is None or not cert or self.partial:
            return BAD_STATE, b""
        if self.mode == "commit-storage":
            return STORAGE, b""
        # One step: the key and every slot together.
        self.committed = (key, {slot: self.current_slot(slot) for slot in SLOT_CAPACITY},
                          bool(payload[0] & 1))
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
        if len(payload) > self.max_payload:
            return TOO_LARGE, b""
        try:
            return handlers[op](payload)
        except Exception as exc:  # any other device-side failure
            print("agentdev: %s failed: %r" % (op, exc), file=sys.stderr)
            return INTERNAL, b""

    def record(self):
        c = self.committed

        def committed_b64(slot):
            return base64.b64encode(c[1][slot]).decode() if c else None

        commissioning = None
        if c and c[1][SLOT_COMMISSIONING]:
            try:
                commissioning = {"parsed": True, "error": None,
                                 "fields": parse_commissioning(c[1][SLOT_COMMISSIONING])}
            except RecordError as exc:
                commissioning = {"parsed": False, "error": str(exc), "fields": None}
        return {
            "index": self.index,
            "uid": self.uid.hex(),
            "mode": self.mode,
            "extensions": self.extensions.hex() if self.extensions is not None else None,
            "cert": committed_b64(SLOT_CERT),
            "chain": committed_b64(SLOT_CHAIN),
            "cd": committed_b64(SLOT_CD),
            "commissioning": committed_b64(SLOT_COMMISSIONING),
            "commissioning_record": commissioning,
            "locked": bool(c and c[2]),
            "keys_made": self.keys_made,
            "commits": self.commits,
            "requests": self.requests,
            "chunks": self.chunks,
        }


# ---- the socket: devices one after another ---------------------------------

class Socket:
    def __init__(self, args):
        self.rng = random.Random(args.seed)
        self.units = args.units
        self.mode = args.mode
        self.matter = args.matter
        self.max_payload = args.max_payload
        if args.extensions == "none":
            self.extensions = None
        elif args.extensions is not None:
            self.extensions = bytes.fromhex(args.extensions)
        else:
            self.extensions = bytes([EXT_MATTER_1]) if args.matter else None
        self.state_file = args.state
        self.swap_delay = args.swap_delay_ms / 1000.0
        self.stay = args.stay
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
        self.cur = Device(len(self.devices) + 1, self.rng, self.mode, self.matter,
                          self.extensions, self.max_payload)
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
        last = self.units and len(self.devices) >= self.units
        if op == HELLO and status == OK and dev.finished and not fresh and not (self.stay and last):
            # The station showed its result: the operator swaps the device.
            self.cur = None
            self.empty_until = time.monotonic() + self.swap_delay
        return response

    def garbage(self, n):
        if not self.streaming or time.monotonic() > self.stream_until:
            return b""
        return bytes(self.rng.randrange(1, 256) for _ in range(n))


# ---- --self-test: the text's vectors of matter-1 ---------------------------

HEX_TOKEN = re.compile(r"^(?:[0-9a-fA-F]{2}|\.\.\.)$")


def _hex_tokens(line):
    """The leading hex bytes of a listing line ("..." kept), up to the comment
    (after a run of three spaces, or the first word that is not hex)."""
    out = []
    for tok in re.split(r"   +", line.strip())[0].split():
        if not HEX_TOKEN.match(tok):
            break
        out.append(tok.lower())
    return out


def _matches(tokens, data):
    """Whether data fits a listing whose "..." stand for any bytes."""
    pattern = "".join(".*" if t == "..." else t for t in tokens)
    return re.fullmatch(pattern, data.hex(), re.S) is not None


def _tlvs(data):
    out, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data) or pos + 2 + data[pos + 1] > len(data):
            raise ValueError("TLV at %d runs past the end" % pos)
        out.append((data[pos], data[pos + 2:pos + 2 + data[pos + 1]]))
        pos += 2 + data[pos + 1]
    return out


def self_test(path):
    """Checks the vectors of "Vectors of matter-1" with this program's code;
    returns a list of failures (empty: all agree)."""
    text = open(path, encoding="utf-8").read()
    start = text.find("### Vectors of matter-1")
    if start < 0:
        return ["%s has no section \"Vectors of matter-1\"" % path]
    end = text.find("\n## ", start)
    section = text[start:end if end >= 0 else len(text)]
    fails = []

    def check(cond, what):
        print("%s: %s" % ("ok" if cond else "FAIL", what))
        if not cond:
            fails.append(what)

    # The version 1 frames of "Test vectors", before the matter-1 ones.
    v1 = text[text.find("## Test vectors"):start]
    frames = re.findall(r"^\|\s*([^|`]+?)\s*\|\s*`([0-9a-fA-F ]+)`\s*\|\s*`([0-9a-fA-F ]+)`\s*\|$", v1, re.M)
    check(len(frames) == 4, "four version 1 frame vectors (found %d)" % len(frames))
    for name, body_hex, wire_hex in frames:
        body, wire = bytes.fromhex(body_hex), bytes.fromhex(wire_hex)
        parsed = parse_body(body)
        check(parsed is not None and frame_wire(parsed[0], parsed[1], parsed[2]) == wire
              and cobs_decode(wire[:-1]) == body, "version 1 vector: %s" % name)

    rows = []
    for line in section.splitlines():
        m = re.match(r"^\|\s*(.+?)\s*\|\s*`([0-9a-fA-F ]+)`\s*\|$", line)
        if m:
            rows.append((m.group(1), bytes.fromhex(m.group(2))))
    check(len(rows) == 5, "five hex rows in the table (found %d)" % len(rows))
    if len(rows) != 5:
        return fails
    (_, hello), (_, wbody), (_, wwire), (_, rbody), (_, rwire) = rows

    # HELLO result: the version 1 example plus TLV 0x07 = 01 (matter-1).
    tlvs = dict(_tlvs(hello))
    check(len(_tlvs(hello)) == len(tlvs), "HELLO result: every TLV type once")
    check(tlvs.get(1) == bytes.fromhex("deadbeef") and tlvs.get(2) == b"AB" and tlvs.get(3) == b"1",
          "HELLO result: uid DEADBEEF, model AB, firmware 1")
    check(tlvs.get(4) == b"\x01" and tlvs.get(5) == b"\x00" and tlvs.get(6) == (2048).to_bytes(2, "little"),
          "HELLO result: P-256 only, blank, max payload 2048")
    ext = tlvs.get(TLV_EXTENSIONS)
    check(ext is not None and 1 <= len(ext) <= 4 and int.from_bytes(ext, "little") & EXT_MATTER_1,
          "HELLO result: TLV 0x07 announces matter-1 (bit 0)")
    dev = Device(1, random.Random(1), "good", matter=True, extensions=bytes([EXT_MATTER_1]))
    dev.uid = bytes.fromhex("deadbeef")
    ours = dict(_tlvs(dev.op_hello(b"")[1]))
    check(ours.get(TLV_EXTENSIONS) == ext, "agentdev --matter announces the same TLV 0x07")

    # WRITE slot 3, seq 3, offset 0, total 2, chunk 30 00.
    parsed = parse_body(wbody)
    check(parsed == (WRITE, 3, bytes([SLOT_CD]) + (0).to_bytes(2, "little") + (2).to_bytes(2, "little")
                     + b"\x30\x00"), "WRITE body: op 4, seq 3, slot 3, offset 0, total 2, chunk 30 00")
    check(cobs_decode(wwire[:-1]) == wbody and wwire[-1:] == b"\x00" and 0 not in wwire[:-1],
          "WRITE wire bytes: COBS of the body and one 0x00")
    check(frame_wire(WRITE, 3, parsed[2] if parsed else b"") == wwire, "WRITE wire bytes: agentdev encodes the same")
    check(dev.execute(WRITE, parsed[2] if parsed else b"") == (OK, b"") and dev.current_slot(SLOT_CD) == b"\x30\x00",
          "WRITE executed by agentdev --matter: slot 3 holds 30 00, uncommitted")
    plain = Device(2, random.Random(2), "good")
    check(plain.execute(WRITE, parsed[2] if parsed else b"")[0] == UNSUPPORTED,
          "the same WRITE to a device without matter-1: UNSUPPORTED")

    # READ slot 4, seq 4, offset 0, max 2045.
    parsed = parse_body(rbody)
    check(parsed == (READ, 4, bytes([SLOT_COMMISSIONING]) + (0).to_bytes(2, "little") + (2045).to_bytes(2, "little")),
          "READ body: op 5, seq 4, slot 4, offset 0, max 2045")
    check(cobs_decode(rwire[:-1]) == rbody and rwire[-1:] == b"\x00" and 0 not in rwire[:-1],
          "READ wire bytes: COBS of the body and one 0x00")
    check(frame_wire(READ, 4, parsed[2] if parsed else b"") == rwire, "READ wire bytes: agentdev encodes the same")

    # The commissioning data record and the two blobs: listings.
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    check(len(blocks) == 3, "three listings (record, blob version 2, blob version 1; found %d)" % len(blocks))
    if len(blocks) != 3:
        return fails
    lists = [[t for line in b.splitlines() for t in _hex_tokens(line)] for b in blocks]

    verifier = bytes(range(97))
    verifier = verifier[:32] + b"\x04" + verifier[33:]
    record = encode_commissioning(0xFFF1, 0x8000, 3840, 1000, b"SPAKE2P Key Salt", verifier)
    check(len(record) == 136, "record from the prose: 136 bytes (agentdev's encoder: %d)" % len(record))
    check(_matches(lists[0], record), "record listing matches the record made from the prose")
    try:
        f = parse_commissioning(record)
        check((f["vendor_id"], f["product_id"], f["discriminator"], f["iterations"]) == (0xFFF1, 0x8000, 3840, 1000)
              and f["salt"] == b"SPAKE2P Key Salt".hex() and f["w0"] == verifier[:32].hex()
              and f["L"] == verifier[32:].hex() and f["rotating_id"] is None,
              "record parsed by agentdev: every field as the prose says")
    except RecordError as exc:
        check(False, "record parsed by agentdev (%s)" % exc)
    for name, bad in (("format version 2", b"\x02" + record[1:]),
                      ("discriminator 4096", record[:11] + (4096).to_bytes(2, "little") + record[13:]),
                      ("a byte after the last entry", record + b"\x00"),
                      ("L not starting with 04", record[:39 + 32] + b"\x05" + record[39 + 33:]),
                      ("vendor id missing", record[:1] + record[5:])):
        try:
            parse_commissioning(bad)
            check(False, "record with %s refused" % name)
        except RecordError as exc:
            check(True, "record with %s refused (%s)" % (name, exc))

    # Blob version 2: the listing with the record above; length and CRC.
    entries = [(1, bytes.fromhex("deadbeef")), (2, bytes.fromhex("3003020100")), (3, bytes.fromhex("30020500")),
               (6, bytes.fromhex("3003020101")), (7, record)]
    check(_matches(lists[1], _blob(2, entries)), "blob version 2 listing: header, entries and CRC-32 agree")
    check(len(_blob(2, entries)) == 190, "blob version 2: 190 bytes")
    # Blob version 1, listed in full.
    v1 = bytes.fromhex("".join(lists[2]))
    check(len(v1) == 56 and int.from_bytes(v1[8:12], "little") == 56, "blob version 1: 56 bytes, as its length field")
    check(crc32(v1[:-4]) == int.from_bytes(v1[-4:], "little"), "blob version 1: CRC-32 agrees")
    check(v1 == _blob(1, [(1, bytes.fromhex("deadbeef")), (2, bytes.fromhex("3003020100")),
                          (3, bytes.fromhex("30020500")), (4, bytes.fromhex("300101")), (5, b"SN-1")]),
          "blob version 1 rebuilt from the prose byte for byte")
    return fails


def _blob(version, entries):
    body = bytearray()
    for typ, value in entries:
        body += bytes([typ, 0]) + len(value).to_bytes(2, "little") + value
    total = 12 + len(body) + 4
    head = b"PCB1" + version.to_bytes(2, "little") + len(entries).to_bytes(2, "little") + total.to_bytes(4, "little")
    blob = head + body
    return blob + crc32(blob).to_bytes(4, "little")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--self-test", metavar="PROTOCOL_MD")
    p.add_argument("--matter", action="store_true")
    p.add_argument("--extensions")
    p.add_argument("--max-payload", type=int, default=MAX_PAYLOAD)
    p.add_argument("--units", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mode", default="good",
                   choices=["good", "bad-csr-sig", "csr-trailing", "wrong-curve", "csr-greedy",
                            "pop-other-key", "readback-differs", "commit-storage", "garbage", "silence",
                            "readback-differs-slot4", "matter-unsupported"])
    p.add_argument("--state")
    p.add_argument("--swap-delay-ms", type=int, default=150)
    p.add_argument("--stay", action="store_true")
    args = p.parse_args()
    if args.self_test:
        fails = self_test(args.self_test)
        print("%d failure(s)" % len(fails))
        sys.exit(1 if fails else 0)
    if not 256 <= args.max_payload <= MAX_PAYLOAD:
        p.error("--max-payload must be 256 to 2048")

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
