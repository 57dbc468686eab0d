# Example product profile: the device makes its own key (KEYGEN) and answers
# with a CSR; the station certifies it for ten years. See docs/profiles.md.

[profile]
name = example-device-csr
description = Example sensor node, device-generated P-256 key
# The model string the device reports in HELLO; when set, devices that
# report another model are refused. Left open here so that any agent device
# (the simulator reports SIM-DEV-1) can be provisioned.
#model = EX-SENSOR-1

[key]
mode = device-csr
algorithm = ec-p256

[certificate]
# RFC 4514 order: the most specific attribute (CN) first.
subject = CN={uid},O=Example Devices Ltd,serialNumber={serial}
san = URI:urn:example:device:{uid}
validity-days = 3650
backdate-minutes = 60
key-usage = digitalSignature;keyAgreement
extended-key-usage = clientAuth

[serial]
format = EX-{yy}{mm}-{seq:06}

[device]
lock = false

[link]
baud = 115200
timeout-ms = 1000
keygen-timeout-ms = 30000
commit-timeout-ms = 10000
retries = 3
