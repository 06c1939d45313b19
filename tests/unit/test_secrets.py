"""The SASL password travels from the settings to every Kafka client without ever showing
in a repr: component configs, DoFn state and its pickled form all mask it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from pydantic import SecretStr

from newswire import wiring
from newswire.settings import KafkaSettings, PipelineSettings, Settings
from newswire.topics import client_config
from pipeline.kafka_io import PartitionRange, ReadFromKafka, WriteToKafka
from schemas.client_config import MASK, ClientConfig

PASSWORD = "hunter2-sasl"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        kafka=KafkaSettings(sasl_mechanism="PLAIN", sasl_username="newswire", sasl_password=SecretStr(PASSWORD)),
        pipeline=PipelineSettings(dedup_index=tmp_path / "dedup.sqlite3"),
    )


def test_component_configs_mask_the_sasl_password(settings: Settings) -> None:
    pipeline = wiring.pipeline_config(settings)
    ingest = wiring.ingest_config(settings)
    for shown in (repr(pipeline), repr(ingest), str(pipeline.producer_config), repr(ingest.consumer_config)):
        assert PASSWORD not in shown
        assert MASK in shown
    # ... while kafka-python still receives it through ** and Mapping parameters.
    assert {**pipeline.producer_config}["sasl_plain_password"] == PASSWORD
    assert dict(ingest.consumer_config)["sasl_plain_password"] == PASSWORD


def test_dofn_state_and_its_pickle_keep_the_password_masked(settings: Settings) -> None:
    config = wiring.pipeline_config(settings)
    write = WriteToKafka(config.producer_config, "enriched", lambda element: element)
    # Given a plain dict (as a test or another caller might), the stage still masks it.
    read = ReadFromKafka(dict(client_config(settings.kafka)), [PartitionRange("raw", 0, 0, 10)])
    for transform in (write, read):
        state = repr(vars(transform)) + repr(vars(getattr(transform, "_fn", transform)))
        assert PASSWORD not in state
    copy = pickle.loads(pickle.dumps(config.producer_config))
    assert isinstance(copy, ClientConfig) and PASSWORD not in repr(copy)
    assert copy["sasl_plain_password"] == PASSWORD


def test_the_dead_letter_writer_keeps_both_its_configs_masked(settings: Settings) -> None:
    from pipeline.dead_letter_writer import WriteDeadLetters

    plain = dict(wiring.producer_config(settings))  # as any caller might pass it
    writer = WriteDeadLetters(plain, "dead-letter", max_record_bytes=1_000_000, clock_skew_s=1.0)
    state = repr(vars(writer._fn))
    assert PASSWORD not in state and state.count(MASK) == 2
    assert pickle.loads(pickle.dumps(writer._fn))._consumer_config["sasl_plain_password"] == PASSWORD


def test_a_plain_copy_of_a_client_config_still_masks_the_password(settings: Settings) -> None:
    # Code that copies the config into a dict of its own (a consumer's state, a reporter's)
    # keeps the secret masked, and kafka-python still gets the password as a str.
    copy = dict(wiring.consumer_config(settings))
    assert PASSWORD not in repr(copy) and PASSWORD not in repr({**copy, "group_id": "g"})
    secret = copy["sasl_plain_password"]
    assert isinstance(secret, str) and secret == PASSWORD and secret.encode() == PASSWORD.encode()
    assert PASSWORD not in repr(pickle.loads(pickle.dumps(copy)))


def test_client_config_is_frozen() -> None:
    config = ClientConfig({"bootstrap_servers": ["127.0.0.1:9092"]})
    with pytest.raises(TypeError):
        config["client_id"] = "other"  # type: ignore[index]  # that it is refused is the test
    assert config.with_options(client_id="x")["client_id"] == "x" and "client_id" not in config
