"""``python -m lessons``: the course server, every lesson mounted. ``--help`` lists the flags."""

from lessons.cli import main

main()
