#!/usr/bin/python3
"""The GUI never blocks its main loop on our I/O: gui/ does no I/O and no SQL
of its own (issue 4), and reaches station/ only through the _async/_finish
calls of station/st-async.h and a few non-blocking getters.

Reads the symbols that the gui library (argument 1) calls but does not
define, with binutils' nm, and fails naming every call that is not allowed:
the database, the HSM, the backends, the pipeline, SQLite, blocking file and
process calls. A new blocking call in gui/ fails this test before it can
freeze a window on the line."""
import re
import subprocess
import sys

ALLOWED_ST = {
    # non-blocking getters and per-socket requests of the station handle
    "st_station_free", "st_station_get_config", "st_station_hsm_is_open",
    "st_station_line_start_port", "st_station_line_stop_port", "st_station_line_retry_port",
    # values, not I/O
    "st_auth_session_copy", "st_auth_session_free", "st_role_from_string", "st_role_to_string",
    "st_process_setup",
}
ALLOWED_ST_RE = re.compile(r"^st_station_\w+_(async|finish)$|^st_\w+_free$")
FORBIDDEN_RE = re.compile(
    r"^(sqlite3_\w+|PKCS11_\w+|C_\w+|libusb_\w+"
    r"|open|open64|openat|read|write|pread|pread64|pwrite|pwrite64|fsync|fdatasync"
    r"|fopen|fopen64|fread|fwrite|system|popen|tcsetattr|ioctl"
    r"|g_spawn_\w+|g_subprocess_\w+|g_file_get_contents|g_file_set_contents"
    r"|g_file_(?!new_|get_path$|get_uri$|get_basename$|get_parse_name$|get_child$|get_type$|dup$"
    r"|equal$|has_prefix$|hash$|info_|attribute_|error_quark$)\w+)$")


def symbols(args, path):
    out = subprocess.run(["nm", "--format=posix"] + args + [path], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not line.endswith(":"):
            names.add(fields[0].split("@")[0])
    return names


def main():
    lib = sys.argv[1]
    called = symbols(["--undefined-only"], lib) - symbols(["--defined-only"], lib)
    bad = []
    for name in sorted(called):
        if name.startswith("st_"):
            if name not in ALLOWED_ST and not ALLOWED_ST_RE.match(name):
                bad.append(name + " (station/ other than its _async/_finish API)")
        elif FORBIDDEN_RE.match(name) and not re.search(r"_(async|finish)$", name):
            bad.append(name + " (blocking I/O or SQL)")
    ours = sorted(n for n in called if n.startswith("st_station_"))
    print("gui/ calls %d station/ functions, %d symbols in all" % (len(ours), len(called)))
    if bad:
        print("gui/ must not block its main loop; move these into station/st-async.c:")
        for b in bad:
            print("  " + b)
        return 1
    print("ok: no blocking call from gui/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
