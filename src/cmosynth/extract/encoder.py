"""Sentence roles by the shipped transformer: a fine-tuned MiniLM run with ONNX Runtime.

all-MiniLM-L6-v2 was fine-tuned at development time (`bench/train_coder.py`, PyTorch
only in the `train` extra) as a three-label classifier (context, mechanism, outcome) on
the project's labelled sentences, exported to ONNX, quantised to 8-bit integers and
shipped in `models/roles-minilm/` with its tokenizer and a model card. At run time it
needs `onnxruntime` and `tokenizers` only: no PyTorch, no download, no fine-tuning.

It reads each sentence together with where it stands (its section, its place in the
abstract and the record's title), so that the same words can weigh differently in a
paper about services and in one about synapses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from cmosynth.console import track
from cmosynth.errors import CmosynthError
from cmosynth.extract.codebook import ROLES

log = logging.getLogger("cmosynth.extract.encoder")

MODEL_DIR = Path(__file__).resolve().parent / "models" / "roles-minilm"


class EncoderUnavailable(CmosynthError):
    """The shipped model files are missing (a damaged install)."""


def sentence_place(evidence) -> str:
    """The second text the encoder reads with a sentence: section, place, title."""
    place = f"{evidence.index + 1} of {evidence.count}" if evidence.count else "unknown place"
    return f"{evidence.category or 'no section'}; {place}; {evidence.title}"


def load_tokenizer(path: Path, max_length: int):
    """The encoder's word-piece tokenizer, truncating (longest first) and padding pairs
    exactly as in training."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    return tokenizer


def encode_pairs(tokenizer, evidence: Sequence) -> dict[str, np.ndarray]:
    """Model inputs (int64 arrays) for a batch of sentences and their places."""
    encodings = tokenizer.encode_batch([(e.text, sentence_place(e)) for e in evidence])
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


@cache
def _session(model_path: str, version: tuple[int, int], threads: int):
    """One ONNX Runtime session per model file (`version`: its mtime and size) and
    thread count: loading the model takes a second, coding with it milliseconds."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Deterministic output: the same graph optimisations on every machine.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


class EncoderRoles:
    """The shipped fine-tuned encoder: probability of each role per sentence.

    It has the interface of a blended component of `roles.RoleModel` (`fit` keeps the
    shipped weights: the encoder never learns at run time)."""

    def __init__(self, directory: Path = MODEL_DIR, threads: int = 2):
        self.directory = Path(directory)
        meta_path = self.directory / "meta.json"
        model_path = self.directory / "model.onnx"
        if not meta_path.exists() or not model_path.exists():
            raise EncoderUnavailable(
                f"the shipped role model is missing from {self.directory}; reinstall "
                "cmosynth, or set extract.coder: lexical in the topic")
        self.meta = json.loads(meta_path.read_text("utf-8"))
        self.method = self.meta["method"]
        self.tokenizer = load_tokenizer(self.directory / "tokenizer.json",
                                        self.meta["max_length"])
        stat = model_path.stat()
        self.session = _session(str(model_path), (stat.st_mtime_ns, stat.st_size), threads)

    def fit(self, evidence: Sequence, labels) -> EncoderRoles:
        return self

    def logits(self, evidence: Sequence, progress: str | None = None) -> np.ndarray:
        """Raw outputs, one row per sentence, in the given order.

        One sentence per call: the 8-bit model scales its activations over the whole
        input, so in a batch a sentence's output would depend on the sentences beside
        it (by up to 0.09 in a logit). Alone, it depends on the sentence only, whatever
        the order, the chunk or the run; and without padding it is also faster."""
        out = np.zeros((len(evidence), len(ROLES)), dtype=np.float32)
        rows = range(len(evidence))
        if progress and len(evidence) > 200:
            rows = track(rows, progress, total=len(evidence), unit="sentences")
        for k in rows:
            out[k] = self.session.run(["logits"], encode_pairs(self.tokenizer, [evidence[k]]))[0][0]
        return out

    def probabilities(self, evidence: Sequence) -> list[dict[str, float]]:
        """Probability of each role per sentence."""
        if not evidence:
            return []
        probabilities = sigmoid(self.logits(evidence, "coding sentences (transformer)"))
        return [dict(zip(ROLES, map(float, row))) for row in probabilities]
