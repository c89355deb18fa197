"""streamlib.testing calls apps like a server and refuses what PEP 3333 forbids."""

import pytest

from streamlib import call_app, make_environ


def test_make_environ_carries_path_query_headers_and_body():
    environ = make_environ("/a/b?x=1", "POST", {"Range": "bytes=0-1", "Content-Type": "a/b"}, b"hi")
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/a/b", "x=1")
    assert (environ["HTTP_RANGE"], environ["CONTENT_TYPE"]) == ("bytes=0-1", "a/b")
    assert environ["wsgi.input"].read() == b"hi"
    assert environ["CONTENT_LENGTH"] == "2"


def test_the_body_is_pulled_piece_by_piece_and_closed():
    closed = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def pieces():
            try:
                yield b"one"
                yield b"two"
            finally:
                closed.append(True)

        return pieces()

    response = call_app(app)
    assert response.next_piece() == b"one"
    assert closed == []
    assert response.read() == b"two"
    assert closed == [True]


def test_a_hop_by_hop_header_is_refused():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "keep-alive")])
        return [b""]

    with pytest.raises(AssertionError, match="hop-by-hop"):
        call_app(app)


def test_a_str_body_is_refused_by_the_validator():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["not bytes"]

    response = call_app(app)
    with pytest.raises(AssertionError, match="non-bytestring"):
        response.read()
