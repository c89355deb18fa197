"""The course's benchmarks: the figures each lesson's claims rest on. Run ``python -m bench``."""
