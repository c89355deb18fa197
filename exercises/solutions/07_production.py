"""Exercise 07: a ``gunicorn.conf.py`` that serves streams in production.

A gunicorn configuration file is plain Python: each setting is a variable named as in
gunicorn's documentation (``worker_class``, ``threads``...). This file is one. The grader
starts a real gunicorn with it, serving the course's ``/ticks`` and ``/events``::

    gunicorn -c exercises/07_production.py --bind 127.0.0.1:8000 lessons.wsgi:app

The values below are gunicorn's defaults, which suit short requests and starve streams.
(One gunicorn habit to know: ``worker_class = "sync"`` with ``threads`` above 1 quietly
runs ``gthread`` instead.)

Read first: lesson 07, 'Worker classes' and 'Shutdown' (the page ``/lessons/7``), and
notebook 07, 'Sync workers: one stream at a time'.

Task 1. Hold 200 streams at once in ONE worker process (keep ``workers = 1``): 200 clients
        of ``/events`` connect together and every one gets every event, none waiting.
Task 2. Let a stream run longer than ``timeout`` without its worker being killed. (The
        grader starts gunicorn with ``--timeout 2`` and reads a 4-second stream.)
Task 3. Make deploys quick but kind: on SIGTERM, gunicorn must be gone within 5 seconds
        even with streams open, yet let a request already in flight that needs under a
        second still finish.

Grade your work:   python -m pytest exercises/test_07_production.py
"""

workers = 1
# Task 1 and 2: a thread per stream, and a main loop that checks in with the arbiter while
# the threads stream. ("gevent" with worker_connections >= 200 passes too.)
worker_class = "gthread"
threads = 256  # more than the streams we expect at once; each idle thread costs little
worker_connections = 1000
timeout = 30
# Task 3: streams never finish by themselves, so a deploy waits this long and cuts them;
# clients reconnect with Last-Event-ID. Long enough for a short request to finish.
graceful_timeout = 3
