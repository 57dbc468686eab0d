# Station: the two commands of the README, and a few more.
#   make demo   install what is missing, build, run the whole flow on SoftHSM2
#               and simulated devices over pseudo-terminals
#   make test   install what is missing, build with -Werror under ASan+UBSan,
#               run every test suite
#   make deb    install what is missing, build the Debian package in a clean
#               copy of the tree, check it with lintian (docs/install.md)
# Both install missing Debian 12 packages with apt-get (as root, or via sudo).

BUILD      ?= build
TEST_BUILD ?= build-test
FUZZ_BUILD ?= build-fuzz
DEMO_HOME  ?= $(CURDIR)/demo-home
# make fuzz: each target until FUZZ_RUNS inputs or its time cap
# (tests/fuzz/run-fuzzers; FUZZ_SECONDS, when set, is every target's cap);
# FUZZ_TARGETS picks some of them (frame hello csr profile blob config manifest).
FUZZ_RUNS ?= 10000000
FUZZ_SECONDS ?=
FUZZ_TARGETS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What building and running the station needs.
DEPS = meson ninja-build pkg-config gcc libc6-dev \
       libglib2.0-dev libjson-glib-dev libssl-dev openssl libp11-dev libp11-kit-dev \
       softhsm2 libsqlite3-dev sqlite3 libusb-1.0-0-dev libgtk-3-dev zlib1g-dev \
       libcanberra-gtk3-dev gettext libqrencode-dev libcairo2-dev
# What the tests need on top: independent tools that check our output,
# the sanitizer runtime, emulators and the GUI test stack.
TEST_DEPS = opensc gnutls-bin clang-14 libclang-rt-14-dev stm32flash \
       umockdev libumockdev-dev xvfb xauth x11-utils at-spi2-core dbus-x11 python3-dogtail imagemagick \
       python3-cryptography python3-jsonschema \
       systemd dbus man-db libxml2-utils desktop-file-utils \
       zbar-tools poppler-utils
# What 'make deb' needs on top of DEPS: the Debian packaging tools.
PKG_DEPS = debhelper dpkg-dev fakeroot lintian

.PHONY: all deps test-deps pkg-deps build build-test demo test fuzz clean bench deb po

# The start of a recipe line that needs the station service of DEMO_HOME
# (bench, gui-demo): a private stationd is started and waited for, the demo
# is set up and unlocked by the demo admin (the HSM PIN only in those two
# commands, never in a client that runs the line), and on exit the service
# stops (signing its closing audit checkpoint) with whatever the line
# started in $$tmp/pids.
with_private_service = pin=$${STATION_HSM_PIN:-123456}; unset STATION_HSM_PIN; tmp=$$(mktemp -d); svc=; \
	trap 'kill $$(cat $$tmp/pids 2>/dev/null) 2>/dev/null; if [ -n "$$svc" ]; then kill -TERM $$svc 2>/dev/null; wait $$svc; fi; rm -rf $$tmp' EXIT INT TERM; \
	mkdir -p -m 0700 $(DEMO_HOME); \
	$(BUILD)/station/stationd --home $(DEMO_HOME) & svc=$$!; \
	while [ ! -S $(DEMO_HOME)/stationd.sock ]; do \
	  kill -0 $$svc 2>/dev/null || { echo "stationd did not start (another one serves $(DEMO_HOME)?)"; exit 1; }; sleep 0.1; \
	done; \
	STATION_HSM_PIN=$$pin $(BUILD)/station/station --home $(DEMO_HOME) setup demo || exit 1; \
	STATION_HSM_PIN=$$pin STATION_OPERATOR_PIN=4444 \
	  $(BUILD)/station/station --home $(DEMO_HOME) --operator admin unlock || exit 1

all: build

define install_missing
	@missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_missing,$(DEPS))

test-deps: deps
	$(call install_missing,$(TEST_DEPS))

pkg-deps: deps
	$(call install_missing,$(PKG_DEPS))

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dtests=false

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

$(TEST_BUILD)/build.ninja:
	meson setup $(TEST_BUILD) --werror -Db_sanitize=address,undefined -Db_lundef=false

build-test: test-deps $(TEST_BUILD)/build.ninja
	meson compile -C $(TEST_BUILD)

# The programs of the build tree read their translations from the build's
# po/ (docs/translations.md): LANGUAGE=de make demo, or make gui-demo.
demo gui-demo bench bench-scale: export STATION_LOCALEDIR = $(CURDIR)/$(BUILD)/po

# The translations after new strings (docs/translations.md): po/station.pot
# made from the files of po/POTFILES.in, merged into every po/LANG.po of
# po/LINGUAS; then each catalogue's count of translated, fuzzy and
# untranslated messages.
po: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD) station-pot station-update-po
	@for l in $$(sed 's/#.*//' po/LINGUAS); do printf '%s: ' "po/$$l.po"; msgfmt --check --statistics -o /dev/null po/$$l.po; done

# The demo uses a PIN for the demo token and the demo operators that the
# README documents; a real station asks for them.
demo: build
	STATION_HSM_PIN=$${STATION_HSM_PIN:-123456} \
	  $(BUILD)/station/station --home $(DEMO_HOME) demo

# The Matter demo (docs/matter.md): the whole flow of `make demo` on
# Matter devices, in MATTER_DEMO_HOME: a test PAA and PAI of VID FFF1 and a
# test Certification Declaration, a batch of profiles/example-matter.profile
# on simulated devices over pseudo-terminals (DACs, factory data through
# the agent protocol's matter-1), the manifest, the lead's codes file and
# the labels. `make demo` stays the plain demo.
MATTER_DEMO_HOME ?= $(CURDIR)/matter-demo-home
.PHONY: matter-demo
matter-demo: build
	STATION_HSM_PIN=$${STATION_HSM_PIN:-123456} \
	  $(BUILD)/station/station --home $(MATTER_DEMO_HOME) demo --matter

test: build-test
	meson test -C $(TEST_BUILD) --print-errorlogs --num-processes 2

# `station bench` runs in the service (it signs with the station's CA key):
# a private stationd for DEMO_HOME while it runs.
bench: build
	@$(with_private_service); \
	STATION_OPERATOR_PIN=4444 $(BUILD)/station/station --home $(DEMO_HOME) --operator admin \
	  bench --units 2560 --slots 64

# A long run (issue 16): the rate of the first and the last tenth of the
# units, the database's bytes per unit and the service's peak RSS.
# BENCH_UNITS=1000000 for the full figure (docs/testing.md, Benchmarks).
BENCH_UNITS ?= 50000
.PHONY: bench-scale
bench-scale: build
	@$(with_private_service); \
	STATION_OPERATOR_PIN=4444 $(BUILD)/station/station --home $(DEMO_HOME) --operator admin \
	  bench --units $(BENCH_UNITS) --slots 8

# The GUI on a large database (issue 16): tests/bench/gui-scale on a copy of
# BENCH_GUI_HOME, a demo home holding a large batch made by st-gen-db
# (docs/testing.md, "A large database" and "The GUI on a large database").
BENCH_GUI_HOME ?= /dev/shm/h1m
.PHONY: bench-gui
bench-gui: build
	tests/bench/gui-scale $(BUILD) $(BENCH_GUI_HOME)

$(FUZZ_BUILD)/build.ninja:
	CC=clang-14 meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false -Dgui=disabled \
	  -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link

fuzz: test-deps $(FUZZ_BUILD)/build.ninja
	meson compile -C $(FUZZ_BUILD)
	FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run-fuzzers $(FUZZ_BUILD) $(FUZZ_TARGETS)

# The GUI on the demo home with 3 simulated sockets of 4 devices each.
# Demo operators (PINs): op 1111, lead 2222, qa 3333, admin 4444.
.PHONY: gui-demo
# The GUI is a client of the station service: a private stationd serves
# DEMO_HOME (DEMO_HOME/stationd.sock) for as long as the GUI runs. The GUI
# offers the profiles of the station's profile folder alone: the demo copies
# the examples into DEMO_HOME/profiles (a real station's admin puts its own). The HSM
# PIN goes only to the two commands that hand it to the service (setup demo,
# unlock); station-gui never sees it.
gui-demo: build
	@$(with_private_service); \
	mkdir -p $(DEMO_HOME)/profiles; \
	for p in profiles/*.profile; do [ -e $(DEMO_HOME)/$$p ] || cp $$p $(DEMO_HOME)/$$p; done; \
	args=; for i in 1 2 3; do \
	  $(BUILD)/programmer/devsim/station-devsim --units 4 --seed $$(( $$$$ + i )) > $$tmp/port$$i & \
	  echo $$! >> $$tmp/pids; \
	  while [ ! -s $$tmp/port$$i ]; do sleep 0.1; done; \
	  args="$$args --port $$(head -n1 $$tmp/port$$i)"; \
	done; \
	echo "Sockets:$$args"; echo "Demo operators (PIN): op 1111, lead 2222, qa 3333, admin 4444"; \
	$(BUILD)/gui/station-gui --home $(DEMO_HOME) $$args

# The Debian package: dpkg-buildpackage in a clean copy of the tree (the
# files git tracks or would track, none of the build folders), the .deb in
# $(DEB_OUT), then lintian on it: errors fail, warnings are printed.
DEB_OUT  ?= $(CURDIR)/deb-out
DEB_WORK ?= $(CURDIR)/deb-work
deb: pkg-deps
	rm -rf $(DEB_WORK) && mkdir -p $(DEB_WORK)/station $(DEB_OUT)
	git ls-files -z --cached --others --exclude-standard | \
	  xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
	  tar --null -T - -cf - | tar -xf - -C $(DEB_WORK)/station
	cd $(DEB_WORK)/station && dpkg-buildpackage -us -uc -b
	rm -f $(DEB_OUT)/*.deb && mv $(DEB_WORK)/*.deb $(DEB_OUT)/
	mv $(DEB_WORK)/*.buildinfo $(DEB_WORK)/*.changes $(DEB_OUT)/
	rm -rf $(DEB_WORK)
	lintian --info --display-level '>=info' --fail-on error $(DEB_OUT)/*.deb
	@ls -l $(DEB_OUT)/*.deb

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD) $(DEB_WORK) $(DEB_OUT)
