#!/usr/bin/python3
"""A second implementation of the Matter SPAKE2+ verifier, with
python3-cryptography, to hold station/st-matter-spake2p.c against
(tests/station/test-matter-codes.c, /matter/spake2p/python).

Reads lines "PASSCODE SALT_HEX ITERATIONS" on stdin; writes for each the
97-byte verifier w0 || L in hex on a line of its own. PBKDF2-HMAC-SHA256
over the passcode as 4 bytes little-endian gives 80 bytes; w0 and w1 are
the two halves mod n of P-256; L = w1*G uncompressed."""
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

# the order of the P-256 group (SEC 2, section 2.4.2; FIPS 186-4, D.1.2.3)
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def verifier(passcode: int, salt: bytes, iterations: int) -> bytes:
    ws = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt,
                    iterations=iterations).derive(passcode.to_bytes(4, "little"))
    w0 = int.from_bytes(ws[:40], "big") % P256_N
    w1 = int.from_bytes(ws[40:], "big") % P256_N
    point = ec.derive_private_key(w1, ec.SECP256R1()).public_key()
    L = point.public_bytes(serialization.Encoding.X962,
                           serialization.PublicFormat.UncompressedPoint)
    return w0.to_bytes(32, "big") + L


def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        passcode, salt_hex, iterations = line.split()
        print(verifier(int(passcode), bytes.fromhex(salt_hex), int(iterations)).hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
