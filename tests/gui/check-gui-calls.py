#!/usr/bin/python3
"""The GUI never blocks its main loop on our I/O: gui/ does no I/O and no SQL
of its own (issue 4), and reaches the station service only through the
_async/_finish calls of station/st-client.h, a few non-blocking getters and
fire-and-forget requests, and the values of station/st-api.h. It is a
client: nothing of the engine, the database, the HSM or the programmer.

Reads the symbols that the gui library (argument 1) calls but does not
define, with binutils' nm, and fails naming every call that is not allowed:
the database, the HSM, the backends, the pipeline, SQLite, blocking file and
process calls. A new blocking call in gui/ fails this test before it can
freeze a window on the line.

With the station-gui executable as argument 2, also checks what it is made
of: nothing of the engine, the service, the unit pipeline or the device
protocol in it, and no USB or SoftHSM library among what it loads (ldd).

Issue 17: the QA view verifies a manifest against a root QA chose in the
GUI's own process (station/st-manifest-offline.h, a worker thread; no
service, no database), as `station manifest verify --root` does, so
station-gui links the station library for that one call: the manifest
verifier's objects bring the database's and the HSM's code (and SQLite,
libp11, json-glib) with them. gui/ calls none of it (the check of the
library above); what keeps the GUI's user from the token and the database
is their owner and mode (docs/architecture.md, "Who can read what")."""
import re
import subprocess
import sys

ALLOWED_ST = {
    # non-blocking getters of the station handle (the proxy's cached
    # properties), its proxy for signals, and fire-and-forget requests
    "st_station_free", "st_station_get_idle_logout", "st_station_hsm_is_open",
    "st_station_get_proxy", "st_dbus_station1_get_running_batch", "st_dbus_station1_get_type",
    "st_station_line_start_port", "st_station_line_stop_port", "st_station_line_retry_port",
    "st_station_logout",
    # where the service is (reads the environment), and values, not I/O
    "st_client_target_from_env",
    "st_auth_session_copy", "st_auth_session_free", "st_role_from_string", "st_role_to_string",
    "st_unit_result_from_variant", "st_dict_get_string", "st_error_quark",
    "st_process_setup", "st_text_escape",
    # issue 17: a manifest verified against a root QA chose, in a worker
    # thread of the GUI's process (st-manifest-offline.h)
    "st_manifest_verify_offline_async", "st_manifest_verify_offline_finish",
}
ALLOWED_ST_RE = re.compile(r"^st_station_\w+_(async|finish)$|^st_\w+_free$")
FORBIDDEN_RE = re.compile(
    r"^(sqlite3_\w+|PKCS11_\w+|st_db_\w+|st_engine_\w+|st_hsm_\w+|st_ca_\w+|st_line_\w+"
    r"|st_client_connect|st_dbus_station1_call_\w+_sync|st_dbus_station1_\w+_proxy_new_sync|C_\w+|libusb_\w+"
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


ENGINE_SYMBOL_RE = re.compile(r"^(st_engine_|st_line_run|st_unit_run|st_prog_|st_agent_|st_service_"
                              r"|st_line_recover|st_batch_run|st_batch_control_)")
ENGINE_LIB_RE = re.compile(r"softhsm|libusb")


def check_executable(exe):
    bad = sorted(n for n in symbols([], exe) if ENGINE_SYMBOL_RE.match(n))
    libs = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout
    bad += ["loads " + line.split()[0] for line in libs.splitlines() if ENGINE_LIB_RE.search(line)]
    if bad:
        print("%s is a client of the service: it must not hold the engine, the service, the pipeline or "
              "the device protocol:" % exe)
        for b in bad[:40]:
            print("  " + b)
        return 1
    print("ok: %s holds no engine, service, pipeline or device protocol code" % exe)
    return 0


def main():
    lib = sys.argv[1]
    if len(sys.argv) > 2 and check_executable(sys.argv[2]) != 0:
        return 1
    called = symbols(["--undefined-only"], lib) - symbols(["--defined-only"], lib)
    bad = []
    for name in sorted(called):
        if FORBIDDEN_RE.match(name) and not re.search(r"_(async|finish)$", name):
            bad.append(name + " (the engine, the database, the HSM, or a blocking call)")
        elif name.startswith("st_"):
            if name not in ALLOWED_ST and not ALLOWED_ST_RE.match(name):
                bad.append(name + " (station/ other than its _async/_finish API)")

    ours = sorted(n for n in called if n.startswith("st_station_"))
    print("gui/ calls %d station/ functions, %d symbols in all" % (len(ours), len(called)))
    if bad:
        print("gui/ must not block its main loop nor reach past the service; move these into "
              "station/st-client.c (an _async/_finish call) or the service:")
        for b in bad:
            print("  " + b)
        return 1
    print("ok: no blocking call from gui/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
