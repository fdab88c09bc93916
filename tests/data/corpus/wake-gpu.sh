#!/bin/sh
# Wake the GPU box before sending it work, and wait until Ollama answers.
#
# The box suspends itself when idle. Its network card keeps listening for a magic packet:
# enabled once with `ethtool -s enp5s0 wol g` and made permanent by a systemd .link file
# (WakeOnLan=magic). The BIOS option "wake on PCI-E" must be on as well.

MAC="a8:a1:59:12:34:56"
HOST="gpu.lan"
PORT=11434
TIMEOUT=90

wakeonlan "$MAC" >/dev/null

waited=0
until curl -fs "http://$HOST:$PORT/api/version" >/dev/null; do
    if [ "$waited" -ge "$TIMEOUT" ]; then
        echo "the GPU box did not come up within $TIMEOUT seconds" >&2
        exit 1
    fi
    sleep 2
    waited=$((waited + 2))
done
echo "GPU box is up after ${waited}s"
