# Example product profile for a passive STM32F4 device with no provisioning
# agent: the station makes the key (station-key mode), packs key,
# certificate, CA chain, uid and product serial into the credential blob
# (docs/agent-protocol.md) and writes it through the ROM USART bootloader
# (AN3155, 8E1) into flash sector 3, then reads it back and compares.
# Ports: --port stm32-rom:/dev/ttyUSB0. See programmer/README-stm32-rom.md.

[profile]
name = example-stm32-rom
description = Example STM32F4 sensor, credentials written by the ROM bootloader
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
# A ROM bootloader cannot lock the device: readout protection is a
# separate, later production step.
lock = false

[link]
baud = 115200
timeout-ms = 1000
retries = 3
# Sector 3 of an STM32F40x (16 KiB at 0x0800C000), reserved for credentials
# in the application's linker script.
blob-address = 0x0800C000
blob-area-size = 16384
# The STM32F4 96-bit unique id.
uid-address = 0x1FFF7A10
uid-length = 12

# Optional: a firmware image written (and read back, hashed) before the
# credentials. The address must start a flash sector, and the image's
# sectors must not overlap the credential area.
# [firmware]
# image = /srv/station/firmware/sensor-1.4.2.bin
# address = 0x08010000
# sha256 = 64 hex digits, as sha256sum prints them
