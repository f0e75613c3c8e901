import pytest

from porapp.celery import app

pytestmark = pytest.mark.django_db


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_names_the_broker_when_it_is_down(client, unused_tcp_port, monkeypatch):
    # A real connection attempt to a port where nothing listens, with a password in the URL.
    # Celery reads CELERY_BROKER_URL from the environment before its own config: set both.
    bad = f"redis://:hunter2@127.0.0.1:{unused_tcp_port}/0"
    # Patch the config before the environment: reading broker_url prefers the environment,
    # and monkeypatch restores whatever it read first.
    monkeypatch.setattr(app.conf, "broker_url", bad)
    monkeypatch.setenv("CELERY_BROKER_URL", bad)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"]["ok"] is True
    assert "hunter2" not in response.content.decode()


def test_healthz_get_only(client):
    assert client.post("/healthz").status_code == 405


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
