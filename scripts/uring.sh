#!/usr/bin/env bash
# uring.sh - turns on FUSE over io_uring in the running kernel, which lsmfs
# uses when it is on (fs/uring.c: one request queue per CPU, served on that
# CPU; small requests answer about twice as fast as through /dev/fuse).
#
# The kernel has the feature since Linux 6.14 (CONFIG_FUSE_IO_URING) but
# ships it off: the fuse module's enable_uring parameter.  It only allows
# daemons that ask for it to use it; other FUSE filesystems are unaffected.
# Needs root; without root, or on a kernel without the parameter, it says
# so and changes nothing (lsmfs then uses /dev/fuse).  To keep it on across
# reboots: "options fuse enable_uring=1" in /etc/modprobe.d/ (fuse built as
# a module) or fuse.enable_uring=1 on the kernel command line.
set -u

param=/sys/module/fuse/parameters/enable_uring
if [ ! -e "$param" ]; then
	echo "uring.sh: this kernel has no FUSE over io_uring ($param): lsmfs uses /dev/fuse"
	exit 0
fi
case $(cat "$param") in
Y | 1) exit 0 ;;
esac
if [ "$(id -u)" -ne 0 ] || ! echo Y >"$param" 2>/dev/null; then
	echo "uring.sh: FUSE over io_uring is off and only root can turn it on (echo Y >$param): lsmfs uses /dev/fuse"
	exit 0
fi
echo "uring.sh: turned on FUSE over io_uring ($param)"
