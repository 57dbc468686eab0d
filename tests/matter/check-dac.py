#!/usr/bin/env python3
"""An independent check of Matter attestation certificates.

Written from the Matter Core Specification's certificate profiles (section
6.2.2: the Device Attestation Certificate, the Product Attestation
Intermediate, the Product Attestation Authority, and the encoding of the
Vendor ID and Product ID in a subject), with python3-cryptography and a
small DER reader of its own for what that library does not show (the
ASN.1 string type of an attribute, the RDN it sits in, the signature
algorithm inside the signed part). It shares no code with station's C
rules (station/st-matter-dac.c); tests/station/test-matter-dac.c holds the
two to the same verdicts.

    check-dac.py paa PAA.pem
    check-dac.py pai PAI.pem
    check-dac.py dac PAI.pem DAC.pem

Exit 0: the certificate keeps every rule ("OK ..." on stdout).
Exit 1: it breaks one; stderr says "FAIL [rule-id]: what", the first found.
Exit 2: usage, or a file that is not exactly one PEM certificate.
Exit 3: an error of this script (never a verdict).
"""

import datetime
import re
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

MAX_FILE = 64 * 1024
OID_VID = "1.3.6.1.4.1.37244.2.1"
OID_PID = "1.3.6.1.4.1.37244.2.2"
TAG_UTF8STRING = 0x0C
# AlgorithmIdentifier { ecdsa-with-SHA256 (1.2.840.10045.4.3.2) }, no parameters
ECDSA_SHA256_ALGID = bytes.fromhex("300a06082a8648ce3d040302")
NO_EXPIRY = datetime.datetime(9999, 12, 31, 23, 59, 59)
FOUR_UPPER_HEX = re.compile(r"[0-9A-F]{4}")


class Broken(Exception):
    def __init__(self, rule, text):
        super().__init__(text)
        self.rule = rule
        self.text = text


class Unreadable(Exception):
    pass


# ---- a minimal DER reader ----

def der_element(buf, pos):
    """(tag, start of content, end of content, end of element) at pos."""
    if pos + 2 > len(buf):
        raise Broken("der", "truncated DER element")
    tag = buf[pos]
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(buf):
            raise Broken("der", "bad DER length")
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    if pos + length > len(buf):
        raise Broken("der", "DER element longer than its container")
    return tag, pos, pos + length, pos + length


def der_children(buf, start, end):
    """(tag, content start, content end, element start) of each child."""
    pos = start
    while pos < end:
        first = pos
        tag, cs, ce, pos = der_element(buf[:end], pos)
        yield tag, cs, ce, first


def oid_text(raw):
    if not raw:
        return ""
    arcs = []
    value = 0
    for b in raw:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def name_attributes(name_der):
    """[(rdn index, attributes in that RDN, oid, tag, value bytes)]."""
    out = []
    tag, cs, ce, _ = der_element(name_der, 0)
    if tag != 0x30:
        raise Broken("der", "a Name is a SEQUENCE")
    for index, (stag, ss, se, _) in enumerate(der_children(name_der, cs, ce)):
        if stag != 0x31:
            raise Broken("der", "an RDN is a SET")
        members = list(der_children(name_der, ss, se))
        for atag, a_s, a_e, _ in members:
            parts = list(der_children(name_der, a_s, a_e))
            if atag != 0x30 or len(parts) != 2 or parts[0][0] != 0x06:
                raise Broken("der", "an attribute is SEQUENCE { OID, value }")
            oid = oid_text(name_der[parts[0][1]:parts[0][2]])
            out.append((index, len(members), oid, parts[1][0],
                        name_der[parts[1][1]:parts[1][2]]))
    return out


# ---- the Vendor ID and Product ID in a subject ----

def matter_ids(cert, who):
    """{'vid': int, 'pid': int} for the attributes present, each checked:
    a UTF8String of exactly four upper-case hex digits, once, alone in its
    own RDN."""
    found = {}
    attrs = name_attributes(cert.subject.public_bytes())
    for label, oid in (("vid", OID_VID), ("pid", OID_PID)):
        mine = [a for a in attrs if a[2] == oid]
        if not mine:
            continue
        big = label.upper()
        if len(mine) > 1:
            raise Broken(label + "-once", f"{who}: the {big} attribute appears {len(mine)} times")
        _, rdn_size, _, tag, value = mine[0]
        if rdn_size != 1:
            raise Broken(label + "-single-rdn",
                         f"{who}: the {big} attribute shares a multi-valued RDN with {rdn_size - 1} other(s)")
        if tag != TAG_UTF8STRING:
            raise Broken(label + "-utf8string",
                         f"{who}: the {big} attribute is ASN.1 tag {tag:#04x}, not a UTF8String")
        text = value.decode("ascii", errors="replace")
        if not FOUR_UPPER_HEX.fullmatch(text):
            raise Broken(label + "-format",
                         f"{who}: the {big} attribute {text!r} is not exactly four upper-case hex digits")
        found[label] = int(text, 16)
    return found


# ---- pieces of the profiles ----

def extension(cert, oid, rule, who, what):
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        raise Broken(rule, f"{who}: no {what} extension")
    except (x509.DuplicateExtension, ValueError) as e:
        raise Broken(rule, f"{who}: the {what} extension cannot be read ({e})")


def outer_and_inner_algids(cert):
    der = cert.public_bytes(Encoding.DER)
    tag, cs, ce, _ = der_element(der, 0)
    parts = list(der_children(der, cs, ce))
    if len(parts) != 3:
        raise Broken("der", "a Certificate has three parts")
    (_, ts, te, _), (_, _, a_e, a_first), _ = parts
    outer = der[a_first:a_e]
    tbs = list(der_children(der, ts, te))
    i = 1 if tbs and tbs[0][0] == 0xA0 else 0
    if len(tbs) < i + 2:
        raise Broken("der", "a TBSCertificate has a signature field")
    _, _, ie, i_first = tbs[i + 1]
    inner = der[i_first:ie]
    return outer, inner


def require_ecdsa_sha256(cert, rule, who):
    outer, inner = outer_and_inner_algids(cert)
    if outer != ECDSA_SHA256_ALGID or inner != ECDSA_SHA256_ALGID:
        raise Broken(rule, f"{who}: signed with {cert.signature_algorithm_oid.dotted_string}, "
                           "not ecdsa-with-SHA256 (without parameters, in both places)")


def require_p256(cert, rule, who):
    try:
        key = cert.public_key()
    except Exception as e:  # an unknown or malformed key
        raise Broken(rule, f"{who}: the public key cannot be read ({e})")
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise Broken(rule, f"{who}: the public key is not an EC key on P-256 (secp256r1)")


def key_usage_bits(cert, rule, who):
    ext = extension(cert, ExtensionOID.KEY_USAGE, rule, who, "keyUsage")
    if not ext.critical:
        raise Broken(rule, f"{who}: keyUsage is not critical")
    ku = ext.value
    bits = {
        "digitalSignature": ku.digital_signature,
        "nonRepudiation": ku.content_commitment,
        "keyEncipherment": ku.key_encipherment,
        "dataEncipherment": ku.data_encipherment,
        "keyAgreement": ku.key_agreement,
        "keyCertSign": ku.key_cert_sign,
        "cRLSign": ku.crl_sign,
    }
    if ku.key_agreement:
        bits["encipherOnly"] = ku.encipher_only
        bits["decipherOnly"] = ku.decipher_only
    return {name for name, on in bits.items() if on}


def subject_key_id(cert, rule, who):
    ext = extension(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER, rule, who, "subjectKeyIdentifier")
    if ext.critical or len(ext.value.digest) != 20:
        raise Broken(rule, f"{who}: the subjectKeyIdentifier must be non-critical and 20 bytes "
                           f"(is {len(ext.value.digest)} bytes, critical={ext.critical})")
    return ext.value.digest


def validity(cert):
    """(notBefore, notAfter) as naive UTC datetimes, with the library's
    timezone-aware properties where it has them (cryptography >= 42)."""
    if hasattr(cert, "not_valid_before_utc"):
        nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    else:
        nb, na = cert.not_valid_before, cert.not_valid_after
    return nb.replace(tzinfo=None), na.replace(tzinfo=None)


# ---- the three profiles ----

def check_paa(cert):
    who = "PAA"
    if cert.issuer.public_bytes() != cert.subject.public_bytes():
        raise Broken("paa-self-signed", f"{who}: not self-signed: its issuer is not its subject")
    try:
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise InvalidSignature()
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        raise Broken("paa-self-signed", f"{who}: not self-signed: its signature does not verify with its own key")
    require_p256(cert, "paa-key", who)
    require_ecdsa_sha256(cert, "paa-signature-algorithm", who)
    bc = extension(cert, ExtensionOID.BASIC_CONSTRAINTS, "paa-basic-constraints", who, "basicConstraints")
    if not bc.critical or not bc.value.ca:
        raise Broken("paa-basic-constraints", f"{who}: basicConstraints must be critical with cA TRUE")
    bits = key_usage_bits(cert, "paa-key-usage", who)
    if not {"keyCertSign", "cRLSign"} <= bits:
        raise Broken("paa-key-usage", f"{who}: keyUsage must have keyCertSign and cRLSign (has {sorted(bits)})")
    ids = matter_ids(cert, who)
    if "pid" in ids:
        raise Broken("paa-no-pid", f"{who}: a PAA must not carry a PID (it has {ids['pid']:04X})")
    return ids


def check_pai(cert):
    who = "PAI"
    bc = extension(cert, ExtensionOID.BASIC_CONSTRAINTS, "pai-basic-constraints", who, "basicConstraints")
    if not bc.critical or not bc.value.ca or bc.value.path_length != 0:
        raise Broken("pai-basic-constraints",
                     f"{who}: basicConstraints must be critical, cA TRUE, pathLenConstraint 0 "
                     f"(critical={bc.critical}, cA={bc.value.ca}, pathLenConstraint={bc.value.path_length})")
    bits = key_usage_bits(cert, "pai-key-usage", who)
    if not {"keyCertSign", "cRLSign"} <= bits:
        raise Broken("pai-key-usage", f"{who}: keyUsage must have keyCertSign and cRLSign (has {sorted(bits)})")
    subject_key_id(cert, "pai-ski", who)
    require_p256(cert, "pai-key", who)
    require_ecdsa_sha256(cert, "pai-signature-algorithm", who)
    ids = matter_ids(cert, who)
    if "vid" not in ids:
        raise Broken("pai-vid", f"{who}: the subject carries no VID ({OID_VID})")
    return ids


def check_dac(pai, dac):
    who = "DAC"
    try:
        pai_ids = check_pai(pai)
    except Broken as e:
        raise Broken("dac-issuer-is-pai", f"{who}: its issuer is no valid PAI: [{e.rule}] {e.text}")
    require_p256(dac, "dac-key", who)
    require_ecdsa_sha256(dac, "dac-signature-algorithm", who)
    if dac.issuer.public_bytes() != pai.subject.public_bytes():
        raise Broken("dac-issuer", f"{who}: its issuer is not the PAI's subject")
    bc = extension(dac, ExtensionOID.BASIC_CONSTRAINTS, "dac-basic-constraints", who, "basicConstraints")
    if not bc.critical or bc.value.ca:
        raise Broken("dac-basic-constraints",
                     f"{who}: basicConstraints must be critical with cA FALSE "
                     f"(critical={bc.critical}, cA={bc.value.ca})")
    bits = key_usage_bits(dac, "dac-key-usage", who)
    if bits != {"digitalSignature"}:
        raise Broken("dac-key-usage", f"{who}: keyUsage must be exactly digitalSignature (has {sorted(bits)})")
    subject_key_id(dac, "dac-ski", who)
    pai_ski = subject_key_id(pai, "dac-issuer-is-pai", "PAI")
    aki = extension(dac, ExtensionOID.AUTHORITY_KEY_IDENTIFIER, "dac-aki", who, "authorityKeyIdentifier")
    keyid = aki.value.key_identifier
    if aki.critical or keyid is None or len(keyid) != 20:
        raise Broken("dac-aki", f"{who}: the authorityKeyIdentifier must be non-critical with a 20-byte keyIdentifier")
    if keyid != pai_ski:
        raise Broken("dac-aki", f"{who}: the authorityKeyIdentifier is not the PAI's subjectKeyIdentifier")
    ids = matter_ids(dac, who)
    if "vid" not in ids:
        raise Broken("dac-vid", f"{who}: the subject carries no VID ({OID_VID})")
    if ids["vid"] != pai_ids["vid"]:
        raise Broken("dac-vid", f"{who}: VID {ids['vid']:04X} differs from the PAI's VID {pai_ids['vid']:04X}")
    if "pid" not in ids:
        raise Broken("dac-pid", f"{who}: the subject carries no PID ({OID_PID})")
    if "pid" in pai_ids and ids["pid"] != pai_ids["pid"]:
        raise Broken("dac-pid", f"{who}: PID {ids['pid']:04X} differs from the PAI's PID {pai_ids['pid']:04X}")
    nb, na = validity(dac)
    pnb, pna = validity(pai)
    if nb < pnb:
        raise Broken("dac-validity", f"{who}: notBefore {nb} is before the PAI's notBefore {pnb}")
    if na != NO_EXPIRY and na > pna:
        raise Broken("dac-validity",
                     f"{who}: notAfter {na} is after the PAI's notAfter {pna} (and not 99991231235959Z)")
    return ids


# ---- files ----


def load(path):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as e:
        raise Unreadable(f"{path}: {e.strerror}")
    if len(data) > MAX_FILE:
        raise Unreadable(f"{path}: larger than {MAX_FILE} bytes")
    if data.count(b"-----BEGIN CERTIFICATE-----") != 1:
        raise Unreadable(f"{path}: must hold exactly one PEM certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as e:
        raise Unreadable(f"{path}: not a certificate ({e})")


def main(argv):
    usage = "usage: check-dac.py paa PAA.pem | pai PAI.pem | dac PAI.pem DAC.pem"
    if len(argv) < 2 or (argv[1], len(argv)) not in (("paa", 3), ("pai", 3), ("dac", 4)):
        print(usage, file=sys.stderr)
        return 2
    try:
        certs = [load(p) for p in argv[2:]]
    except Unreadable as e:
        print(f"check-dac.py: {e}", file=sys.stderr)
        return 2
    try:
        if argv[1] == "paa":
            ids = check_paa(certs[0])
        elif argv[1] == "pai":
            ids = check_pai(certs[0])
        else:
            ids = check_dac(certs[0], certs[1])
    except Broken as e:
        print(f"FAIL [{e.rule}]: {e.text}", file=sys.stderr)
        return 1
    shown = " ".join(f"{k.upper()}={v:04X}" for k, v in sorted(ids.items()))
    print(f"OK {argv[1].upper()} {shown}".rstrip())
    return 0


if __name__ == "__main__":
    try:
        status = main(sys.argv)
    except Exception as e:  # a bug here, never a verdict: not 0, not 1
        print(f"check-dac.py: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        status = 3
    sys.exit(status)
