"""The streamer command line."""
