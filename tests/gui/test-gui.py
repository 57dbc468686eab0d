#!/usr/bin/python3
"""station-gui end to end, as the line uses it, in a real X server.

Xvfb + a private D-Bus session + AT-SPI; dogtail drives the GUI through its
accessible names. The GUI is a client of a real service: `stationd --home
HOME` serves a fresh demo station (SoftHSM2 token) that the CLI sets up
(the HSM PIN in that one command's environment); station-gui starts
without any HSM PIN, and its environment and command line are checked to
hold none. station-devsim sockets on pseudo-terminals (sockets 2 and 3 are
symbolic links, so that a test can put another device -- or none -- behind
them):

  lead     logs in, creates two batches (profile picker, work order,
           quantity), and the search filter shows only the one asked for
  operator the station is still locked: starting the line shows the
           service's refusal, which says an admin unlocks it
  admin    sees the HSM locked in the admin view; a wrong HSM PIN is
           refused; the right one unlocks it (the state label follows)
  CLI      a line started with `station batch run` (a third batch) shows in
           the line view of a logged-in operator: the service's signals
  operator logs in with the keyboard, cannot see the lead's views or actions,
           scans the work order, starts all three sockets and sees all PASS;
           then a second batch: a faulty device fails on socket 3 with its
           reason and what to do, socket 1 alone is stopped while the line
           goes on, retrying socket 3 runs its device again without touching
           socket 2, which then passes a device put in late
  lead     closes the first batch, filters by state, exports the manifest
           to a folder, then to a removable drive mounted under /media
           while the view is open (root only), which leaves the list
           when unmounted
  QA       verifies a flashed unit put back into a socket, and the manifest
  admin    sees the station's health; adds an operator, who is locked after
           five wrong PINs; unlocks them and makes them a lead
  operator runs a unit and closes the window: the ask-before-close dialog,
           "Keep running", then "Stop the line": the process exits cleanly
           (with LeakSanitizer on) and the records are consistent
  idle     the service restarted with idle-logout-s=3 and unlocked with the
           CLI (`station unlock`); a second GUI logs the user out by itself

Screenshots of every view go to $ST_SCREENSHOT_DIR (test artifacts), and
also to $ST_GUI_SCREENSHOTS_TO when set (make gui-screenshots: docs/).
Exit 77 (meson: skipped) only when the X/AT-SPI stack cannot start.
"""
import json
import os
import re
import shutil
import sqlite3
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
HSM_PIN = "123456"
PINS = {"op": "1111", "lead": "2222", "qa": "3333", "admin": "4444"}
NEW_OP, NEW_PIN = "op2", "5555"
procs = []


def log(*args):
    print("gui-test:", *args, flush=True)


def skip(reason):
    print("SKIP: " + reason, flush=True)
    sys.exit(SKIP)


def need(path_or_name):
    found = shutil.which(path_or_name)
    if found is None:
        skip("%s is not installed (make test-deps installs it)" % path_or_name)
    return found


def start(args, env=None, stdout=subprocess.DEVNULL, stdin=None, stderr=None):
    p = subprocess.Popen(args, env=env, stdout=stdout, stdin=stdin, stderr=stderr)
    procs.append(p)
    return p


def cleanup():
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_x_and_dbus(tmp):
    xvfb = need("Xvfb")
    dbus = need("dbus-daemon")
    if not os.path.exists("/usr/libexec/at-spi-bus-launcher"):
        skip("at-spi2-core is not installed (no /usr/libexec/at-spi-bus-launcher)")
    r, w = os.pipe()
    x = subprocess.Popen([xvfb, "-displayfd", str(w), "-screen", "0", "1280x860x24", "-nolisten", "tcp",
                          "-noreset"], pass_fds=(w,), stderr=subprocess.DEVNULL)
    procs.append(x)
    os.close(w)
    with os.fdopen(r) as f:
        display = f.readline().strip()
    if not display:
        skip("Xvfb did not start (exit %s)" % x.poll())
    os.environ["DISPLAY"] = ":" + display
    d = subprocess.Popen([dbus, "--session", "--nofork", "--print-address=1"], stdout=subprocess.PIPE,
                         text=True)
    procs.append(d)
    address = d.stdout.readline().strip()
    if not address:
        skip("the D-Bus session bus did not start")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    os.environ.pop("NO_AT_BRIDGE", None)
    os.environ["GTK_A11Y"] = "atk"
    os.environ["GSETTINGS_BACKEND"] = "memory"
    os.environ["XDG_RUNTIME_DIR"] = os.path.join(tmp, "run")
    os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
    log("X on %s, D-Bus at %s" % (os.environ["DISPLAY"], address))


def screenshot(name):
    out_dir = os.environ.get("ST_SCREENSHOT_DIR", os.getcwd())
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name + ".png")
    subprocess.run([need("import"), "-window", "root", path], check=True)
    log("screenshot", path)
    docs = os.environ.get("ST_GUI_SCREENSHOTS_TO")
    if docs:
        os.makedirs(docs, exist_ok=True)
        shutil.copy(path, os.path.join(docs, name + ".png"))


def start_devsim(tmp, n, *extra, seed=None):
    devsim = os.environ["ST_DEVSIM"]
    state = os.path.join(tmp, "socket-%d.json" % n)
    seed = 4000 + n if seed is None else seed
    p = start([devsim, "--units", "1", "--seed", str(seed), "--state", state, "--exit-on-stdin-eof"]
              + list(extra), stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    port = p.stdout.readline().decode().strip()
    assert port.startswith("/dev/"), "station-devsim printed no port: %r" % port
    return p, port, state


def main():
    if not os.path.exists(os.environ.get("ST_STATION_GUI", "")):
        print("ST_STATION_GUI is not set: run through meson test", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="station-gui-test-")
    try:
        return run(tmp)
    except BaseException:
        print("stationd's log (the end):\n" + service_log(tmp), file=sys.stderr)
        raise
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def relink(link, target):
    """Puts another device (or, with None, no device) behind a socket."""
    tmp_link = link + ".new"
    if target is None:
        if os.path.lexists(link):
            os.unlink(link)
        return
    os.symlink(target, tmp_link)
    os.replace(tmp_link, link)


def export_to_drive(wo, find, wait_text, wait_for, export_and_check):
    """A USB stick as a station without udisks has it: a plain mount under
    /media (here a small tmpfs, which the unix volume monitor alone would
    hide). It shows up in the open Batches view, takes the manifest, and
    goes away when unmounted. Needs root to mount; skipped (this part only)
    otherwise."""
    name = "st-gui-test-%d" % os.getpid()
    media = os.path.join("/media", name)
    if os.geteuid() != 0:
        log("SKIP removable drive: mounting %s needs root" % media)
        return
    os.makedirs(media, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", name, media],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        os.rmdir(media)
        log("SKIP removable drive: cannot mount a tmpfs at %s: %s" % (media, r.stderr.strip()))
        return
    mounted = True
    started = time.time()
    try:
        label = "%s (%s)" % (name, media)
        combo = find("Removable drive", "combo box")
        wait_for(lambda: combo.sensitive, 20, "the drive list offers " + media)
        combo.click()

        def offered():
            items = [n for n in combo.findChildren(lambda n: n.roleName == "menu item" and n.showing
                                                   and n.name.startswith(label), recursive=True)]
            return items[0] if items and items[0].name.endswith(" free") else None
        item = wait_for(offered, 20, "the drive list shows %r with its free space" % label)
        log("drive offered:", item.name)
        item.click()
        out = os.path.join(media, "manifest-" + wo)
        wait_text("Export folder", lambda t: t == out, 10, out)
        export_and_check(out)
        wait_for(lambda: [n for n in combo.findChildren(lambda n: n.roleName == "menu item"
                                                        and n.name.startswith(label) and n.name.endswith(" free"),
                                                        recursive=True)], 10, "the drive's free space after the export")
        screenshot("batches-drive")
        subprocess.run(["umount", media], check=True)
        mounted = False
        wait_text("Batches status", lambda t: t.startswith("The drive at %s was removed" % media), 20,
                  "the removal told")
        assert find("Export folder", "text").text == "", "the export folder still points at the removed drive"
        assert not [n for n in combo.findChildren(lambda n: n.roleName == "menu item" and n.name.startswith(label),
                                                  recursive=True)], "the removed drive is still listed"
        log("removable drive: offered, exported to, verified, gone in %.1f s" % (time.time() - started))
    finally:
        if mounted:
            subprocess.run(["umount", "-l", media], stderr=subprocess.DEVNULL)
        try:
            os.rmdir(media)
        except OSError as e:
            log("cannot remove %s: %s" % (media, e))


def lsan_env(tmp, env):
    """LeakSanitizer on for the GUI, with the project's suppressions plus
    tests/gui/lsan-gui.supp (GTK, GLib, fontconfig, pango... internals)."""
    here = os.path.dirname(os.path.abspath(__file__))
    supp = os.path.join(tmp, "lsan-gui.supp")
    with open(supp, "w") as out:
        for f in (os.path.join(here, "..", "lsan.supp"), os.path.join(here, "lsan-gui.supp")):
            with open(f) as src:
                out.write(src.read() + "\n")
    env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % supp
    if "detect_leaks=0" in env.get("ASAN_OPTIONS", ""):
        env["ASAN_OPTIONS"] = env["ASAN_OPTIONS"].replace("detect_leaks=0", "detect_leaks=1")
    env.pop("G_DEBUG", None)
    return env


def start_service(tmp, home, env):
    """stationd --home HOME: the private service of HOME, at HOME/stationd.sock."""
    sock = os.path.join(home, "stationd.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    logf = open(os.path.join(tmp, "stationd.log"), "ab")
    p = start([os.environ["ST_STATIOND"], "--home", home], env=env, stderr=logf)
    logf.close()
    for _ in range(300):
        if p.poll() is not None:
            raise AssertionError("stationd exited with %s: %s" % (p.returncode, service_log(tmp)))
        if os.path.exists(sock):
            log("stationd %d serves %s" % (p.pid, home))
            return p
        time.sleep(0.1)
    raise AssertionError("stationd made no %s in 30 s" % sock)


def stop_service(tmp, p):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("stationd did not stop on SIGTERM")
    assert rc == 0, "stationd exited with %d on SIGTERM: %s" % (rc, service_log(tmp))


def service_log(tmp):
    try:
        with open(os.path.join(tmp, "stationd.log"), errors="replace") as f:
            return f.read()[-4000:]
    except OSError:
        return "(no log)"


def check_no_pin(pid):
    """Neither the environment nor the command line of the GUI process holds
    the HSM PIN (nor a variable meant for it)."""
    with open("/proc/%d/environ" % pid, "rb") as f:
        environ = f.read().split(b"\0")
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        cmdline = f.read().split(b"\0")
    names = [e.split(b"=", 1)[0] for e in environ if e]
    assert b"STATION_HSM_PIN" not in names, "station-gui's environment has STATION_HSM_PIN"
    for where, items in (("environment", environ), ("command line", cmdline)):
        for item in items:
            assert HSM_PIN.encode() not in item, "station-gui's %s holds the HSM PIN: %r" % (where, item)
    log("station-gui %d: no HSM PIN in its environment (%d variables) or command line" % (pid, len(names)))


def start_gui(home, ports, gui_env, tree, stderr=None):
    gui = start([os.environ["ST_STATION_GUI"], "--home", home] + sum([["--port", p] for p in ports], []),
                env=gui_env, stderr=stderr)
    for _ in range(120):
        if gui.poll() is not None:
            raise AssertionError("station-gui exited with %s" % gui.returncode)
        try:
            app = tree.root.application("station-gui")
        except Exception:
            time.sleep(0.5)
            continue
        check_no_pin(gui.pid)  # now that it runs (not between fork and exec)
        return gui, app
    skip("station-gui never showed up on the AT-SPI bus (accessibility bridge not running)")


def start_dogtail():
    try:
        from dogtail.config import config
        config.checkForA11y = False
        config.searchCutoffCount = 10
        config.defaultDelay = 0.3
        config.logDebugToFile = False
        from dogtail import tree, rawinput
    except Exception as e:  # the AT-SPI stack itself
        skip("dogtail/AT-SPI cannot start: %s" % e)
    return tree, rawinput


def gui_figures(path):
    """What station-gui printed (STATION_GUI_STALL_REPORT): its figures and
    the longest main-loop pause of each phase (marked with SIGUSR1)."""
    with open(path, errors="replace") as f:
        text = f.read()
    figures = {}  # what -> every figure printed for it
    for m in re.finditer(r"^station-gui: figure: (.*): (\d+) ms", text, re.M):
        figures.setdefault(m.group(1), []).append(float(m.group(2)))
    marks = [(float(m.group(1)), float(m.group(2)))
             for m in re.finditer(r"^station-gui: main loop: mark \d+: the longest pause between 20 ms ticks "
                                  r"(\d+) ms, .*the most CPU the main thread spent between two ticks "
                                  r"([\d.]+) ms", text, re.M)]
    return figures, marks


def wait_mark(gui, path, n, timeout=30):
    """Ends a phase: SIGUSR1 makes station-gui print the longest main-loop
    pause since the previous mark, and the most CPU its main thread spent
    between two ticks (the pause the GUI makes itself, whatever the load);
    returns both (ms)."""
    gui.send_signal(signal.SIGUSR1)
    end = time.time() + timeout
    while time.time() < end:
        marks = gui_figures(path)[1]
        if len(marks) >= n:
            return marks[n - 1]
        time.sleep(0.1)
    raise AssertionError("station-gui printed no mark %d in %d s" % (n, timeout))


def start_large_home(tmp, env, units):
    """A second demo station, for the large-database part: its service
    sets it up and stops, then st-gen-db appends a batch of @units
    generated units to its database, niced, while the other flows run (it
    costs about 2 ms of CPU a unit under ASan)."""
    home = os.path.join(tmp, "large-home")
    service = start_service(tmp, home, env)
    subprocess.run([os.environ["ST_STATION_CLI"], "--home", home, "setup", "demo"], check=True,
                   env=dict(env, STATION_HSM_PIN=HSM_PIN), stdout=subprocess.DEVNULL)
    stop_service(tmp, service)
    wo = "WO-LARGE-%d" % os.getpid()
    gen = subprocess.Popen(["nice", "-n", "10", os.environ["ST_GEN_DB"], "--db", os.path.join(home, "station.db"),
                            "--units", str(units), "--fail-every", "100", "--threads", "16", "--work-order", wo],
                           stdout=subprocess.DEVNULL)
    procs.append(gen)
    log("large database: st-gen-db appends %d units to %s in the background" % (units, home))
    return {"home": home, "gen": gen, "units": units, "wo": wo, "started": time.time()}


def large_database(tmp, home, env, large):
    """Issue 16, the GUI on a large database: the batch of generated units
    (tests/tools/st-gen-db, through the real db API) that start_large_home
    began appending to a second demo station, @large; with @large None (the
    bench, tests/bench/gui-scale) HOME holds a large batch already. Then, the service on it:
    station-gui starts (the login screen lists the operators); a lead
    browses the batches and the large batch's shift chart, whose totals are
    checked against the database's rows; an operator runs a line on that
    batch (its remaining units) on three simulated sockets, and stops it.
    Printed, never asserted (speed is measured, not asserted): the
    start-up time, the shift chart's reply time, and the longest main-loop
    pause of each phase."""
    cli = os.environ["ST_STATION_CLI"]
    db_path = os.path.join(home, "station.db")
    units = large["units"] if large is not None else None
    if large is not None:
        large_wo = large["wo"]
        rc = large["gen"].wait(900)
        assert rc == 0, "st-gen-db exited with %d" % rc
        log("large database: %d generated units appended, done %.1f s after it started"
            % (units, time.time() - large["started"]))
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    if units is None:
        bid, large_wo = db.execute("SELECT id, work_order FROM batches ORDER BY quantity DESC LIMIT 1").fetchone()
    else:
        bid = db.execute("SELECT id FROM batches WHERE work_order = ?", (large_wo,)).fetchone()[0]
    counts = dict(db.execute("SELECT state, COUNT(*) FROM units WHERE batch_id = ? GROUP BY state", (bid,)))
    quantity = db.execute("SELECT quantity FROM batches WHERE id = ?", (bid,)).fetchone()[0]
    total = db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    db.close()
    done, failed = counts.get("done", 0), counts.get("failed", 0)
    log("large database: batch %d %s, %d done and %d failed of %d; %d units in the database"
        % (bid, large_wo, done, failed, quantity, total))
    assert units is None or done + failed == units, counts

    service = start_service(tmp, home, env)
    subprocess.run([cli, "--home", home, "--operator", "admin", "unlock"], check=True, stdout=subprocess.DEVNULL,
                   env=dict(env, STATION_HSM_PIN=HSM_PIN, STATION_OPERATOR_PIN=PINS["admin"]))
    # devices never seen by this database, whichever run made it
    seeds = int.from_bytes(os.urandom(3), "big") * 4
    ports = [start_devsim(tmp, 20 + n, seed=seeds + n)[1] for n in (1, 2, 3)]
    tree, rawinput = start_dogtail()
    gui_log = os.path.join(tmp, "gui-large.log")
    gui_env = lsan_env(tmp, dict(os.environ, STATION_GUI_STALL_REPORT="1"))
    spawned = time.time()
    with open(gui_log, "wb") as err:
        gui, app = start_gui(home, ports, gui_env, tree, stderr=err)
    state = {"app": app}
    find, showing, wait_text, wait_for, type_pin, login, logout, scan, line_running = make_ui(state, rawinput)
    find("lead", "list item")
    seen = time.time() - spawned  # as the test sees it, through AT-SPI (polled)
    startup = wait_for(lambda: gui_figures(gui_log)[0].get("start-up: the login screen lists the operators"), 30,
                       "station-gui's start-up figure")[0]
    pause_startup = wait_mark(gui, gui_log, 1)

    # a lead browses: the batches, the large one's shift chart, another, back
    login("lead")
    find("Batches", "radio button").click()
    row = find("Batch %d %s" % (bid, large_wo), "list item", timeout=120)
    chart_wait = float(os.environ.get("ST_GUI_LARGE_TIMEOUT", "120"))
    want = "%d done, %d failed" % (done, failed)
    for again in (False, True):
        asked = time.time()
        row.click()
        wait_for(lambda: find("Shift chart").description == want, chart_wait,
                 "the shift chart of batch %d says %r" % (bid, want))
        chart_seen = time.time() - asked
        if not again:
            other = [n for n in state["app"].findChildren(lambda n: n.roleName == "list item" and n.showing
                                                          and n.name.startswith("Batch ")
                                                          and n.name != row.name, recursive=True)]
            if other:  # another batch's chart shown, then the large one's again
                other[0].click()
                wait_for(lambda: find("Shift chart").description not in ("", want), chart_wait,
                         "the shift chart of %s" % other[0].name)
    chart_reply = gui_figures(gui_log)[0].get("the shift chart (%s) drawn from its reply" % want, [])
    screenshot("batches-large")
    logout()
    pause_browse = wait_mark(gui, gui_log, 2)

    # an operator runs a line in the large database: a new batch of three
    # units (the generated batch has no profile a line can run), three sockets
    line_wo = "WO-LINE-%d" % os.getpid()
    profile = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "profiles",
                           "example-device-csr.profile")
    subprocess.run([cli, "--home", home, "--operator", "lead", "batch", "create", "--profile", profile,
                    "--work-order", line_wo, "--quantity", "3"], check=True, stdout=subprocess.DEVNULL,
                   env=dict(env, STATION_OPERATOR_PIN=PINS["lead"]))
    login("op", keyboard=True)

    def scanned():  # the line view lists the batches when the service answers
        entry = find("Work order", "text")
        entry.text = ""
        entry.grabFocus()
        rawinput.typeText(line_wo)
        rawinput.pressKey("Return")
        time.sleep(1)
        return "chosen" in find("Line status").text
    wait_for(scanned, chart_wait, "the line view lists batch " + line_wo)
    wait_text("Units planned", lambda t: t == "3", 60, "3")
    line_started = time.time()
    find("Start all sockets", "push button").click()
    for n in (1, 2, 3):
        wait_text("Socket %d state" % n, lambda t: t == "PASS", 180, "PASS")
    wait_text("Units done", lambda t: t == "3", 60, "3")
    wait_text("Line status", lambda t: t.startswith("Line stopped: 3 passed"), 120, "stopped, 3 passed")
    line_s = time.time() - line_started
    pause_line = wait_mark(gui, gui_log, 3)
    logout()
    rawinput.keyCombo("<Control>q")
    rc = gui.wait(60)
    with open(gui_log, errors="replace") as f:
        sys.stderr.write(f.read())
    assert rc == 0, "station-gui exited with %d (a LeakSanitizer report exits 23)" % rc
    with open("/proc/%d/stat" % service.pid) as f:
        ticks = f.read().rsplit(")", 1)[1].split()
    service_cpu = (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/%d/status" % service.pid) as f:
        service_hwm = int(re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M).group(1)) / 1024
    stop_service(tmp, service)
    log("FIGURES large database, batch of %d units (%d in the database); load average %.1f:"
        % (quantity, total, os.getloadavg()[0]))
    log("  start-up to the login screen listing the operators: %.0f ms (station-gui's own clock); "
        "%.1f s from the spawn to the test seeing it over AT-SPI" % (startup, seen))
    log("  the shift chart: its reply drawn %s ms after it was asked; the test saw it %.1f s after the click"
        % ("/".join("%.0f" % v for v in chart_reply) or "?", chart_seen))
    log("  the longest main-loop pause (wall; the most main-thread CPU between two 20 ms ticks): start-up "
        "%.0f ms (%.1f ms), browsing the batches and the chart %.0f ms (%.1f ms), a line running (3 units on "
        "3 sockets, %.1f s) %.0f ms (%.1f ms)" % (pause_startup + pause_browse + (line_s,) + pause_line))
    log("  the service over all of it: %.2f s CPU, peak RSS %.1f MB" % (service_cpu, service_hwm))


def make_ui(state, rawinput):
    """The test's ways of driving the GUI, on state["app"] (the running
    station-gui's AT-SPI application)."""
    def find(name, role=None, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            for n in state["app"].findChildren(lambda n: n.name == name and (role is None or n.roleName == role)
                                               and n.showing, recursive=True):
                return n
            time.sleep(0.3)
        raise AssertionError("no showing control named %r (role %s)" % (name, role))

    def showing(name):
        return [n for n in state["app"].findChildren(lambda n: n.name == name and n.showing, recursive=True)]

    def wait_text(name, check, timeout=60, what=""):
        end = time.time() + timeout
        text = None
        while time.time() < end:
            try:
                text = find(name, timeout=5).text
                if check(text):
                    return text
            except AssertionError:
                pass
            time.sleep(0.3)
        for node in showing("Line status"):
            log("Line status: %r" % node.text)
        for n in (1, 2, 3):  # what the tiles say, for the log
            for label in ("step", "failure reason"):
                for node in showing("Socket %d %s" % (n, label)):
                    log("Socket %d %s: %r" % (n, label, node.text))
        raise AssertionError("%s: %r never became %s (last: %r)" % (name, name, what, text))

    def wait_for(check, timeout, what):
        """Polls check() until it gives something true, and returns that."""
        end = time.time() + timeout
        while time.time() < end:
            value = check()
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError("never: " + what)

    def type_pin(name, pin):
        find(name, "list item").click()
        time.sleep(0.5)
        find("PIN", "password text").grabFocus()
        rawinput.typeText(pin)
        rawinput.pressKey("Return")

    def login(name, keyboard=False):
        pin_text = PINS.get(name, NEW_PIN)
        if keyboard:
            type_pin(name, pin_text)
        else:
            find(name, "list item").click()
            time.sleep(0.5)
            pin = find("PIN", "password text")
            for digit in pin_text:
                find(digit, "push button").click()
            assert len(pin.text) == len(pin_text), "the PIN pad typed %d digits" % len(pin.text)
            if name == "lead":
                screenshot("login")
            find("Log in", "push button").click()
        wait_text("Logged in as", lambda t: t.startswith(name + " "), 60, "the logged-in operator")

    def logout():
        find("Log out", "push button").click()
        find("Operators")

    def scan(wo):
        entry = find("Work order", "text")
        entry.grabFocus()
        rawinput.typeText(wo)
        rawinput.pressKey("Return")
        wait_text("Line status", lambda t: wo in t and "chosen" in t, 20, "the scanned batch")
        wait_text("Batch work order", lambda t: t == wo, 20, wo)

    def line_running():
        return find("Stop all sockets", "push button").sensitive

    return (find, showing, wait_text, wait_for, type_pin, login, logout, scan, line_running)


def run(tmp):
    # tests/bench/gui-scale: the large-database part alone, on a demo home
    # that holds a large generated batch already (ST_GUI_LARGE_HOME)
    bench_home = os.environ.get("ST_GUI_LARGE_HOME")
    home = bench_home or os.path.join(tmp, "home")
    # The HSM PIN goes only to the two CLI commands that hand it to the
    # service (setup demo, unlock): no other process of the test has it.
    for name in ("STATION_HSM_PIN", "STATION_OPERATOR_PIN", "STATION_ADDRESS", "STATION_HOME"):
        os.environ.pop(name, None)
    env = dict(os.environ)
    cli = os.environ["ST_STATION_CLI"]
    if bench_home:
        start_x_and_dbus(tmp)
        large_database(tmp, home, env, None)
        return 0
    service = start_service(tmp, home, env)
    log("making a demo station in", home)
    subprocess.run([cli, "--home", home, "setup", "demo"], env=dict(env, STATION_HSM_PIN=HSM_PIN), check=True,
                   stdout=subprocess.DEVNULL)
    large = start_large_home(tmp, env, int(os.environ.get("ST_GUI_LARGE_UNITS", "20000")))

    start_x_and_dbus(tmp)
    tree, rawinput = start_dogtail()

    dev1, port1, state1 = start_devsim(tmp, 1)
    sock2, sock3 = os.path.join(tmp, "socket-2"), os.path.join(tmp, "socket-3")
    relink(sock2, start_devsim(tmp, 2)[1])
    relink(sock3, start_devsim(tmp, 3)[1])
    log("sockets", port1, sock2, sock3)

    # STATION_GUI_STALL_REPORT: the GUI prints its longest main-loop pause at
    # exit (a figure for the log, not asserted: speed is never asserted).
    gui_env = lsan_env(tmp, dict(os.environ, STATION_GUI_STALL_REPORT="1"))
    gui, app = start_gui(home, [port1, sock2, sock3], gui_env, tree)
    state = {"app": app}

    find, showing, wait_text, wait_for, type_pin, login, logout, scan, line_running = make_ui(state, rawinput)

    # The login screen lists the demo operators (the service's LoginNames)
    # and asks for no HSM PIN.
    for who in PINS:
        find(who, "list item")
    assert not showing("HSM PIN"), "the login screen asks for the HSM PIN"

    # ---- lead: create two batches, search filter ----
    login("lead")
    find("Batches", "radio button").click()
    wo = "WO-GUI-%d" % os.getpid()
    wo2 = wo + "-B"
    wo3 = wo + "-C"
    find("Product profile", "combo box").click()
    find("example-device-csr", "menu item").click()
    for n, (order, quantity) in enumerate(((wo, "3"), (wo2, "2"), (wo3, "1")), 1):
        find("New work order", "text").text = order
        qty = find("Quantity")
        qty.text = quantity
        qty.grabFocus()
        rawinput.pressKey("Tab")
        find("Create batch", "push button").click()
        wait_text("Batches status", lambda t: t == "Batch %d created." % n, 30, "created")
        find("Batch %d %s" % (n, order), "list item")
    find("Search batches").text = wo2
    wait_for(lambda: not showing("Batch 1 " + wo), 10, "the search hides batch 1")
    find("Batch 2 " + wo2, "list item")
    find("Search batches").text = ""
    find("Batch 1 " + wo, "list item")
    screenshot("batches-new")
    logout()

    # ---- operator: the station is locked; the service's refusal says so ----
    login("op")
    scan(wo)
    find("Start all sockets", "push button").click()
    refusal = wait_text("Line status", lambda t: "locked" in t and "admin unlocks" in t, 30,
                        "the service's refusal: the station is locked")
    log("locked station, the line view says:", refusal)
    assert not line_running(), "a line runs on a locked station"
    logout()

    # ---- admin: the HSM state, a wrong HSM PIN, the unlock ----
    login("admin")
    find("Admin", "radio button").click()
    wait_text("HSM state", lambda t: t.startswith("HSM: locked"), 30, "locked")
    hsm_pin = find("HSM PIN", "password text")
    hsm_pin.text = "999999"
    find("Unlock HSM", "push button").click()
    wait_text("Admin status", lambda t: t and not t.startswith("Unlocking"), 60, "the refusal of a wrong PIN")
    log("a wrong HSM PIN:", find("Admin status").text)
    assert find("HSM state").text.startswith("HSM: locked"), "a wrong HSM PIN unlocked the station"
    find("HSM PIN", "password text").text = HSM_PIN
    find("Unlock HSM", "push button").click()
    wait_text("Admin status", lambda t: t.startswith("The HSM is unlocked"), 60, "unlocked")
    wait_text("HSM state", lambda t: t.startswith("HSM: unlocked"), 30, "unlocked")
    assert not showing("HSM PIN"), "the HSM PIN box stays after the unlock"
    screenshot("admin-unlocked")
    logout()

    # ---- operator: keyboard login, no lead views, run three sockets to green ----
    login("op", keyboard=True)
    assert not showing("Batches"), "an operator sees the Batches view"
    assert not showing("Create batch"), "an operator sees Create batch"
    assert not showing("Close batch"), "an operator sees Close batch"
    assert not showing("Export manifest"), "an operator sees Export manifest"
    assert not showing("Admin") and not showing("QA"), "an operator sees the QA/Admin views"
    scan(wo)
    wait_text("Units planned", lambda t: t == "3", 20, "3")
    find("Start all sockets", "push button").click()
    for n in (1, 2, 3):
        wait_text("Socket %d state" % n, lambda t: t == "PASS", 180, "PASS")
    wait_text("Units done", lambda t: t == "3", 30, "3")
    wait_text("Yield", lambda t: t.startswith("100"), 30, "100 %")
    wait_text("Line status", lambda t: t.startswith("Line stopped: 3 passed"), 60, "stopped, 3 passed")
    uid1 = find("Socket 1 uid").text
    assert uid1.startswith("uid ") and len(uid1) > 10, uid1
    screenshot("line-pass")

    # ---- operator: a failure, per-socket stop and retry, a late device ----
    relink(sock3, start_devsim(tmp, 4, "--fault", "bad-csr-sig")[1])
    relink(sock2, None)  # socket 2 is empty for now
    scan(wo2)
    find("Start all sockets", "push button").click()
    wait_text("Socket 3 state", lambda t: t == "FAIL", 120, "FAIL")
    reason = wait_text("Socket 3 failure reason", lambda t: "put it aside" in t, 10, "the reason")
    step = find("Socket 3 step").text
    assert "Retry" in step, "the failed tile does not say what to do: %r" % step
    uid3 = find("Socket 3 uid").text
    assert uid3.startswith("uid ") and len(uid3) > 10, uid3
    wait_text("Units failed", lambda t: t == "1", 30, "1")
    wait_text("Socket 2 step", lambda t: t == "Waiting for a device", 10, "waiting")
    screenshot("line-fail")
    log("socket 3 failed:", reason)

    find("Stop socket 1", "push button").click()
    wait_text("Line status", lambda t: "stopped; the other sockets go on" in t, 10, "socket 1 stopped")
    wait_text("Socket 1 step", lambda t: t == "Not running", 10, "not running")
    assert find("Start socket 1", "push button").sensitive, "socket 1 cannot be started again"
    time.sleep(1)
    assert line_running(), "stopping socket 1 stopped the line"

    find("Retry socket 3", "push button").click()
    wait_text("Units failed", lambda t: t == "2", 60, "2 (the same device run again)")
    wait_text("Socket 3 state", lambda t: t == "FAIL", 30, "FAIL again")
    assert find("Socket 3 uid").text == uid3, "the retry ran another device"
    assert find("Socket 2 step").text == "Waiting for a device", "the retry disturbed socket 2"
    assert line_running(), "the retry stopped the line"

    relink(sock2, start_devsim(tmp, 5)[1])  # a device put in late
    wait_text("Socket 2 state", lambda t: t == "PASS", 120, "PASS")
    wait_text("Line status", lambda t: t.startswith("Line stopped: 1 passed, 2 failed"), 60,
              "stopped, 1 passed, 2 failed")
    wait_text("Units done", lambda t: t == "1", 30, "1")

    # ---- the CLI runs a line (batch 3); the operator's line view shows it ----
    relink(sock2, start_devsim(tmp, 7)[1])
    uid2_before = find("Socket 2 uid").text
    run_cli = start([cli, "--home", home, "--operator", "op", "batch", "run", "3", "--port", sock2, "--units", "1"],
                    env=dict(env, STATION_OPERATOR_PIN=PINS["op"]), stdout=subprocess.PIPE)
    wait_text("Line status", lambda t: t.startswith("Batch 3 is running on 1 socket, started from another")
              or t.startswith("The line on batch 3"), 60, "the CLI's line shown")
    wait_text("Socket 2 uid", lambda t: t != uid2_before and len(t) > 10, 120, "the CLI's unit's uid")
    wait_text("Socket 2 state", lambda t: t == "PASS", 120, "PASS (the CLI's unit)")
    wait_text("Line status", lambda t: t.startswith("The line on batch 3 (started from another client) ended: "
                                                    "1 passed"), 60, "the CLI's line ended")
    out_cli = run_cli.communicate(timeout=60)[0].decode()
    assert run_cli.returncode == 0, "station batch run exited with %s: %s" % (run_cli.returncode, out_cli)
    assert not line_running(), "the CLI's line shows as this view's own"
    screenshot("line-watch-cli")
    log("the CLI's line on batch 3 showed in the GUI")
    logout()

    # ---- lead: close the first batch, filter by state, export the manifest ----
    login("lead")
    find("Batches", "radio button").click()
    row = find("Batch 1 " + wo, "list item")
    row.click()
    time.sleep(0.5)
    find("Close batch", "push button").click()
    wait_text("Batches status", lambda t: t == "Batch closed.", 60, "closed")
    find("Batch state filter", "combo box").click()
    find("Closed", "menu item").click()
    wait_for(lambda: not showing("Batch 2 " + wo2), 10, "the closed filter hides the open batch 2")
    row = find("Batch 1 " + wo, "list item")
    row.click()
    out = os.path.join(tmp, "export", "wo-gui")
    find("Export folder", "text").text = out

    def export_and_check(out):
        find("Export manifest", "push button").click()
        wait_text("Batches status", lambda t: t == "Manifest exported to %s and verified." % out, 120,
                  "exported to " + out)
        for f in ("manifest.json", "units.jsonl", "manifest.csv", "SHA256SUMS", "SHA256SUMS.p7s",
                  "ca-chain.pem"):
            assert os.path.exists(os.path.join(out, f)), f
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        assert manifest["batch"]["work_order"] == wo
        assert manifest["batch"]["counts"]["done"] == 3, manifest["batch"]["counts"]
        assert manifest["batch"]["created_by"] == "lead" and manifest["batch"]["closed_by"] == "lead"
        # stock openssl agrees with the GUI's "verified"
        subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER",
                        "-in", os.path.join(out, "SHA256SUMS.p7s"),
                        "-content", os.path.join(out, "SHA256SUMS"),
                        "-CAfile", os.path.join(home, "demo-root.pem"), "-out", "/dev/null"],
                       check=True, stderr=subprocess.DEVNULL)
        subprocess.run(["sha256sum", "--strict", "--quiet", "-c", "SHA256SUMS"], cwd=out, check=True)

    export_and_check(out)
    screenshot("batches-exported")
    export_to_drive(wo, find, wait_text, wait_for, export_and_check)
    find("Batch state filter", "combo box").click()
    find("Open", "menu item").click()
    wait_for(lambda: not showing("Batch 1 " + wo), 10, "the open filter hides the closed batch 1")
    find("Batch 2 " + wo2, "list item")
    logout()

    # ---- QA: a flashed unit back in a socket, and the manifest ----
    dev1.stdin.close()
    dev1.wait(10)
    _, qa_port, _ = start_devsim(tmp, 1, "--present", "1")
    login("qa")
    assert not showing("Start all sockets"), "QA sees the line's controls"
    find("Unit socket path", "text").text = qa_port
    find("Verify unit", "push button").click()
    wait_text("Unit result", lambda t: t.startswith("UNIT VERIFIED"), 90, "UNIT VERIFIED")
    find("Manifest folder", "text").text = out
    find("Verify manifest", "push button").click()
    wait_text("Manifest result", lambda t: t == "MANIFEST VERIFIED", 60, "MANIFEST VERIFIED")
    screenshot("qa")
    logout()

    # ---- admin: health; add an operator, unlock them, change their role ----
    login("admin")
    find("Admin", "radio button").click()
    wait_text("HSM state", lambda t: t.startswith("HSM: unlocked") and "logged in" in t, 60, "unlocked, logged in")
    wait_text("Audit chain", lambda t: t.startswith("Audit chain: intact"), 60, "intact")
    wait_text("CA chain", lambda t: "days left" in t, 30, "days left")
    find("Operator lead", "list item")
    find("New operator name", "text").text = NEW_OP
    find("New operator PIN", "password text").text = NEW_PIN
    find("Add operator", "push button").click()
    wait_text("Admin status", lambda t: t == "Done.", 30, "done")
    find("Operator " + NEW_OP, "list item")
    screenshot("admin")
    logout()
    for attempt in range(5):
        type_pin(NEW_OP, "0000")
        wait_text("Login status", lambda t: ("wrong PIN" in t or "locked" in t) and t != state.get("last"),
                  30, "a refused PIN")
        state["last"] = find("Login status").text
    assert "locked" in state["last"], state["last"]
    type_pin(NEW_OP, NEW_PIN)
    wait_text("Login status", lambda t: t.startswith("operator '%s' is locked" % NEW_OP), 30, "still locked")
    login("admin")
    row = find("Operator " + NEW_OP, "list item")
    assert "LOCKED" in row.children[0].name, row.children[0].name
    row.click()
    find("Unlock", "push button").click()
    wait_for(lambda: "LOCKED" not in find("Operator " + NEW_OP, "list item").children[0].name, 30,
             "the operator is unlocked")
    find("Operator " + NEW_OP, "list item").click()
    find("Role", "combo box").click()
    find("lead", "menu item").click()
    find("Change role", "push button").click()
    wait_for(lambda: " lead" in find("Operator " + NEW_OP, "list item").children[0].name, 30,
             "the new role is listed")
    logout()
    login(NEW_OP)
    find("Batches", "radio button")  # a lead now
    logout()

    # ---- operator: close the window while a unit runs ----
    relink(sock2, start_devsim(tmp, 6, "--fault", "drop")[1])
    login("op", keyboard=True)
    scan(wo2)
    find("Start socket 2", "push button").click()
    wait_for(line_running, 20, "the line runs")
    rawinput.keyCombo("<Control>q")
    find("Keep running", "push button").click()
    time.sleep(1)
    assert gui.poll() is None and line_running(), "Keep running did not keep the line running"
    in_flight = find("Socket 2 state").text
    rawinput.keyCombo("<Control>q")
    find("Stop the line", "push button").click()
    try:
        rc = gui.wait(90)
    except subprocess.TimeoutExpired:
        raise AssertionError("the window did not close after the line stopped")
    assert rc == 0, "station-gui exited with %d (a LeakSanitizer report exits 23)" % rc
    log("closed with socket 2 %s; exit 0" % in_flight)
    # the units in flight ended safely: nothing left mid-pipeline, records consistent
    db = sqlite3.connect(os.path.join(home, "station.db"))
    left = db.execute("SELECT COUNT(*) FROM units WHERE state IN ('started','issuing','issued')").fetchone()[0]
    states = dict(db.execute("SELECT state, COUNT(*) FROM units GROUP BY state").fetchall())
    db.close()
    assert left == 0, "units left mid-pipeline after closing: %s" % states
    log("unit states:", states)
    subprocess.run([cli, "--home", home, "--operator", "lead", "db", "check"], check=True,
                   env=dict(env, STATION_OPERATOR_PIN=PINS["lead"]), stdout=subprocess.DEVNULL)

    # ---- idle logout: the service restarted with a short idle time, unlocked with the CLI ----
    stop_service(tmp, service)
    conf = os.path.join(home, "station.conf")
    with open(conf) as f:
        text = f.read()
    text, n = re.subn(r"^idle-logout-s=\d+$", "idle-logout-s=3", text, flags=re.M)
    assert n == 1, "station.conf has no idle-logout-s line"
    with open(conf, "w") as f:
        f.write(text)
    service = start_service(tmp, home, env)
    subprocess.run([cli, "--home", home, "--operator", "admin", "unlock"], check=True, stdout=subprocess.DEVNULL,
                   env=dict(env, STATION_HSM_PIN=HSM_PIN, STATION_OPERATOR_PIN=PINS["admin"]))
    gui, state["app"] = start_gui(home, [port1], gui_env, tree)
    find("qa", "list item")
    login("qa")
    wait_text("Login status", lambda t: "qa was logged out after 3 s" in t, 60, "logged out for idling")
    screenshot("logged-out")
    rawinput.keyCombo("<Control>q")
    rc = gui.wait(60)
    assert rc == 0, "station-gui exited with %d (a LeakSanitizer report exits 23)" % rc
    stop_service(tmp, service)
    large_database(tmp, large["home"], env, large)
    log("all flows passed")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
