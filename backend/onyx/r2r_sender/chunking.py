"""Split a document's text into R2R chunks on the bridge side.

Why the bridge chunks at all: R2R's pre-chunked create (``chunks=[…]``) is one
request that embeds the chunks *and* assigns every collection, where the
raw-text create assigns only the first collection (R2R #2028) and so costs one
more membership call per extra collection.  It also skips R2R's parsing and
splitting.  :func:`split_text` works like R2R's default ``recursive`` strategy
with the same size and overlap (same idea, not byte-identical chunks): split on
paragraphs, then lines, then spaces, then characters, and merge the pieces
back into chunks of at most ``chunk_size`` characters, each starting with up
to ``chunk_overlap`` characters of the previous one.

The split is a pure function of the text and the two numbers, so a retry of
the same version yields the same chunks.
"""

from __future__ import annotations

from collections import deque

# coarsest first; "" (single characters) is the last resort for a run without spaces
SEPARATORS: tuple[str, ...] = ("\n\n", "\n", " ", "")


def split_text(text: str, *, chunk_size: int, chunk_overlap: int) -> list[str]:
    """Return the chunks of *text*: non-empty, stripped, in document order.

    Guarantees: every chunk is at most *chunk_size* characters; every
    non-whitespace run of *text* (a word) appears in at least one chunk, and a
    word is only cut when it alone is longer than *chunk_size*; consecutive
    chunks share at most *chunk_overlap* characters of pieces.  Whitespace-only
    text gives ``[]``.

    Raises:
        ValueError: ``chunk_size < 1`` or ``chunk_overlap`` outside ``[0, chunk_size)``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"chunk_overlap must be in [0, {chunk_size}), not {chunk_overlap}")
    chunks = (c.strip() for c in _split(text, SEPARATORS, chunk_size, chunk_overlap))
    return [c for c in chunks if c]


def _split(text: str, separators: tuple[str, ...], size: int, overlap: int) -> list[str]:
    if len(text) <= size:
        return [text]
    index = next(i for i, sep in enumerate(separators) if sep == "" or sep in text)
    separator, finer = separators[index], separators[index + 1 :]
    if separator == "":
        step = size - overlap
        return [text[start : start + size] for start in range(0, len(text) - overlap, step)]
    out: list[str] = []
    small: list[str] = []
    for piece in text.split(separator):
        if not piece.strip():
            continue
        if len(piece) <= size:
            small.append(piece)
            continue
        out.extend(_merge(small, separator, size, overlap))
        small = []
        out.extend(_split(piece, finer, size, overlap))
    out.extend(_merge(small, separator, size, overlap))
    return out


def _merge(pieces: list[str], separator: str, size: int, overlap: int) -> list[str]:
    """Join consecutive *pieces* (each ≤ size) into chunks ≤ size that overlap by ≤ overlap."""
    chunks: list[str] = []
    window: deque[str] = deque()
    length = 0  # len(separator.join(window))
    gap = len(separator)
    for piece in pieces:
        if window and length + gap + len(piece) > size:
            chunks.append(separator.join(window))
            # keep a tail of at most `overlap` characters that still leaves room for piece
            while window and (length > overlap or length + gap + len(piece) > size):
                dropped = window.popleft()
                length -= len(dropped) + (gap if window else 0)
        length += len(piece) + (gap if window else 0)
        window.append(piece)
    if window:
        chunks.append(separator.join(window))
    return chunks
