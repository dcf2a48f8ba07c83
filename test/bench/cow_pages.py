#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""cow_pages.py MASTER_PID WORKER_PID: which of a fork child's heap pages it
holds alone (copied from its parent at a write, or new), and how many 8-byte
words of each copied page differ from the parent's page now. A page copied
with no word changed was written and written back: a reference count taken
and dropped, a lock taken and released. For bench_scale.sh's BENCH_PROBE;
needs root (/proc/PID/pagemap and /proc/PID/mem of both)."""
import collections
import struct
import sys


def heap(pid):
    with open('/proc/%d/maps' % pid) as f:
        for line in f:
            if line.rstrip().endswith('[heap]'):
                lo, hi = line.split()[0].split('-')
                return int(lo, 16), int(hi, 16)
    sys.exit('no [heap] mapping in process %d' % pid)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    master, worker = int(sys.argv[1]), int(sys.argv[2])
    _, mhi = heap(master)
    lo, hi = heap(worker)
    copied = new = 0
    changed = collections.Counter()
    with open('/proc/%d/pagemap' % worker, 'rb') as pm, \
            open('/proc/%d/mem' % master, 'rb') as mm, \
            open('/proc/%d/mem' % worker, 'rb') as wm:
        for addr in range(lo, hi, 4096):
            pm.seek(addr // 4096 * 8)
            e = struct.unpack('<Q', pm.read(8))[0]
            if not (e >> 63) & 1 or not (e >> 56) & 1:
                continue  # not present, or shared
            if addr >= mhi:
                new += 1
                continue
            copied += 1
            try:
                mm.seek(addr)
                wm.seek(addr)
                x, y = mm.read(4096), wm.read(4096)
            except OSError:
                continue
            d = sum(1 for i in range(0, 4096, 8) if x[i:i + 8] != y[i:i + 8])
            changed['0' if d == 0 else '1-8' if d <= 8 else '9-64' if d <= 64
                    else '65-512'] += 1
    print('worker %d heap: %d pages copied from master %d (%d KiB), '
          '%d new (%d KiB)' % (worker, copied, master, copied * 4, new,
                               new * 4))
    print('  copied pages by words changed since: %s'
          % ', '.join('%s: %d' % (k, changed[k])
                      for k in ('0', '1-8', '9-64', '65-512')))


main()
