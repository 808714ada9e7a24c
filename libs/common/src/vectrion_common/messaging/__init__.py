"""RabbitMQ wiring shared by every service: topology, broker, outbox relay, inbox."""
