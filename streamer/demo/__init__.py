"""The fraud-detection demo: synthetic transactions with ground truth, scoring, and the
``streamer demo`` run (a local broker, the fraud topology on a worker group, live output)."""
