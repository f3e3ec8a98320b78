"""Operations on a running or stopped app: consumer lag, replay from a point in time, reset.

These functions talk to Kafka through :mod:`streamer.kafka` and never import a Kafka client
library themselves. The ``streamer lag | replay | reset`` commands are thin wrappers.
"""
