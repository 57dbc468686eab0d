# Example product profile: the station makes the key and sends it to the
# device with PUT_KEY; the certificate never expires (IEEE 802.1AR style).
# Set lock = true for production: a locked device refuses re-provisioning.
# See docs/profiles.md.

[profile]
name = example-station-key
description = Example gateway, station-generated P-256 key, no expiry

[key]
mode = station-key
algorithm = ec-p256

[certificate]
subject = CN={uid},OU=Gateways,O=Example Devices Ltd,C=GB
san = URI:urn:example:device:{uid};DNS:{uid}.devices.example.com
validity = no-expiry
key-usage = digitalSignature
extended-key-usage = clientAuth;serverAuth

[serial]
format = GW{yyyy}{mm}{dd}-{seq:05}

[device]
lock = false
