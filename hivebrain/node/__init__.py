"""One node: its nats-server config, its lock, the projector and its writer process, the
leaf link, the device registry duties and liveness; `node.Node` composes them."""
