# Example Matter product profile: the device makes its DAC key in its own
# chip (KEYGEN) and answers with a CSR; the station's issuing CA, a Matter
# PAI, signs its Device Attestation Certificate. The DAC key never leaves
# the device. See docs/matter.md and docs/profiles.md ("A Matter product").
#
# It needs a Matter station: 'make matter-demo' or 'station setup demo
# --matter' (a test PAA and PAI of VID FFF1), or a key ceremony with
# 'ca init --matter-vid'. A plain
# station's CA is no PAI, and 'batch create' refuses this profile there.

[profile]
name = example-matter
description = Example Matter lamp (test vendor FFF1, product 8000), device-generated DAC key

[key]
mode = device-csr
# a DAC's key is P-256 (Matter Core spec 6.2.2.3)
algorithm = ec-p256

[certificate]
# The DAC's subject: a CN of the unit; the station adds the VID and PID
# from [matter] after it, each in an RDN of its own.
subject = CN=Example Lamp DAC {uid}
# A DAC may never expire (notAfter 99991231235959Z, RFC 5280 4.1.2.5); a
# validity in days would have to end inside the PAI's.
validity = no-expiry
key-usage = digitalSignature

[serial]
format = ML-{yy}{mm}-{seq:06}

[device]
lock = false

[matter]
vendor-id = FFF1
product-id = 8000
# Sequential within 3840-3855: neighbouring units on the bench advertise
# different discriminators, and the range is 16 values, one upper nibble
# (0xF), so every unit has the same short discriminator in its manual code.
discriminator = sequential
discriminator-range = 3840-3855
passcode = random
# 10000 PBKDF2 iterations: the default, well inside 1000-100000; the
# device computes nothing with it (it stores the verifier), the
# commissioner runs it once per pairing.
pbkdf2-iterations = 10000
salt-length = 32
# The test Certification Declaration of 'setup demo --matter', in the home
# that 'make matter-demo' makes (relative to the working directory of the
# service, the repository's when make starts it); in production the file
# the CSA issued, by its absolute path.
certification-declaration = matter-demo-home/matter/cd-FFF1-8000.der
