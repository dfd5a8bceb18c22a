"""What R2RClient puts on the wire and how it reads answers: ``client_requests`` (pure).

The request builders and answer readers are pure functions; ``R2RClient`` only hands their
results to the transport.
That R2R accepts these requests (and what it answers) is proven against the real server in
``tests/integration/test_client.py`` and ``tests/integration/test_client_server_behaviour.py``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from onyx.r2r_sender.client_requests import (
    build_create_form,
    build_search_body,
    check_collection_name,
    check_page_size,
    collection_id_list,
    create_read_timeout,
    ingest_result,
    settings_problems,
    strip_title_prefix,
    uuid_list,
)
from onyx.r2r_sender.errors import BridgeError, InvalidArgumentError

DOC = uuid.UUID("4f8a1d6e-0c3b-5a1e-9e1d-2b7c8d9e0f10")
COL_A = uuid.UUID("11111111-1111-4111-8111-111111111111")
COL_B = "22222222-2222-4222-8222-222222222222"
MIB = 1024 * 1024


# ---------------------------------------------------------------- collection_ids validation


def test_collection_ids_are_canonical_deduplicated_and_ordered() -> None:
    assert collection_id_list([COL_A, COL_B, str(COL_A).upper(), COL_B]) == [str(COL_A), COL_B]
    assert collection_id_list((COL_B,)) == [COL_B]
    assert collection_id_list([]) == []
    assert collection_id_list(frozenset([COL_A])) == [str(COL_A)]


@pytest.mark.parametrize("bad", [str(COL_A), COL_B.encode(), bytearray(b"x"), 42, None, {1: 2}])
def test_string_or_non_sequence_collection_ids_are_rejected(bad: object) -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"^collection_ids must be a list of UUID strings$"
    ):
        collection_id_list(bad)


@pytest.mark.parametrize("bad", [["not-a-uuid"], [str(COL_A), "f"], [123], [None]])
def test_invalid_collection_id_element_is_named(bad: list[object]) -> None:
    bad_element = next(e for e in bad if e != str(COL_A))
    with pytest.raises(InvalidArgumentError, match="collection_ids") as info:
        collection_id_list(bad)
    assert repr(bad_element) in str(info.value)


# ---------------------------------------------------------------- create_document form


def test_create_form_with_chunks_has_exactly_r2rs_fields() -> None:
    form = build_create_form(
        str(DOC),
        chunks=["first", "", "   ", "second"],
        metadata={"title": "T", "n": 1},
        collection_ids=(COL_A, COL_B, str(COL_A).upper()),
    )
    assert form == {
        "id": str(DOC),
        "metadata": json.dumps({"title": "T", "n": 1}),
        "collection_ids": json.dumps([str(COL_A), COL_B]),
        "ingestion_mode": "custom",
        "run_with_orchestration": "false",
        "chunks": json.dumps(["first", "second"]),
    }
    assert all(isinstance(value, str) for value in form.values())  # urlencoded form fields


def test_create_form_with_raw_text_keeps_the_text_verbatim() -> None:
    text = "  Ünïcode text\n\nwith paragraphs  "
    form = build_create_form(DOC, raw_text=text, metadata={}, collection_ids=[])
    assert form["raw_text"] == text
    assert "chunks" not in form
    assert form["collection_ids"] == "[]"
    assert form["metadata"] == "{}"
    assert form["id"] == str(DOC)


def test_create_form_accepts_an_uppercase_document_id_and_returns_it_canonical() -> None:
    form = build_create_form(str(DOC).upper(), raw_text="x", metadata={}, collection_ids=[])
    assert form["id"] == str(DOC)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"raw_text": "x", "chunks": ["y"]}, "exactly one of raw_text or chunks"),
        ({}, "exactly one of raw_text or chunks"),
        ({"raw_text": ""}, "raw_text is empty"),
        ({"raw_text": " \n\t"}, "raw_text is empty"),
        ({"raw_text": b"bytes"}, "raw_text must be a string"),
        ({"chunks": []}, "no non-empty chunk"),
        ({"chunks": ["", "  "]}, "no non-empty chunk"),
        ({"chunks": "just a string"}, "chunks must be a list of strings"),
        ({"chunks": ["ok", 3]}, "chunks must be a list of strings"),
        ({"raw_text": "x", "metadata": {"bad": object()}}, "JSON-serialisable"),
        ({"raw_text": "x", "metadata": {"nan": float("nan")}}, "JSON-serialisable"),
        ({"raw_text": "x", "metadata": [("a", 1)]}, "metadata must be a dict"),
        ({"raw_text": "x", "document_id": "not-a-uuid"}, "document_id is not a valid UUID"),
        ({"raw_text": "x", "collection_ids": str(COL_A)}, "collection_ids must be a list"),
    ],
)
def test_create_form_rejects_bad_input(kwargs: dict[str, Any], fragment: str) -> None:
    arguments: dict[str, Any] = {"document_id": DOC, "metadata": {}, "collection_ids": []}
    arguments.update(kwargs)
    document_id = arguments.pop("document_id")
    with pytest.raises(InvalidArgumentError, match=fragment):
        build_create_form(document_id, **arguments)


def test_create_read_timeout_scales_with_the_payload() -> None:
    raw = {"raw_text": "a" * (2 * MIB)}
    assert create_read_timeout(raw, 10.0, 20.0) == pytest.approx(10.0 + 20.0 * 2)
    # multi-byte characters count by their UTF-8 size
    assert create_read_timeout({"raw_text": "é" * MIB}, 0.0, 1.0) == pytest.approx(2.0)
    chunks_form = build_create_form(
        DOC, chunks=["b" * MIB, "c" * MIB], metadata={}, collection_ids=[]
    )
    expected = 5.0 + 60.0 * len(chunks_form["chunks"]) / MIB
    assert create_read_timeout(chunks_form, 5.0, 60.0) == pytest.approx(expected)
    assert create_read_timeout({"raw_text": "tiny"}, 30.0, 60.0) == pytest.approx(30.0, abs=0.01)


# ---------------------------------------------------------------- search body


def _settings(body: dict[str, Any] | None) -> dict[str, Any]:
    assert body is not None
    assert body["search_mode"] == "custom"
    return body["search_settings"]


def test_search_body_nests_the_collection_filter_in_and() -> None:
    body = build_search_body(
        "q", collection_ids=[COL_A, COL_B], filters={"k": {"$eq": "v"}, "n": {"$gt": 1}}, limit=5
    )
    assert body is not None and body["query"] == "q"
    settings = _settings(body)
    assert settings["filters"] == {
        "$and": [
            {"collection_ids": {"$overlap": [str(COL_A), COL_B]}},
            {"k": {"$eq": "v"}},
            {"n": {"$gt": 1}},
        ]
    }
    assert settings["graph_settings"] == {"enabled": False}
    assert settings["chunk_settings"] == {"enabled": True}
    assert settings["include_metadatas"] is True
    assert settings["include_scores"] is True
    assert settings["search_strategy"] == "vanilla"
    assert (settings["limit"], settings["offset"]) == (5, 0)
    assert (settings["use_semantic_search"], settings["use_fulltext_search"]) == (True, False)
    assert settings["use_hybrid_search"] is False
    json.dumps(body)  # must be JSON as it is


def test_search_body_collection_filter_alone_is_still_nested_in_and() -> None:
    settings = _settings(build_search_body("q", collection_ids=[COL_B, COL_B]))
    assert settings["filters"] == {"$and": [{"collection_ids": {"$overlap": [COL_B]}}]}


def test_search_body_flattens_an_and_filter() -> None:
    settings = _settings(
        build_search_body(
            "q", collection_ids=[COL_A], filters={"$and": [{"a": {"$eq": 1}}, {"b": {"$eq": 2}}]}
        )
    )
    assert settings["filters"] == {
        "$and": [
            {"collection_ids": {"$overlap": [str(COL_A)]}},
            {"a": {"$eq": 1}},
            {"b": {"$eq": 2}},
        ]
    }


def test_search_body_without_restrictions_has_empty_filters() -> None:
    assert _settings(build_search_body("q"))["filters"] == {}
    assert _settings(build_search_body("q", filters={}))["filters"] == {}


@pytest.mark.parametrize(
    ("mode", "semantic", "fulltext", "hybrid"),
    [
        ("semantic", True, False, False),
        ("fulltext", False, True, False),
        ("hybrid", True, True, True),
    ],
)
def test_search_body_modes(mode: Any, semantic: bool, fulltext: bool, hybrid: bool) -> None:
    settings = _settings(build_search_body("q", mode=mode))
    assert settings["use_semantic_search"] is semantic
    assert settings["use_fulltext_search"] is fulltext
    assert settings["use_hybrid_search"] is hybrid


def test_search_body_is_none_when_no_collection_is_allowed() -> None:
    assert build_search_body("anything", collection_ids=[]) is None
    assert build_search_body("anything", collection_ids=()) is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"query": ""}, "query must be a non-empty string"),
        ({"query": "   "}, "query must be a non-empty string"),
        ({"query": "q", "limit": 0}, "limit"),
        ({"query": "q", "limit": 1001}, "limit"),
        ({"query": "q", "limit": 2.5}, "limit"),
        ({"query": "q", "mode": "advanced"}, "mode"),
        ({"query": "q", "filters": [("a", 1)]}, "filters"),
        ({"query": "q", "collection_ids": str(COL_A)}, "collection_ids must be a list"),
        ({"query": "q", "collection_ids": ["nope"]}, "collection_ids"),
    ],
)
def test_search_body_rejects_bad_input(kwargs: dict[str, Any], fragment: str) -> None:
    query = kwargs.pop("query")
    with pytest.raises(InvalidArgumentError, match=fragment):
        build_search_body(query, **kwargs)


# ---------------------------------------------------------------- hit text


def test_title_prefix_is_stripped_only_when_it_matches_the_title() -> None:
    meta = {"title": "My Page"}
    assert strip_title_prefix("Document Title: My Page\n\nText: the body", meta) == "the body"
    other = "Document Title: other\n\nText: kept"
    assert strip_title_prefix(other, meta) == other
    assert strip_title_prefix(other, {}) == other
    assert strip_title_prefix(other, {"title": ""}) == other
    assert strip_title_prefix("plain", meta) == "plain"
    assert strip_title_prefix("Document Title: My Page\n\nText: ", meta) == ""


# ---------------------------------------------------------------- settings check


def _config(**overrides: Any) -> dict[str, Any]:
    embedding = {"provider": "openai", "base_model": "m", "base_dimension": 512}
    config: dict[str, Any] = {
        "embedding": dict(embedding),
        "completion_embedding": dict(embedding),
        "ingestion": {"skip_document_summary": True},
    }
    config.update(overrides)
    return config


def test_matching_settings_have_no_problem() -> None:
    assert settings_problems(_config()) == []
    nan = float("nan")
    same_nan = _config(
        embedding={"provider": "p", "base_model": "m", "base_dimension": nan},
        completion_embedding={"provider": "p", "base_model": "m", "base_dimension": nan},
    )
    assert settings_problems(same_nan) == []


def test_every_settings_problem_is_listed() -> None:
    problems = settings_problems(
        _config(
            completion_embedding={"provider": "litellm", "base_model": "x", "base_dimension": 3},
            ingestion={"skip_document_summary": False},
        )
    )
    assert len(problems) == 4
    assert any("provider = 'openai'" in p and "'litellm'" in p for p in problems)
    assert any("base_model" in p for p in problems)
    assert any("base_dimension = 512" in p for p in problems)
    assert any("skip_document_summary = False" in p for p in problems)


def test_missing_sections_are_problems() -> None:
    problems = settings_problems({})
    assert problems == [
        "the [embedding] section is missing",
        "the [completion_embedding] section is missing",
        "[ingestion] skip_document_summary = None; set it to true (otherwise every ingestion "
        "calls an LLM to summarise the document)",
    ]


# ---------------------------------------------------------------- other arguments and answers


def test_uuid_lists_are_canonical_deduplicated_and_ordered() -> None:
    assert uuid_list([COL_B, str(COL_A).upper(), COL_A], "ids") == [COL_B, str(COL_A)]
    assert uuid_list([], "ids") == []
    with pytest.raises(InvalidArgumentError, match=r"^ids must be a list of UUIDs$"):
        uuid_list(COL_B, "ids")
    with pytest.raises(InvalidArgumentError, match="ids element is not a valid UUID: 'nope'"):
        uuid_list([COL_B, "nope"], "ids")


def test_page_size_and_collection_name_checks() -> None:
    assert check_page_size(1) == 1 and check_page_size(1000) == 1000
    for bad in (0, 1001, -5):
        with pytest.raises(InvalidArgumentError, match="page_size must be between 1 and 1000"):
            check_page_size(bad)
    assert check_collection_name("onyx-r2r:t:PUBLIC") == "onyx-r2r:t:PUBLIC"
    for bad_name in ("", "   ", None, 3):
        with pytest.raises(InvalidArgumentError, match="collection name must be a non-empty"):
            check_collection_name(bad_name)


def test_ingest_result_reads_what_r2r_answered() -> None:
    other = uuid.UUID(COL_B)
    done = ingest_result({"document_id": COL_B, "message": "Ingested"}, DOC)
    assert (done.document_id, done.completed, done.task_id, done.message) == (
        other,
        True,
        None,
        "Ingested",
    )
    queued = ingest_result({"document_id": str(DOC), "task_id": 7}, DOC)
    assert (queued.completed, queued.task_id) == (False, "7")
    # an answer that cannot be read proves nothing; a bad id falls back to the one sent
    assert ingest_result(["odd"], DOC).completed is False
    assert ingest_result(None, DOC).document_id == DOC
    assert ingest_result({"document_id": "not-a-uuid"}, DOC).document_id == DOC


def test_argument_errors_are_value_errors_of_the_engine_root() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        build_search_body("")
    assert isinstance(info.value, ValueError) and isinstance(info.value, BridgeError)
