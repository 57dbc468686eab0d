/* Emulated CMSIS-DAP v2 probes for tests, served to libusb through umockdev
 * (the ioctl handler API of UMockdevTestbed). Our libusb code runs
 * unchanged: it enumerates the probe in the mocked sysfs, opens
 * /dev/bus/usb/BBB/DDD, reads its string descriptors with control
 * transfers, claims the CMSIS-DAP interface and moves DAP command packets
 * with bulk transfers. Behind each probe sits a simulated STM32F4 (SWD-DP,
 * AHB-AP, SRAM, uid, flash and its controller): programmer/devsim/st-simdap.h.
 *
 * The process must run under umockdev's preload library (`umockdev-wrapper
 * PROGRAM`; the meson tests do this). Child processes inherit the
 * environment (UMOCKDEV_DIR, LD_PRELOAD) and see the same probes, so a
 * test can run `station batch run --port cmsis-dap:SERIAL` as a child while
 * the probes are served here: they are served from a thread of the
 * testbed's own, so the caller may block (g_spawn_sync, waitpid).
 *
 * This contract is shared by tests/cmsis-dap/ (the emulator) and the
 * cmsis-dap backend's tests; change it only together. */
#pragma once

#include <glib.h>
#include "st-simdap.h"

G_BEGIN_DECLS

typedef struct _StDapTestbed StDapTestbed;

/* Fails (NOT_SUPPORTED) when the process is not under umockdev's preload:
 * the caller then skips (exit 77). */
StDapTestbed *st_dap_testbed_new (GError **error);
/* Adds a probe ("CMSIS-DAP" in its product and interface strings, USB
 * serial @serial, VID:PID c251:f00a unless @config says otherwise) with a
 * simulated target configured by @config. The returned simulator belongs to
 * the testbed; it may be inspected (st_sim_dap_get_*) between transfers. */
StSimDap *st_dap_testbed_add_probe (StDapTestbed *tb, const char *serial,
                                    const StSimDapConfig *config, GError **error);
/* For GTest programs: a testbed, or NULL after g_test_skip() when the
 * process is not under umockdev's preload (any other failure fails the
 * test); and st_dap_testbed_add_probe() that must succeed. */
StDapTestbed *st_dap_testbed_new_or_skip (void);
StSimDap *st_dap_testbed_add_probe_checked (StDapTestbed *tb, const char *serial,
                                            const StSimDapConfig *config);
/* Stops serving, removes the probes and the mocked tree. Close every
 * libusb handle on the probes (and let child processes end) first. */
void st_dap_testbed_free (StDapTestbed *tb);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StDapTestbed, st_dap_testbed_free)

G_END_DECLS
