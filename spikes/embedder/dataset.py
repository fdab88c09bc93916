"""Tiny labelled retrieval set for the embedder spike: homelab notes and paraphrased questions.

DOCS: 30 short memories (10-30 words) such as a homelab's AI programs would store.
QUERIES: 30 questions, each a paraphrase of exactly one doc (index in QUERIES[i][1]); the wording
avoids reusing the doc's key terms where a person naturally would, so keyword search has to guess.
"""

DOCS = [
    # 0
    "The Raspberry Pi 5 in the garage runs Pi-hole as the DNS server for the whole house network.",
    # 1
    "Nightly backups of the NAS are pushed to Backblaze B2 with restic at 3am and pruned weekly.",
    # 2
    "The Proxmox host has 64 GB of RAM and runs six virtual machines plus a few LXC containers.",
    # 3
    "Home Assistant controls the Zigbee lights through a Sonoff USB dongle plugged into the mini PC.",
    # 4
    "The UPS in the rack gives about twenty minutes of runtime and triggers a clean shutdown via NUT.",
    # 5
    "Grafana dashboards read from Prometheus, which scrapes node_exporter on every machine every 15 seconds.",
    # 6
    "WireGuard on the router lets phones and laptops reach the home network securely when travelling.",
    # 7
    "The ZFS pool on the NAS is a mirror of two 8 TB disks and a scrub runs on the first Sunday each month.",
    # 8
    "Ollama on the desktop with the RTX 3090 serves llama3 8B to the other machines over the LAN.",
    # 9
    "Jellyfin streams the movie library to the living room TV and transcodes with Intel Quick Sync.",
    # 10
    "Let's Encrypt certificates for all internal services are renewed automatically by Traefik using DNS challenge.",
    # 11
    "The garden soil moisture sensor on the ESP32 reports over MQTT to Mosquitto every ten minutes.",
    # 12
    "Nextcloud holds the family photos and calendars; its database is PostgreSQL running in Docker.",
    # 13
    "The 10 gigabit switch connects the NAS and the Proxmox host; everything else is on 1 gigabit.",
    # 14
    "Vaultwarden stores all household passwords and is only reachable from inside the VPN.",
    # 15
    "The CPU temperature of the Pi 5 stays under 60 degrees with the active cooler fan installed.",
    # 16
    "Watchtower updates the Docker containers every Saturday night, except the database containers which are pinned.",
    # 17
    "Uptime Kuma pings every service each minute and sends alerts to a Telegram bot when something goes down.",
    # 18
    "The guest Wi-Fi is on VLAN 30 and cannot see any devices on the main LAN.",
    # 19
    "Paperless-ngx scans and OCRs incoming letters from the shared inbox folder on the NAS.",
    # 20
    "The electricity meter reading shows the homelab rack draws about 180 watts on average.",
    # 21
    "Gitea hosts private git repositories and runs CI jobs with a self-hosted act runner.",
    # 22
    "The Frigate NVR records the three outdoor cameras and uses a Coral TPU for person detection.",
    # 23
    "Syncthing keeps the notes folder in sync between the laptop, the phone and the NAS.",
    # 24
    "The old ThinkPad with a broken screen now runs as a headless Kubernetes node with k3s.",
    # 25
    "SMART reports show disk sda on the NAS has a growing count of reallocated sectors.",
    # 26
    "The fan curve on the server was lowered at night so the rack is quieter in the bedroom next door.",
    # 27
    "Immich backs up phone pictures automatically and does face recognition on the server.",
    # 28
    "The smart thermostat lowers the heating to 17 degrees when everyone has left the house.",
    # 29
    "An SSD cache in front of the spinning disks speeds up the small random reads of the VMs.",
]

QUERIES = [
    ("which device blocks ads and resolves names for the house?", 0),
    ("where do the storage server's copies go offsite every night?", 1),
    ("how much memory does the hypervisor machine have?", 2),
    ("what radio stick lets the home automation talk to the bulbs?", 3),
    ("how long can the servers stay up on battery during a power cut?", 4),
    ("what collects the metrics shown on the monitoring graphs?", 5),
    ("how do I get into my home network from a hotel?", 6),
    ("how often is the disk array checked for data corruption?", 7),
    ("which computer runs the local language model for the others?", 8),
    ("what plays films on the television?", 9),
    ("who renews the TLS certs of the internal web apps?", 10),
    ("how does the plant watering probe send its data?", 11),
    ("where are the family pictures and shared calendar kept?", 12),
    ("which machines have the fast network link?", 13),
    ("where is the password manager hosted?", 14),
    ("is the little single-board computer running hot?", 15),
    ("what upgrades the container images automatically each weekend?", 16),
    ("how do I get notified when a service is offline?", 17),
    ("can visitors on the wireless reach my computers?", 18),
    ("what digitizes the paper mail we receive?", 19),
    ("how much power does the server rack consume?", 20),
    ("where is my own code hosting with pipelines?", 21),
    ("what records the security cameras outside and spots people?", 22),
    ("how are my notes kept the same across devices?", 23),
    ("what happened to the old laptop with the cracked display?", 24),
    ("is one of the hard drives starting to fail?", 25),
    ("why is the server less noisy in the evening?", 26),
    ("what uploads the photos from my phone and recognizes faces?", 27),
    ("what turns the heating down when nobody is home?", 28),
    ("how are virtual machine disk reads made faster?", 29),
]

assert len(DOCS) == 30 and len(QUERIES) == 30
assert sorted(i for _, i in QUERIES) == list(range(30))

# Throughput corpus: short texts of 10-30 words, built deterministically from the docs and
# queries with varied suffixes so the tokenizer cache cannot make repeats free.
_SUFFIXES = [
    "",
    " Checked again this week.",
    " Noted by the observer on node two.",
    " This was confirmed after the last reboot of the cluster.",
    " Remember to review it during the monthly maintenance window.",
]


def short_texts(n: int) -> list[str]:
    base = DOCS + [q for q, _ in QUERIES]
    out = []
    i = 0
    while len(out) < n:
        t = base[i % len(base)] + _SUFFIXES[(i // len(base)) % len(_SUFFIXES)] + f" #{i}"
        w = t.split()
        if len(w) < 10:
            w += "Logged by the assistant on the home server today.".split()
        out.append(" ".join(w[:30]))
        i += 1
    return out
