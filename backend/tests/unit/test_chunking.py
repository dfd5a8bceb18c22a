"""The bridge-side splitter: sizes, overlap, word preservation, determinism."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from onyx.r2r_sender.chunking import split_text


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def _corpus(seed: int, paragraphs: int = 30) -> str:
    rng = random.Random(seed)
    vocab = [f"w{i}" * rng.randint(1, 4) for i in range(400)]
    paras = []
    for _ in range(paragraphs):
        lines = [
            " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 40)))
            for _ in range(rng.randint(1, 6))
        ]
        paras.append("\n".join(lines))
    return "\n\n".join(paras)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("size", "overlap"), [(1024, 256), (200, 0), (120, 60)])
def test_chunks_are_bounded_and_keep_every_word_in_order(
    seed: int, size: int, overlap: int
) -> None:
    text = _corpus(seed)
    chunks = split_text(text, chunk_size=size, chunk_overlap=overlap)
    assert chunks and all(0 < len(c) <= size for c in chunks)
    assert all(c == c.strip() for c in chunks)
    # every word of the text is found, in order, walking the chunks (overlap may repeat some)
    words = _words(text)
    position = 0
    for chunk in chunks:
        chunk_words = _words(chunk)
        # a chunk starts at or before the first word not yet covered
        n = len(chunk_words)
        start = next(i for i in range(position, -1, -1) if words[i : i + n] == chunk_words)
        position = start + len(chunk_words)
    assert position == len(words)


def test_overlap_repeats_the_tail_of_the_previous_chunk() -> None:
    text = " ".join(f"word{i:04d}" for i in range(600))
    chunks = split_text(text, chunk_size=100, chunk_overlap=30)
    for before, after in itertools.pairwise(chunks):
        shared = set(_words(before)) & set(_words(after))
        assert shared, (before, after)
        assert len(" ".join(sorted(shared))) <= 30
    no_overlap = split_text(text, chunk_size=100, chunk_overlap=0)
    assert sum(map(len, no_overlap)) < sum(map(len, chunks))
    assert _words(" ".join(no_overlap)) == _words(text)


def test_a_word_longer_than_a_chunk_is_cut_with_overlap() -> None:
    text = "short " + "x" * 2500 + " tail"
    chunks = split_text(text, chunk_size=1024, chunk_overlap=256)
    assert all(len(c) <= 1024 for c in chunks)
    assert "".join(c for c in chunks if set(c) == {"x"}).count("x") >= 2500
    assert chunks[0] == "short" and chunks[-1] == "tail"


def test_small_and_empty_text() -> None:
    assert split_text("  hello world \n", chunk_size=1024, chunk_overlap=256) == ["hello world"]
    assert split_text(" \n\n \t", chunk_size=1024, chunk_overlap=256) == []
    assert split_text("", chunk_size=10, chunk_overlap=0) == []


def test_deterministic() -> None:
    text = _corpus(3, paragraphs=200)
    assert split_text(text, chunk_size=512, chunk_overlap=128) == split_text(
        text, chunk_size=512, chunk_overlap=128
    )


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_bad_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk_"):
        split_text("text", chunk_size=size, chunk_overlap=overlap)
