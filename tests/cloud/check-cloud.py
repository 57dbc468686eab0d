#!/usr/bin/env python3
"""Checks the cloud files a station exported next to a manifest, with code
that shares nothing with the station: python3-cryptography for the JWS
entries and the certificates, python3-jsonschema with the schemas in
tests/cloud/schemas (written from the AWS and Azure documentation), and the
openssl command for the PEM files.

check-cloud.py DIR --root ROOT.pem --pin HEX --schemas DIR --active UID,... --left-out UID,...

Prints one line per check passed; exits 1 at the first that fails."""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys

import jsonschema
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg)


def b64url_decode(s):
    if not isinstance(s, str) or any(c in s for c in "+/="):
        fail("not base64url without padding: %r" % (s,))
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def pem_certs(text):
    out, cur = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            cur = line
        elif cur is not None:
            cur += line
            if line.startswith("-----END CERTIFICATE-----"):
                out.append(cur)
                cur = None
    return out


def schema(args, name):
    with open(os.path.join(args.schemas, name)) as f:
        s = json.load(f)
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def validate(validator, instance, what):
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        fail("%s does not fit its schema: %s at %s" % (what, errors[0].message, list(errors[0].path)))


def openssl_verify(root, untrusted, cert):
    r = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", untrusted, cert],
                       capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip().endswith("OK"):
        fail("openssl verify %s: %s%s" % (cert, r.stdout, r.stderr))


def uid_in_cert(cert, uid):
    names = [a.value for a in cert.subject if a.oid == x509.NameOID.COMMON_NAME]
    return names == [uid]


def check_jws(args, d, active, issuing):
    entries = json.loads(read(os.path.join(d, "jws", "entries.json")))
    entries_schema = schema(args, "jws-entries.schema.json")
    validate(entries_schema, entries, "jws/entries.json")
    defs = entries_schema.schema["$defs"]

    def part(name):
        # the decoded parts against their definitions in the same document
        return jsonschema.Draft202012Validator({"$schema": entries_schema.schema["$schema"],
                                                "$defs": defs, "$ref": "#/$defs/" + name})
    seen = set()
    for e in entries:
        if not {"protected", "payload", "signature"} <= set(e) or not set(e) <= {"protected", "payload", "signature", "header"}:
            fail("a JWS entry is not a flattened JWS (RFC 7515 7.2.2): %r" % sorted(e))
        try:
            header = json.loads(b64url_decode(e["protected"]))
            payload = json.loads(b64url_decode(e["payload"]))
        except ValueError as err:
            fail("a JWS entry's protected header or payload is not JSON: %s" % err)
        validate(part("protected"), header, "a JWS protected header")
        validate(part("payload"), payload, "a JWS payload")
        if e.get("header", {}).get("uniqueId", payload["uniqueId"]) != payload["uniqueId"]:
            fail("the unprotected uniqueId differs from the signed one")
        alg = header.get("alg")
        if alg not in ("ES256", "ES384") or header.get("typ") != "JWT":
            fail("protected header %r" % header)
        keys = payload["publicKeySet"]["keys"]
        if payload.get("version") != 1 or len(keys) != 1:
            fail("payload %r" % payload)
        jwk = keys[0]
        x5c = jwk["x5c"]
        if len(x5c) != 2:
            fail("x5c is not [device, signer]")
        device = x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True))
        signer_der = base64.b64decode(x5c[1], validate=True)
        signer = x509.load_der_x509_certificate(signer_der)
        # the signer is the station's pinned signer
        spki = signer.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        if hashlib.sha256(spki).hexdigest() != args.pin.lower():
            fail("the JWS signer's key is not the pinned station signer")
        ski = signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        if header.get("kid") != b64url(ski):
            fail("kid is not the signer's SKI")
        if header.get("x5t#S256") != b64url(hashlib.sha256(signer_der).digest()):
            fail("x5t#S256 is not the SHA-256 of the signer certificate")
        # the signature: raw r||s over protected.payload
        raw = b64url_decode(e["signature"])
        half, h = (32, hashes.SHA256()) if alg == "ES256" else (48, hashes.SHA384())
        if len(raw) != 2 * half:
            fail("the signature is %d bytes, not %d (raw r||s)" % (len(raw), 2 * half))
        der = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
        signing_input = (e["protected"] + "." + e["payload"]).encode()
        try:
            signer.public_key().verify(der, signing_input, ec.ECDSA(h))
        except InvalidSignature:
            fail("the JWS of %s does not verify" % payload.get("uniqueId"))
        # a payload changed by one field must not verify
        forged = dict(payload, uniqueId=payload["uniqueId"] + "0")
        forged_input = (e["protected"] + "." + b64url(json.dumps(forged).encode())).encode()
        try:
            signer.public_key().verify(der, forged_input, ec.ECDSA(h))
            fail("a tampered payload verifies")
        except InvalidSignature:
            pass
        # the JWK is the device certificate's key, the device the uid
        pub = device.public_key()
        if isinstance(pub, ec.EllipticCurvePublicKey):
            size = (pub.curve.key_size + 7) // 8
            n = pub.public_numbers()
            if jwk.get("kty") != "EC" or b64url_decode(jwk["x"]) != n.x.to_bytes(size, "big") \
               or b64url_decode(jwk["y"]) != n.y.to_bytes(size, "big"):
                fail("the JWK is not the device certificate's key")
        elif isinstance(pub, ed25519.Ed25519PublicKey):
            if jwk.get("kty") != "OKP" or b64url_decode(jwk["x"]) != pub.public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw):
                fail("the JWK is not the device certificate's key")
        else:
            fail("unexpected device key type")
        uid = payload["uniqueId"]
        if not uid_in_cert(device, uid):
            fail("uniqueId %s is not the device certificate's CN" % uid)
        if device.issuer != issuing.subject:
            fail("the device certificate of %s is not issued by the issuing CA" % uid)
        issuing.public_key().verify(device.signature, device.tbs_certificate_bytes,
                                    ec.ECDSA(device.signature_hash_algorithm))
        seen.add(uid)
    if seen != active:
        fail("jws entries for %s, expected %s" % (sorted(seen), sorted(active)))
    ok("jws: %d entries verify (signer pinned, kid, x5t#S256, raw r||s, JWK = device key), "
       "tampered payloads fail" % len(entries))


def check_aws(args, d, active, issuing_pem, cert_pem_of):
    line_schema = schema(args, "aws-bulk-registration-line.schema.json")
    template_schema = schema(args, "aws-provisioning-template.schema.json")
    template_bytes = read(os.path.join(d, "aws", "provisioning-template.json"))
    if len(template_bytes) > 10240:
        fail("the template is longer than StartThingRegistrationTask's 10240")
    template = json.loads(template_bytes)
    validate(template_schema, template, "aws/provisioning-template.json")
    params = set(template["Parameters"])
    required = {k for k, v in template["Parameters"].items() if "Default" not in v}
    things = set()
    with open(os.path.join(d, "aws", "bulk-registration.ndjson"), "rb") as f:
        for raw in f:
            line = json.loads(raw)
            validate(line_schema, line, "a line of aws/bulk-registration.ndjson")
            if set(line) != params or not required <= set(line):
                fail("a line's keys %s are not the template's parameters %s" % (sorted(line), sorted(params)))
            if line["CACertificatePem"] != issuing_pem:
                fail("CACertificatePem is not the issuing CA")
            if line["CertificatePem"] != cert_pem_of[line["ThingName"]]:
                fail("CertificatePem of %s is not its certificate" % line["ThingName"])
            things.add(line["ThingName"])
    if things != active:
        fail("aws lines for %s, expected %s" % (sorted(things), sorted(active)))
    ok("aws: %d lines fit the schema and the template's parameters %s" % (len(things), sorted(params)))


def check_azure(args, d, active, issuing_pem, cn_of):
    group = json.loads(read(os.path.join(d, "azure", "enrollment-group.json")))
    validate(schema(args, "azure-enrollment-group.schema.json"), group, "azure/enrollment-group.json")
    if group["attestation"]["x509"]["signingCertificates"]["primary"]["certificate"] != issuing_pem:
        fail("the enrollment group's signing certificate is not the issuing CA")
    ids = read(os.path.join(d, "azure", "registration-ids.txt")).decode().split("\n")
    if ids[-1] != "":
        fail("registration-ids.txt does not end with a newline")
    ids = set(ids[:-1])
    if ids != {cn_of[u] for u in active}:
        fail("registration ids %s, expected %s" % (sorted(ids), sorted(cn_of[u] for u in active)))
    ok("azure: the enrollment group fits the schema; %d registration ids" % len(ids))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--root", required=True)
    p.add_argument("--pin", required=True)
    p.add_argument("--schemas", required=True)
    p.add_argument("--active", required=True)
    p.add_argument("--left-out", default="")
    args = p.parse_args()
    d = args.dir
    active = set(u for u in args.active.split(",") if u)
    left_out = set(u for u in args.left_out.split(",") if u)

    chain = pem_certs(read(os.path.join(d, "ca-chain.pem")).decode())
    issuing_pem = chain[0]
    issuing = x509.load_pem_x509_certificate(issuing_pem.encode())

    # certs/: exactly the active units, each verifying to the root
    names = set(os.listdir(os.path.join(d, "certs")))
    if names != {u + ".pem" for u in active}:
        fail("certs/ holds %s, expected %s" % (sorted(names), sorted(u + ".pem" for u in active)))
    cert_pem_of, cn_of = {}, {}
    for u in sorted(active):
        path = os.path.join(d, "certs", u + ".pem")
        certs = pem_certs(read(path).decode())
        if certs[1:] != chain[:-1]:
            fail("%s: the chain after the device certificate is not issuing CA .. below the root" % path)
        openssl_verify(args.root, path, path)
        c = x509.load_pem_x509_certificate(certs[0].encode())
        if not uid_in_cert(c, u):
            fail("%s is not the certificate of %s" % (path, u))
        cert_pem_of[u] = certs[0]
        cn_of[u] = c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    ok("certs: %d files, each verifies with openssl to the root" % len(names))

    check_aws(args, d, active, issuing_pem, cert_pem_of)
    check_azure(args, d, active, issuing_pem, cn_of)
    check_jws(args, d, active, issuing)

    # the units left out appear in no file the clouds import
    for folder in ("aws", "azure", "certs", "jws"):
        for name in os.listdir(os.path.join(d, folder)):
            if name == "rejected.txt":
                continue
            data = read(os.path.join(d, folder, name))
            for u in left_out:
                if u.encode() in data:
                    fail("%s/%s names the left-out unit %s" % (folder, name, u))
    report = read(os.path.join(d, "cloud-report.txt")).decode()
    for u in left_out:
        if u not in report:
            fail("cloud-report.txt does not name the left-out unit %s" % u)
    ok("left out: %s, named in cloud-report.txt and in no imported file" % sorted(left_out))


if __name__ == "__main__":
    main()
