#!/usr/bin/env python3
"""Exports the word model of alt-profanity-check to `crates/safety/model/offensive.bin`.

alt-profanity-check (MIT; Copyright (c) 2018 Victor Zhou, 2021 Menelaos Kotoglou, and Dimitrios
Mistriotis) is a TF-IDF word model with a linear SVM, calibrated by sigmoids over five folds, trained on
about 200,000 human-labelled offensive and harmless comments. Onda evaluates the same arithmetic in Rust
(`src/offensive.rs`), so no Python runs in the product. Run from the repository root, in a virtual
environment holding the pinned package:

    python3 -m venv /tmp/apc && /tmp/apc/bin/pip install alt-profanity-check==1.9.1
    /tmp/apc/bin/python crates/safety/tools/export_offensive_model.py

It also writes `crates/safety/tests/data/offensive_reference.jsonl`: the package's own probability for
every text of the project's `data/examples.jsonl`, which the Rust model must reproduce (a test).

The file (little-endian), deterministic for the same package:
    b"ONDAOFF1"
    u32 words; per word (in vocabulary-index order): u16 byte length, UTF-8 bytes, f32 idf
    u32 folds; per fold: f32 intercept, f32 sigmoid a, f32 sigmoid b, f32 coefficient per word
A fold's probability is 1 / (1 + exp(a * (coef . x + intercept) + b)), x the L2-normalised TF-IDF vector
of the lower-cased text's tokens (`(?u)\\b\\w\\w+\\b`); the model's probability is the folds' mean.
"""

import importlib.metadata
import json
import struct
import sys
from pathlib import Path

import profanity_check
from profanity_check import predict_prob

VERSION = "1.9.1"
MODEL = Path("crates/safety/model/offensive.bin")
REFERENCE = Path("crates/safety/tests/data/offensive_reference.jsonl")
EXAMPLES = Path("crates/safety/data/examples.jsonl")


def main() -> int:
    version = importlib.metadata.version("alt-profanity-check")
    if version != VERSION:
        print(f"alt-profanity-check {VERSION} is needed, found {version}", file=sys.stderr)
        return 2
    vectorizer = profanity_check.profanity_check.vectorizer
    model = profanity_check.profanity_check.model
    params = vectorizer.get_params()
    assert params["analyzer"] == "word" and params["ngram_range"] == (1, 1)
    assert params["lowercase"] and params["norm"] == "l2" and params["use_idf"] and not params["sublinear_tf"]
    assert params["token_pattern"] == r"(?u)\b\w\w+\b"

    words = sorted(vectorizer.vocabulary_.items(), key=lambda kv: kv[1])
    assert [i for _, i in words] == list(range(len(words)))
    idf = vectorizer.idf_
    out = bytearray(b"ONDAOFF1")
    out += struct.pack("<I", len(words))
    for (word, index) in words:
        encoded = word.encode("utf-8")
        out += struct.pack("<H", len(encoded)) + encoded + struct.pack("<f", float(idf[index]))
    folds = model.calibrated_classifiers_
    out += struct.pack("<I", len(folds))
    for fold in folds:
        (calibrator,) = fold.calibrators
        coef = fold.estimator.coef_[0]
        assert len(coef) == len(words)
        out += struct.pack("<fff", float(fold.estimator.intercept_[0]), float(calibrator.a_), float(calibrator.b_))
        out += struct.pack(f"<{len(coef)}f", *map(float, coef))
    MODEL.write_bytes(bytes(out))

    texts = [json.loads(line)["text"] for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    probabilities = predict_prob(texts)
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    with REFERENCE.open("w", encoding="utf-8") as f:
        for text, p in zip(texts, probabilities):
            f.write(json.dumps({"text": text, "probability": round(float(p), 6)}, ensure_ascii=False) + "\n")
    print(f"{MODEL}: {len(words)} words, {len(folds)} folds, {len(out)} bytes; {REFERENCE}: {len(texts)} texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
