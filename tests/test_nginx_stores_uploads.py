"""Lesson 11's production pattern: nginx stores the upload, the app renames it into place.

A real nginx (``lab.nginx.nginx_stores_uploads``) in front of the course; the app takes the
file with ``streamlib.uploads.take_proxy_stored``. And the attacks on it: a client that
names a file itself, through nginx or straight to the app; a path outside nginx's folder; a
link where the file should be; a body cut off before its end.
"""

import base64
import hashlib
import os
import secrets
import socket
import time
from pathlib import Path

import pytest
import requests
from real_programs import need

from lab import free_port, serve
from lab.certs import default_folder
from lab.nginx import nginx_location, nginx_stores_uploads, spawn_nginx
from lessons import load_lesson, spawn_course
from lessons.course import build_app
from streamlib.uploads import take_proxy_stored


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(nginx's URL, the course's URL, the upload folder, nginx's incoming folder, secret)."""
    need("nginx", "nginx-light")
    uploads = tmp_path_factory.mktemp("uploads")
    incoming = uploads / ".incoming"
    incoming.mkdir(mode=0o700)
    secret = secrets.token_urlsafe(24)
    settings = {"course.uploads": str(uploads), "course.proxy_secret": secret}
    app = build_app([load_lesson("11").LESSON], settings=settings)
    with serve(app) as course:
        front = nginx_stores_uploads(course, incoming, secret, "8m")
        with spawn_nginx(front + "\n" + nginx_location(course, http11=True)) as nginx:
            yield nginx.url, course, uploads, incoming, secret


def test_nginx_stores_the_body_and_the_app_renames_it_into_place(stack):
    front, _course, uploads, incoming, _secret = stack
    data = os.urandom(5_000_000)
    first = requests.put(f"{front}/uploads/big.bin", data=data, timeout=10)
    again = requests.put(f"{front}/uploads/big.bin", data=data[:1000], timeout=10)
    assert (first.status_code, first.json()["size"], first.json()["sha256"]) == (
        201,
        5_000_000,
        None,  # the app read none of it: nginx hashes nothing
    )
    assert again.status_code == 200 and (uploads / "big.bin").read_bytes() == data[:1000]
    assert list(incoming.iterdir()) == []


def test_a_content_digest_is_checked_before_the_file_takes_its_place(stack):
    front, _course, uploads, incoming, _secret = stack
    data = os.urandom(300_000)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    right = requests.put(
        f"{front}/uploads/checked.bin",
        data=data,
        headers={"Content-Digest": f"sha-256=:{digest}:"},
        timeout=10,
    )
    wrong = requests.put(
        f"{front}/uploads/checked.bin",
        data=data[::-1],
        headers={"Content-Digest": f"sha-256=:{digest}:"},
        timeout=10,
    )
    assert right.status_code == 201 and right.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert wrong.status_code == 400 and (uploads / "checked.bin").read_bytes() == data
    assert list(incoming.iterdir()) == []  # nginx removed the refused body (clean)


def test_a_client_cannot_name_a_file_through_nginx(stack, tmp_path):
    front, _course, uploads, _incoming, secret = stack
    victim = tmp_path / "secret.txt"
    victim.write_text("not yours")
    forged = {"X-Upload-File": str(victim), "X-Upload-Secret": secret}
    put = requests.put(f"{front}/uploads/forged.bin", data=b"mine", headers=forged, timeout=10)
    post = requests.post(f"{front}/uploads/forged2.bin", headers=forged, timeout=10)
    assert put.status_code == 201 and (uploads / "forged.bin").read_bytes() == b"mine"
    assert post.status_code != 500 and victim.read_text() == "not yours"


@pytest.mark.parametrize(
    ("secret_sent", "named", "expected"),
    [
        (None, "incoming", 403),  # no secret: only nginx may name a file
        ("wrong", "incoming", 403),
        ("right", "outside", 400),  # right secret, but a file outside nginx's folder
        ("right", "dotdot", 400),
        ("right", "link", 400),  # a link in nginx's folder to a file elsewhere
    ],
)
def test_straight_to_the_app_a_named_file_is_refused_and_left_alone(
    stack, tmp_path, secret_sent, named, expected
):
    _front, course, uploads, incoming, secret = stack
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"keep me")
    link = incoming / "0000099999"
    link.unlink(missing_ok=True)
    link.symlink_to(elsewhere)
    path = {
        "incoming": incoming / "0000012345",
        "outside": elsewhere,
        "dotdot": incoming / ".." / ".." / elsewhere.name,
        "link": link,
    }[named]
    headers = {"X-Upload-File": str(path)}
    if secret_sent:
        headers["X-Upload-Secret"] = secret if secret_sent == "right" else "wrong"
    try:
        answer = requests.put(f"{course}/uploads/taken.bin", headers=headers, timeout=10)
    finally:
        link.unlink()
    assert answer.status_code == expected, answer.text
    assert elsewhere.read_bytes() == b"keep me" and not (uploads / "taken.bin").exists()


def test_a_body_cut_off_before_its_end_leaves_nothing(stack):
    front, _course, uploads, incoming, _secret = stack
    port = int(front.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"PUT /uploads/cut.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n"
        )
        sock.sendall(b"x" * 300_000)
    deadline = time.monotonic() + 5
    while list(incoming.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(incoming.iterdir()) == [] and not (uploads / "cut.bin").exists()


def test_take_proxy_stored_without_a_secret_configured_refuses_everything(tmp_path):
    from werkzeug.exceptions import Forbidden

    incoming = tmp_path / ".incoming"
    incoming.mkdir()
    (incoming / "0000000001").write_bytes(b"body")
    environ = {"HTTP_X_UPLOAD_FILE": str(incoming / "0000000001"), "HTTP_X_UPLOAD_SECRET": ""}
    with pytest.raises(Forbidden):
        take_proxy_stored(environ, tmp_path / "a.bin", incoming, "")
    assert take_proxy_stored({}, tmp_path / "a.bin", incoming, "s") is None
    assert (incoming / "0000000001").exists() and not Path(tmp_path / "a.bin").exists()


@pytest.mark.live
@pytest.mark.parametrize("server", [(), ("--server", "gunicorn", "--worker-class", "gevent")])
def test_the_course_with_https_and_nginx_storing_uploads(server, tmp_path):
    """``python -m lessons --https --nginx-stores-uploads``: the flag a learner types."""
    need("nginx", "nginx-light")
    https_port = free_port()
    flags = ("--https", "--https-port", str(https_port), "--nginx-stores-uploads")
    data = os.urandom(2_000_000)
    with spawn_course(*flags, "--uploads", str(tmp_path), *server):
        answer = requests.put(
            f"https://localhost:{https_port}/uploads/via-nginx.bin",
            data=data,
            verify=default_folder() / "ca.pem",
            timeout=10,
        )
    assert answer.status_code == 201 and answer.json()["sha256"] is None, answer.text
    assert (tmp_path / "via-nginx.bin").read_bytes() == data
    assert list((tmp_path / ".incoming").iterdir()) == []


@pytest.mark.live
def test_under_gunicorn_without_nginx_a_named_file_is_refused(tmp_path):
    """A client that reaches gunicorn itself, where no nginx stores anything (no secret):
    naming a file is a 403, and the file stays where it is."""
    victim = tmp_path / "elsewhere.bin"
    victim.write_bytes(b"keep me")
    uploads = tmp_path / "uploads"
    flags = ("--server", "gunicorn", "--worker-class", "gevent", "--uploads", str(uploads))
    with spawn_course(*flags) as course:
        answer = requests.put(
            f"{course.url}/uploads/taken.bin",
            headers={"X-Upload-File": str(victim), "X-Upload-Secret": ""},
            timeout=10,
        )
    assert answer.status_code == 403, answer.text
    assert victim.read_bytes() == b"keep me" and not (uploads / "taken.bin").exists()
