"""Warn on the phone when a filesystem is nearly full.

Runs every ten minutes from cron on each server. For every mount point listed in MOUNTS it
compares the used fraction with THRESHOLD and, when it is above, posts a message to a
self-hosted ntfy topic, which the phone app shows as a push notification. A marker file
per mount point stops it from repeating the same warning more than once a day.
"""

from __future__ import annotations

import shutil
import socket
import time
import urllib.request
from pathlib import Path

MOUNTS = ["/", "/var/lib/docker", "/tank"]
THRESHOLD = 0.90  # warn above 90 % used
NTFY_URL = "http://ntfy.lan/homelab-alerts"
QUIET_SECONDS = 24 * 3600
STATE_DIR = Path("/var/tmp/disk-alert")


def used_fraction(mount: str) -> float:
    usage = shutil.disk_usage(mount)
    return usage.used / usage.total


def recently_warned(mount: str) -> bool:
    marker = STATE_DIR / mount.strip("/").replace("/", "_")
    if marker.exists() and time.time() - marker.stat().st_mtime < QUIET_SECONDS:
        return True
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return False


def notify(text: str) -> None:
    request = urllib.request.Request(NTFY_URL, data=text.encode(), method="POST")
    request.add_header("Title", f"disk space on {socket.gethostname()}")
    with urllib.request.urlopen(request, timeout=10):
        pass


def main() -> None:
    for mount in MOUNTS:
        fraction = used_fraction(mount)
        if fraction > THRESHOLD and not recently_warned(mount):
            notify(f"{mount} is {fraction:.0%} full")


if __name__ == "__main__":
    main()
