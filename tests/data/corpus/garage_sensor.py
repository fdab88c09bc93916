"""Read the garage temperature probe and publish it to MQTT once a minute.

The probe is a DS18B20 on the one-wire bus (GPIO 4, enabled with `dtoverlay=w1-gpio` in the
Pi's config.txt). The kernel exposes each probe as a folder under /sys/bus/w1/devices whose
name starts with "28-"; its `temperature` file holds millidegrees Celsius.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

W1_DEVICES = Path("/sys/bus/w1/devices")
BROKER = "mqtt.lan"
TOPIC = "home/garage/temperature"
INTERVAL = 60.0


def probe_file() -> Path:
    for folder in sorted(W1_DEVICES.glob("28-*")):
        return folder / "temperature"
    raise SystemExit("no DS18B20 probe found: is the w1-gpio overlay enabled?")


def read_celsius(path: Path) -> float:
    return int(path.read_text().strip()) / 1000.0


def publish(payload: str) -> None:
    """Send one retained message with the mosquitto clients' command line tool."""
    command = ["mosquitto_pub", "-h", BROKER, "-t", TOPIC, "-r", "-m", payload]
    subprocess.run(command, check=False, timeout=10)


def main() -> None:
    path = probe_file()
    while True:
        reading = {"celsius": round(read_celsius(path), 2), "at": int(time.time())}
        publish(json.dumps(reading))
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
