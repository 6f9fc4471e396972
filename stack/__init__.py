"""Operating the services: the local stack's launcher (`python -m stack`), the preflight
checks every job runs before it starts, and Kafka administration."""
