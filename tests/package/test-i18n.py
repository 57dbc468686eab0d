#!/usr/bin/python3
"""Translations (docs/translations.md), one check per call (meson suite 'package'):

    test-i18n.py CHECK SOURCE_ROOT BUILD_ROOT

  help       LANGUAGE=de: station, stationd and station-gui print their --help
             in German, with LANG unset and with LANG=C.UTF-8; without
             LANGUAGE, in English.
  service    a stationd started with LANGUAGE=de answers an English client in
             German (the station's language), and the client's own words stay
             English.
  catalogue  every po/LANG.po of po/LINGUAS (de among them) passes msgfmt
             --check with no untranslated and no fuzzy message, and translates
             every string the sources mark today (the sources' catalogue made
             with xgettext, compared with msgcmp); every source file
             (common/, db/, gui/, hsm/, programmer/, station/) that marks a
             string is listed in po/POTFILES.in, and every file listed there
             exists and marks one; no marked string holds a GLib format macro
             (G_GINT64_FORMAT...), at which xgettext would cut it.

What the programs must print is never written here: it is read from the
compiled catalogue of the build (BUILD/po/de/LC_MESSAGES/station.mo) with
Python's own gettext reader, and must differ from the English. Exits 0
(pass), 1 (fail) or 77 (skipped: a tool is not installed)."""
import gettext
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

check, src, build = sys.argv[1:4]
localedir = os.path.join(build, "po")
station = os.path.join(build, "station", "station")
stationd = os.path.join(build, "station", "stationd")
station_gui = os.path.join(build, "gui", "station-gui")
failures = []


def fail(what):
    print("FAIL: " + what)
    failures.append(what)


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


def catalogue():
    mo = os.path.join(localedir, "de", "LC_MESSAGES", "station.mo")
    if not os.path.exists(mo):
        print("FAIL: no compiled German catalogue at " + mo)
        sys.exit(1)
    return gettext.translation("station", localedir=localedir, languages=["de"])


def german(de, msgid):
    """The German of @msgid, which must have one."""
    text = de.gettext(msgid)
    if text == msgid:
        fail("the catalogue has no German for %r" % msgid)
    return text


def env_for(language, lang):
    """A clean environment: the build's catalogues, LANGUAGE and LANG as
    given (None: unset), and the sanitizers' options of the test."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STATION_LOCALEDIR": localedir,
           "HOME": os.environ.get("HOME", "/tmp")}
    for k in ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    if language is not None:
        env["LANGUAGE"] = language
    if lang is not None:
        env["LANG"] = lang
    return env


def run(argv, env, expect_rc=0):
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    if p.returncode != expect_rc:
        fail("%s exited with %d, not %d:\n%s%s" % (" ".join(argv), p.returncode, expect_rc, out, err))
    return out + err


def check_help():
    de = catalogue()
    programs = [
        (station, ["COMMAND [ARGS] - offline device provisioning station",
                   "Station home folder (its private service)", "Print the version"]),
        (stationd, ["- the station service", "Own org.station.Station1 on the system bus"]),
    ]
    if os.path.exists(station_gui):
        programs.append((station_gui, ["- the station's line GUI",
                                       "A socket of the line (repeat for each)"]))
    # the usage text of `station --help`: its first line and its exit codes
    usage = [line for line in de._catalog if isinstance(line, str) and line.startswith("Commands:\n")]
    if len(usage) != 1:
        fail("the catalogue has %d usage texts of station, not 1" % len(usage))
    for program, msgids in programs:
        name = os.path.basename(program)
        if name == "station" and usage:
            msgids = msgids + [usage[0]]
        for lang in (None, "C.UTF-8"):
            out = run([program, "--help"], env_for("de", lang))
            for msgid in msgids:
                text = german(de, msgid)
                if text not in out:
                    fail("LANGUAGE=de LANG=%s %s --help lacks %r" % (lang, name, text[:80]))
                if msgid not in text and msgid in out:
                    fail("LANGUAGE=de LANG=%s %s --help still says %r" % (lang, name, msgid[:80]))
            print("ok: LANGUAGE=de LANG=%s %s --help is in German" % (lang, name))
        out = run([program, "--help"], env_for(None, "C.UTF-8"))
        for msgid in msgids:
            if msgid not in out:
                fail("%s --help without LANGUAGE lacks the English %r" % (name, msgid[:80]))
        print("ok: %s --help without LANGUAGE is in English" % name)


def check_service():
    de = catalogue()
    home = tempfile.mkdtemp(prefix="st-i18n-")
    os.chmod(home, 0o700)
    service = subprocess.Popen([stationd, "--home", home], env=env_for("de", "C.UTF-8"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        sock = os.path.join(home, "stationd.sock")
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if service.poll() is not None or time.monotonic() > deadline:
                fail("stationd did not start:\n" + service.stdout.read().decode("utf-8", "replace"))
                return
            time.sleep(0.05)
        # An English client on a home that is not set up: the service's
        # refusal, in the service's language.
        out = run([station, "--home", home, "batch", "list"], env_for(None, "C.UTF-8"), expect_rc=5)
        msgid = ("%s: the station in %s is not set up yet: run 'station setup demo' "
                 "or see docs/setup.md")
        expected = german(de, msgid) % (de.gettext("batch list"), home)
        english = msgid % ("batch list", home)
        if "station: " + expected not in out:
            fail("the service with LANGUAGE=de did not refuse in German: %r" % out)
        elif english in out:
            fail("the service with LANGUAGE=de refused in English")
        else:
            print("ok: stationd with LANGUAGE=de answers an English client in German")
        # The client's own words follow the client's LANGUAGE.
        out = run([station, "--home", home, "--help"], env_for(None, "C.UTF-8"))
        if "Station home folder (its private service)" not in out:
            fail("the English client's own --help is not English")
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        shutil.rmtree(home, ignore_errors=True)


def marks_strings(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if path.endswith(".ui"):
        return 'translatable="yes"' in text
    # a call of _(), N_(), C_(), NC_() or ngettext() outside a comment
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.search(r"(?<![A-Za-z0-9_])(N?C?_|ngettext)\s*\(", text) is not None


def marked_calls(path):
    """The arguments of each _(), N_(), C_(), NC_() and ngettext() call in
    a C file, its string literals emptied (one pass, no backtracking)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    for m in re.finditer(r"(?<![A-Za-z0-9_])(N?C?_|ngettext)\s*\(", text):
        i, depth, out = m.end(), 1, []
        while i < len(text) and depth > 0 and i - m.end() < 8000:
            c = text[i]
            if c == '"':
                j = i + 1
                while j < len(text) and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                out.append('""')
                i = j + 1
                continue
            if c == "'":
                j = i + 1
                while j < len(text) and text[j] != "'":
                    j += 2 if text[j] == "\\" else 1
                i = j + 1
                continue
            depth += {"(": 1, ")": -1}.get(c, 0)
            out.append(c)
            i += 1
        yield "".join(out)


def check_catalogue():
    for tool in ("msgfmt", "xgettext", "msgcmp"):
        if shutil.which(tool) is None:
            skip(tool + " is not installed (Debian: gettext)")
    with open(os.path.join(src, "po", "LINGUAS")) as f:
        languages = [w for line in f for w in line.split("#")[0].split()]
    if "de" not in languages:
        fail("po/LINGUAS does not list de")
    for lang in languages:
        po = os.path.join(src, "po", lang + ".po")
        p = subprocess.run(["msgfmt", "--check", "--statistics", "-o", "/dev/null", po],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        stats = p.stdout.decode()
        print("po/%s.po: %s" % (lang, stats.strip()))
        if p.returncode != 0:
            fail("msgfmt --check po/%s.po:\n%s" % (lang, stats))
        if "untranslated" in stats or "fuzzy" in stats:
            fail("po/%s.po has untranslated or fuzzy messages: run 'make po' and translate them "
                 "(docs/translations.md)" % lang)
    # POTFILES.in: every file that marks strings, and nothing else
    with open(os.path.join(src, "po", "POTFILES.in")) as f:
        listed = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    for name in listed:
        if not os.path.exists(os.path.join(src, name)):
            fail("po/POTFILES.in lists %s, which does not exist" % name)
    marked = []
    for top in ("common", "db", "gui", "hsm", "programmer", "station"):
        for root, dirs, files in os.walk(os.path.join(src, top)):
            for name in files:
                if name.endswith((".c", ".ui")):
                    path = os.path.join(root, name)
                    if marks_strings(path):
                        marked.append(os.path.relpath(path, src))
    # a GLib format macro inside a marked string: xgettext cuts the string
    # there, and the program looks up a whole string the catalogue lacks
    for name in marked:
        for call in marked_calls(os.path.join(src, name)):
            if re.search(r"\bG_G[A-Z0-9]*_FORMAT\b", call):
                fail("%s: a GLib format macro inside a translatable string (%s...): use \"%%\" PRId64 "
                     "of <inttypes.h> (docs/translations.md)" % (name, call[:60]))
    for name in sorted(set(marked) - set(listed)):
        fail("%s marks strings for translation but po/POTFILES.in does not list it" % name)
    for name in sorted(set(listed) - set(marked)):
        fail("po/POTFILES.in lists %s, which marks no string" % name)
    print("ok: po/POTFILES.in lists the %d files that mark strings" % len(marked))
    # the catalogue of the sources as they are, with meson's 'glib' preset
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, "station.pot")
        p = subprocess.run(["xgettext", "--directory=" + src, "--files-from=" +
                            os.path.join(src, "po", "POTFILES.in"), "--from-code=UTF-8",
                            "--add-comments", "--keyword=_", "--keyword=N_", "--keyword=C_:1c,2",
                            "--keyword=NC_:1c,2", "--keyword=g_dcgettext:2",
                            "--keyword=g_dngettext:2,3", "--keyword=g_dpgettext2:2c,3",
                            "--output=" + pot], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            fail("xgettext:\n" + p.stdout.decode())
            return
        for lang in languages:
            po = os.path.join(src, "po", lang + ".po")
            p = subprocess.run(["msgcmp", po, pot], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if p.returncode != 0:
                fail("po/%s.po does not translate every string of the sources (run 'make po', "
                     "then translate):\n%s" % (lang, p.stdout.decode()[:4000]))
            else:
                print("ok: po/%s.po translates every string the sources mark" % lang)


{"help": check_help, "service": check_service, "catalogue": check_catalogue}[check]()
sys.exit(1 if failures else 0)
