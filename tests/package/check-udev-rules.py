#!/usr/bin/python3
"""A syntax check of udev rules for systems whose udevadm has no 'verify'
(before systemd 253, e.g. Debian 12): every line is a comma-separated list
of KEY{attr}OP"value" pairs with keys and operators udev(7) knows, every
GOTO has its LABEL further down, and, for 60-station.rules, every device
goes to the group station with mode 0660 and none to the desktop user."""
import re
import sys

MATCH_ONLY = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM",
              "SUBSYSTEMS", "DRIVER", "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST",
              "TAG", "TAGS", "TEST", "PROGRAM", "RESULT", "OWNER", "GROUP", "MODE",
              "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS", "SYSCTL"}
ASSIGN_KEYS = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL",
               "ENV", "TAG", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS", "PROGRAM"}
WITH_ATTR = {"ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TEST", "SECLABEL", "RUN", "IMPORT"}
PAIR = re.compile(r'\s*([A-Z]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def check(path):
    errors = []
    labels_after = {}
    gotos = []
    assigned = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.endswith("\\"):
            errors.append(f"{path}:{no}: continuation lines are not used here")
            continue
        pos, pairs = 0, []
        while pos < len(text):
            m = PAIR.match(text, pos)
            if m is None:
                errors.append(f"{path}:{no}: cannot parse at column {pos + 1}: {text[pos:]!r}")
                break
            pairs.append(m.groups()[:4])
            pos = m.end()
        for key, attr, op, value in pairs:
            if key not in MATCH_ONLY:
                errors.append(f"{path}:{no}: unknown key {key}")
            is_match = op in ("==", "!=")
            if not is_match and key not in ASSIGN_KEYS:
                errors.append(f"{path}:{no}: {key} cannot be assigned")
            if key in WITH_ATTR and attr is None and key not in ("RUN", "IMPORT", "SECLABEL", "TEST"):
                errors.append(f"{path}:{no}: {key} needs {{attribute}}")
            if key == "LABEL":
                labels_after[value] = no
            elif key == "GOTO":
                gotos.append((no, value))
            elif key in ("GROUP", "MODE", "OWNER") and not is_match:
                assigned.append((no, key, value))
            elif key == "TAG" and value == "uaccess":
                errors.append(f"{path}:{no}: TAG+=\"uaccess\" gives the device to the desktop user")
            elif key == "MODE" and not re.fullmatch(r"0?[0-7]{3}", value):
                errors.append(f"{path}:{no}: MODE {value!r} is not octal")
    for no, target in gotos:
        if target not in labels_after or labels_after[target] < no:
            errors.append(f"{path}:{no}: GOTO=\"{target}\" has no LABEL after it")
    if path.endswith("60-station.rules"):
        for no, key, value in assigned:
            want = {"GROUP": "station", "MODE": "0660"}.get(key)
            if want is None or value != want:
                errors.append(f"{path}:{no}: {key}=\"{value}\" (the line's devices are "
                              "GROUP=\"station\", MODE=\"0660\")")
        if not assigned:
            errors.append(f"{path}: assigns no group")
    return errors


if __name__ == "__main__":
    errs = [e for p in sys.argv[1:] for e in check(p)]
    for e in errs:
        print(e)
    if not errs:
        print("ok:", " ".join(sys.argv[1:]))
    sys.exit(1 if errs else 0)
