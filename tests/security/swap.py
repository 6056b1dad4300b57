#!/usr/bin/env python3
"""swap.py A B COUNT INTERVAL_US STOP READY: exchange the names A and B
(renameat2 RENAME_EXCHANGE, atomic: each name always exists) COUNT times,
INTERVAL_US microseconds apart, the way a store writer racing the server
would. Stops early when the file STOP exists, always after an even number
of exchanges (so A and B end as they began); creates READY after the first
exchange. Prints the number of exchanges made."""
import ctypes
import os
import sys
import time

AT_FDCWD = -100
RENAME_EXCHANGE = 2


def main():
    a, b = sys.argv[1].encode(), sys.argv[2].encode()
    count, interval = int(sys.argv[3]), int(sys.argv[4]) / 1e6
    stop, ready = sys.argv[5], sys.argv[6]
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = libc.renameat2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                          ctypes.c_char_p, ctypes.c_uint]
    done = 0
    while done < count:
        if done % 2 == 0 and done > 0 and os.path.exists(stop):
            break
        if renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
            err = ctypes.get_errno()
            sys.exit("swap.py: renameat2: " + os.strerror(err))
        done += 1
        if done == 1:
            open(ready, "w").close()
        if interval > 0:
            time.sleep(interval)
    if done % 2:
        renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
        done += 1
    print(done)


main()
