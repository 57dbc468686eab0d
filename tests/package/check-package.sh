#!/bin/sh
# The installable files of stationd, station and station-gui, checked with
# the tools that consume them. One check per call (meson suite 'package'):
#   check-package.sh CHECK SOURCE_ROOT BUILD_ROOT [ARGS...]
# Exits 0 (pass), 1 (fail) or 77 (skipped: the tool is not installed; the
# reason is printed).
set -u
check=$1 src=$2 build=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

case $check in

systemd-verify)
  # $1: the configured stationd.service, $2: an executable that exists.
  command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
  # systemd-analyze verify checks that ExecStart's binary exists, and the
  # service binary stationd is not part of this build: the copy checked
  # here starts the built station binary instead. Nothing else changes.
  sed "s|^ExecStart=[^ ]*|ExecStart=$2|" "$1" > "$tmp/stationd.service"
  grep -q "^ExecStart=$2 --system " "$tmp/stationd.service" || fail "no ExecStart= to rewrite in $1"
  # Documentation=man:... is checked too, against our own pages.
  for page in "$src"/docs/man/*.[158]; do
    mkdir -p "$tmp/man/man${page##*.}"
    ln -s "$page" "$tmp/man/man${page##*.}/"
  done
  cd "$tmp" || exit 1
  # info level shows the warnings verify does not fail on (unknown keys,
  # bad values it ignores); any line naming our unit is a failure.
  out=$(SYSTEMD_LOG_LEVEL=info MANPATH="$tmp/man" systemd-analyze verify ./stationd.service 2>&1)
  rc=$?
  echo "$out"
  [ $rc -eq 0 ] || fail "systemd-analyze verify exited with $rc"
  if echo "$out" | grep -q "stationd"; then fail "systemd-analyze verify has something to say about stationd.service"; fi
  # The sandbox is part of the unit: keep its exposure below 2 (1.0 when
  # written). systemd-analyze security --offline exists from systemd 250.
  if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
    score=$(systemd-analyze security --offline=true "$tmp/stationd.service" 2>/dev/null \
            | sed -n 's/.*Overall exposure level for stationd.service: \([0-9.]*\).*/\1/p')
    echo "systemd-analyze security: exposure $score"
    [ -n "$score" ] || fail "no exposure level from systemd-analyze security"
    awk -v s="$score" 'BEGIN { exit !(s < 2.0) }' || fail "exposure $score is 2.0 or more"
  fi
  echo "ok: stationd.service"
  ;;

man)
  command -v man >/dev/null || skip "man is not installed"
  status=0
  for page in "$src"/docs/man/*.[158]; do
    out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    if [ -n "$out" ]; then
      echo "$page:"; echo "$out"; status=1
    elif ! MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q "^SEE ALSO"; then
      echo "$page renders without SEE ALSO"; status=1
    else
      echo "ok: $page"
    fi
  done
  [ $status -eq 0 ] || fail "man pages with warnings"
  ;;

dbus-policy)
  # $1: org.station.Station1.conf, $2: the configured activation file.
  policy=$1 activation=$2
  if command -v xmllint >/dev/null; then
    xmllint --noout "$policy" || fail "$policy is not well-formed XML"
  else
    python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$policy" \
      || fail "$policy is not well-formed XML"
  fi
  grep -q '^Name=org.station.Station1$' "$activation" || fail "$activation names another service"
  grep -q '^SystemdService=stationd.service$' "$activation" || fail "$activation: no SystemdService"
  grep -q '^User=station$' "$activation" || fail "$activation: not User=station"
  command -v dbus-daemon >/dev/null || skip "dbus-daemon is not installed (the XML is well-formed)"
  mkdir "$tmp/socket"
  cat > "$tmp/bus.conf" <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:dir=$tmp/socket</listen>
  <auth>EXTERNAL</auth>
  <!-- the default policy of Debian's system.conf -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>$policy</include>
</busconfig>
EOC
  dbus-daemon --config-file="$tmp/bus.conf" --print-address=3 --nofork --nopidfile \
    3>"$tmp/address" 2>"$tmp/stderr" &
  pid=$!
  i=0
  while [ ! -s "$tmp/address" ] && kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.05; i=$((i + 1))
  done
  address=$(head -n1 "$tmp/address")
  status=0
  # As root (a container, a CI): root may own the name, nobody may not.
  if [ -n "$address" ] && [ "$(id -u)" = 0 ] && command -v dbus-send >/dev/null \
     && command -v setpriv >/dev/null; then
    chmod 755 "$tmp" "$tmp/socket"
    # --bus= registers (Hello) on the bus; --address= would not.
    request='timeout 10 dbus-send --bus="$0" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.RequestName string:org.station.Station1 uint32:4 2>&1'
    if sh -c "$request" "$address" | grep -q "uint32 1"; then echo "ok: root may own org.station.Station1"
    else echo "root cannot own org.station.Station1"; status=1; fi
    if setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "$request" "$address" \
       | grep -q "AccessDenied"; then echo "ok: nobody may not own it"
    else echo "nobody could own org.station.Station1"; status=1; fi
    # (Who may call the interface is not checked here: without an owner of
    # the name the bus answers ServiceUnknown before it applies the policy.)
  fi
  kill $pid 2>/dev/null
  wait $pid 2>/dev/null
  # The user station exists only where the package is installed: that
  # warning is expected; so is the fd limit a bus started as root raises
  # where it may not. Any other message is not.
  other=$(grep -v -e 'Unknown username "station"' -e 'Failed to set fd limit' "$tmp/stderr")
  cat "$tmp/stderr"
  [ -n "$address" ] || fail "dbus-daemon did not start with the policy"
  [ -z "$other" ] || fail "dbus-daemon complained about the policy"
  [ $status -eq 0 ] || fail "the policy does not do what it says"
  echo "ok: dbus-daemon accepted $policy (listened on $address)"
  ;;

udev-rules)
  rules=$1
  if command -v udevadm >/dev/null && udevadm verify --help >/dev/null 2>&1; then
    udevadm verify "$rules" || fail "udevadm verify rejects $rules"
  else
    # udevadm verify came with systemd 253; Debian 12 has 252 (and the
    # container may have no udev): our own parse check instead.
    echo "udevadm verify is not available: checking the syntax with check-udev-rules.py"
  fi
  python3 "$src/tests/package/check-udev-rules.py" "$rules" || fail "$rules"
  ;;

desktop)
  desktop=$1
  command -v desktop-file-validate >/dev/null || skip "desktop-file-validate is not installed (desktop-file-utils)"
  out=$(desktop-file-validate "$desktop" 2>&1)
  echo "$out"
  [ -z "$out" ] || fail "desktop-file-validate has something to say"
  echo "ok: $desktop"
  ;;

bash-completion)
  # The completion run with small stand-ins for bash-completion's two
  # helpers, _init_completion and _filedir (the package need not be
  # installed): the commands and options it offers.
  completion=$1
  command -v bash >/dev/null || skip "bash is not installed"
  bash -n "$completion" || fail "$completion: syntax"
  out=$(bash -c '
    _init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]};
                         words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
    _filedir() { COMPREPLY=(FILES); }
    . "$1"
    t() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _station; echo "${COMPREPLY[*]}"; }
    t station ""
    t station --home /x batch ""
    t station batch run 1 --
    t station operator add bob --role ""
    t station st
    t station manifest verify ""
  ' sh "$completion")
  expected="setup ca batch manifest unit crl db operator audit demo bench unlock lock status admin
create run list show close allow-more-voids
--port --units --wait --allow-reprovision --home --operator --help
operator lead qa admin
status
FILES"
  [ "$out" = "$expected" ] || { printf 'got:\n%s\nexpected:\n%s\n' "$out" "$expected"; fail "completion"; }
  echo "ok: $completion"
  ;;

install)
  # meson install into a scratch root: every file in its place.
  command -v meson >/dev/null || skip "meson is not in PATH"
  meson install -C "$build" --no-rebuild --destdir "$tmp/root" --quiet >"$tmp/log" 2>&1 \
    || { cat "$tmp/log"; fail "meson install"; }
  status=0
  for f in "$@"; do
    n=$(find "$tmp/root" -path "*/$f" | wc -l)
    if [ "$n" -eq 1 ]; then echo "ok: $f"; else echo "missing: $f"; status=1; fi
  done
  [ $status -eq 0 ] || fail "meson install left files out"
  ;;

*)
  fail "unknown check $check"
  ;;
esac
exit 0
