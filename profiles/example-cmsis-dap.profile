# Example product profile for a passive STM32F4 device with no provisioning
# agent, reached over SWD through a CMSIS-DAP v2 probe: the station makes
# the key (station-key mode), packs key, certificate, CA chain, uid and
# product serial into the credential blob (docs/agent-protocol.md), writes
# it through the STM32F4 flash controller into flash sector 3, then reads it
# back and compares. Ports: --port cmsis-dap:PROBE-SERIAL (one per probe;
# cmsis-dap: alone takes the only probe connected). See
# programmer/README-cmsis-dap.md.

[profile]
name = example-cmsis-dap
description = Example STM32F4 sensor, credentials written over SWD
model = STM32 PID 0x0413

[key]
mode = station-key
algorithm = ec-p256

[certificate]
subject = CN={uid},OU=Sensors,O=Example Devices Ltd
san = URI:urn:example:device:{uid}
validity = no-expiry
key-usage = digitalSignature
extended-key-usage = clientAuth

[serial]
format = F4-{yy}{mm}-{seq:06}

[device]
# The backend does not set readout protection (the option bytes): that is
# a separate, later production step.
lock = false

[link]
# Per USB transfer with the probe.
timeout-ms = 1000
retries = 3
# Sector 3 of an STM32F40x (16 KiB at 0x0800C000), reserved for credentials
# in the application's linker script.
blob-address = 0x0800C000
blob-area-size = 16384
# The STM32F4 96-bit unique id.
uid-address = 0x1FFF7A10
uid-length = 12
# Optional: reset the core after the credentials are stored, so that the
# application starts (docs/profiles.md).
# go-address = 0x08000000

# Optional: a firmware image written (and read back, hashed) before the
# credentials. The address must start a flash sector, and the image's
# sectors must not overlap the credential area.
# [firmware]
# image = /srv/station/firmware/sensor-1.4.2.bin
# address = 0x08010000
# sha256 = 64 hex digits, as sha256sum prints them
