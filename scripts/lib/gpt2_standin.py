#!/usr/bin/env python3
"""Write an offline stand-in for the ``gpt2`` tokenizer into a Hugging Face hub cache.

CCBE's chat path counts prompt tokens with ``GPT2Tokenizer.from_pretrained('gpt2')``
(``chain/query_proc.py``), which downloads the tokenizer at ``/init``; this machine has no
model hub. The stand-in is a byte-level GPT-2 BPE with the 256 byte tokens, no merges and
``<|endoftext|>``: every text still tokenises (one token per UTF-8 byte, so counts are
upper bounds of the real tokenizer's), which is all CCBE uses it for.

  gpt2_standin.py HF_HOME      writes HF_HOME/hub/models--gpt2/{refs/main,snapshots/<rev>/…}

Run CCBE with ``HF_HOME=<that dir> HF_HUB_OFFLINE=1 CC_DOWNLOAD_MODELS_FROM_HF=false``.
Idempotent; stdlib only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# the revision CCBE's controller asks the hub for (models_to_fetch['gpt2']['revision'])
REVISION = "607a30d783dfa663caf39e06633721c8d4cfcd7e"
END_OF_TEXT = "<|endoftext|>"


def byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table (printable bytes map to themselves)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)
            shift += 1
    return table


def write_standin(hf_home: Path) -> Path:
    """Write the stand-in under *hf_home*; return the snapshot directory."""
    repo = hf_home / "hub" / "models--gpt2"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    vocab = {char: byte for byte, char in sorted(byte_alphabet().items())}
    vocab[END_OF_TEXT] = len(vocab)
    files = {
        "vocab.json": json.dumps(vocab, ensure_ascii=False),
        "merges.txt": "#version: 0.2\n",
        "tokenizer_config.json": json.dumps(
            {
                "tokenizer_class": "GPT2Tokenizer",
                "model_max_length": 1024,
                "bos_token": END_OF_TEXT,
                "eos_token": END_OF_TEXT,
                "unk_token": END_OF_TEXT,
            }
        ),
        "config.json": json.dumps({"model_type": "gpt2", "vocab_size": len(vocab)}),
    }
    for name, text in files.items():
        (snapshot / name).write_text(text, encoding="utf-8")
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION, encoding="utf-8")
    return snapshot


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(write_standin(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
