"""The NATS layer: the client, the bus, the publisher, the stream topology and the
supervised nats-server process."""
