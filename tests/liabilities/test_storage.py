"""Where snapshot files live: the local directory by default, and S3-compatible object storage
(a real moto server on loopback, reached over HTTP by django-storages and boto3)."""

from __future__ import annotations

import hashlib

import boto3
import pytest

from audits import liabilities, liability_files
from audits.core.liabilities import nonce_for
from audits.core.merkle import extract_proof, verify_proof
from tests.liabilities.conftest import AS_OF, GOOD, chunks

BUCKET = "porapp-liabilities-test"
PREFIX = "snapshots"


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, settings, monkeypatch, tmp_path):
    """settings.STORAGES["liabilities"] on S3 (setting STORAGES resets Django's storages)."""
    # Fake credentials from the environment, as production takes real ones.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "liabilities": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": moto_endpoint,
                "region_name": "us-east-1",
                "location": PREFIX,
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    }
    yield client
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for item in listed:
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _build(operator, capture):
    with capture(execute=False):
        snapshot, _ = liabilities.receive(user=operator, chunks=chunks(GOOD), as_of=AS_OF)
    built = liabilities.build(snapshot.pk)
    assert built.status == "published", built.failure
    return built


@pytest.mark.django_db
def test_snapshot_on_s3_then_proof_through_the_read_cache(
    s3, operator, settings, tmp_path, django_capture_on_commit_callbacks
):
    from django.core.files.storage import storages

    assert type(storages["liabilities"]).__name__ == "S3Storage"
    built = _build(operator, django_capture_on_commit_callbacks)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    tree = built.trees.get(asset__code="AAPLx")
    assert f"{PREFIX}/{built.raw_name}" in keys
    assert f"{PREFIX}/{tree.file_name}" in keys
    raw = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{built.raw_name}")["Body"].read()
    assert raw == GOOD and hashlib.sha256(raw).hexdigest() == built.raw_sha256

    # Another machine (a web server): an empty cache, so the first read downloads it.
    settings.LIABILITY_CACHE_DIR = tmp_path / "web-cache"
    cached = liability_files.cache_path(tree.file_sha256)
    assert not cached.exists()
    path = liability_files.local_tree(tree.file_name, tree.file_sha256)
    assert path == cached and cached.exists()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tree.file_sha256
    # Then a hit: read locally even once the object store no longer has it.
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/{tree.file_name}")
    assert liability_files.local_tree(tree.file_name, tree.file_sha256) == cached
    proof = extract_proof(path, account_id="u-1001", nonce=nonce_for(bytes(built.secret), "u-1001"))
    assert verify_proof(proof).valid and proof["root"]["hash"] == tree.root_hash


@pytest.mark.django_db
def test_substituted_object_is_never_used(
    s3, operator, settings, tmp_path, django_capture_on_commit_callbacks
):
    built = _build(operator, django_capture_on_commit_callbacks)
    tree = built.trees.get(asset__code="MSFTx")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{tree.file_name}", Body=b"not the tree")
    settings.LIABILITY_CACHE_DIR = tmp_path / "web-cache"
    with pytest.raises(OSError, match="does not match its SHA-256"):
        liability_files.local_tree(tree.file_name, tree.file_sha256)
    assert list((tmp_path / "web-cache").iterdir()) == []


@pytest.mark.django_db
def test_local_directory_by_default(
    operator, settings, liability_storage, django_capture_on_commit_callbacks
):
    built = _build(operator, django_capture_on_commit_callbacks)
    store = liability_storage / "liabilities"
    assert (store / built.raw_name).read_bytes() == GOOD
    for tree in built.trees.all():
        assert hashlib.sha256((store / tree.file_name).read_bytes()).hexdigest() == tree.file_sha256
        # Built here: already in the cache, linked or copied, the same bytes.
        cached = liability_files.cache_path(tree.file_sha256)
        assert cached.read_bytes() == (store / tree.file_name).read_bytes()
