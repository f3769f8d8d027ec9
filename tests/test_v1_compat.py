"""Format version 1 still replays with the decisions it gave before format version 2."""

from __future__ import annotations

import hashlib
import lzma
from pathlib import Path

import pytest

from simulator.recording import RecordingReader
from simulator.replay import replay

FIXTURE = Path(__file__).parent / "fixtures" / "sample_v1.msgpack.xz"
V1_SHA256 = "1a38869bf86636be0deebc049f58a6bd93c0c1b28cbaff5dbadc691c65ea507e"
# The replay digest of the v1 sample under the default config, computed by the code of
# 69375bb (before format version 2); see tests/fixtures/README.md. Issue 12 added the
# exact "money" strings to the report (which the digest covers), with the same decisions:
# c88e2057... became 43763f7f...; then orders filling at their arrival time on the book as
# it stood then (not on the next update's book) changed fills on the sample: 9596384b....
V1_DIGEST = "9596384bf03b0e403d04b1b10063c8843689b83e370a367f702331bf9cda69a1"


@pytest.fixture(scope="module")
def v1_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = lzma.decompress(FIXTURE.read_bytes())
    assert hashlib.sha256(data).hexdigest() == V1_SHA256
    path = tmp_path_factory.mktemp("v1") / "sample_v1.msgpack"
    path.write_bytes(data)
    return path


def test_the_fixture_is_a_version_1_recording(v1_sample: Path) -> None:
    with RecordingReader(v1_sample) as reader:
        assert reader.header.version == 1


def test_a_version_1_recording_replays_with_the_pinned_digest(v1_sample: Path) -> None:
    report = replay(v1_sample)
    assert report["digest"] == V1_DIGEST
    assert report["messages"] == 24_294
    assert report["orders"] == 12 and report["fills"] == 7
    assert report["malformed"] == {
        "level2_bad_value": 1,
        "tickerV2_missing_field": 1,
        "unknown_topic": 1,
        "ws_not_json": 1,
    }


def test_the_version_2_sample_is_the_same_session_and_gives_the_same_decisions() -> None:
    # recordings/sample.msgpack is the v1 sample's session written as raw frames (format 2):
    # decoding the frames must give the engine what the v1 maps gave it.
    sample = Path(__file__).resolve().parents[1] / "recordings" / "sample.msgpack"
    with RecordingReader(sample) as reader:
        assert reader.header.version == 2
    assert replay(sample)["digest"] == V1_DIGEST
