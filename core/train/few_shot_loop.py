"""The few-shot mode's training (``core.train.few_shot``), in the step loop's terms: its steps run over batches of
row pairs with SetFit's loss, MSE(cos(u, v), 1 or 0), and publish the same Step events (the live curve, the time
left, Stop and the queue work as for any run); the evaluation the schedule asks for after the last step first fits
the head: a logistic regression on the training rows' embeddings, written into the model's linear classifier."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from ..common.devices import autocast
from .callbacks import TrainerControl
from .few_shot import Pairs, sample_pairs
from .loop import Cancelled, StepLoop

EMBED_BATCH = 64  # rows per forward pass when embedding the training rows for the head


def pooled(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean-pooled, unit-length embeddings of a padded batch of rows."""
    return model.embed(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))


def write_head(classifier: torch.nn.Linear, head: LogisticRegression) -> None:
    """A fitted logistic regression as the linear classifier, so that its softmax gives the regression's
    probabilities: one row per class (multinomial), or with two classes rows [0, 0] and [w, b] (softmax over
    [0, z] is the logistic sigmoid of z). The classes are the label indices, each with training rows."""
    weight, bias = head.coef_, head.intercept_
    if len(head.classes_) == 2:
        weight, bias = np.vstack([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
    with torch.no_grad():
        classifier.weight.copy_(torch.as_tensor(weight, dtype=classifier.weight.dtype))
        classifier.bias.copy_(torch.as_tensor(bias, dtype=classifier.bias.dtype))


@dataclass
class FewShotLoop(StepLoop):
    """One pass over SetFit's pairs of the training rows, then the head, then the run's one evaluation."""

    pairs: Pairs = field(init=False)

    def __post_init__(self) -> None:
        self.pairs = sample_pairs(self.rows.labels, self.optimization.schedule.rounds, self.job.config.seed)

    def batches(self, generator: torch.Generator) -> list[list[int]]:
        """Consecutive batches of the pairs (shuffled when sampled)."""
        size = self.job.config.batch_size
        return [list(range(start, min(start + size, len(self.pairs)))) for start in range(0, len(self.pairs), size)]

    def backward(self, indices: list[int]) -> torch.Tensor:
        """CosineSimilarityLoss on the pairs ``indices``: both sides embedded, their cosine pulled to the target."""
        job, pairs = self.job, self.pairs
        left = self.rows.batch(pairs.left[indices].tolist(), job.tokenizer, job.device)
        right = self.rows.batch(pairs.right[indices].tolist(), job.tokenizer, job.device)
        targets = torch.as_tensor(pairs.targets[indices], device=job.device)
        with autocast(job.device, job.precision):
            cosine = (pooled(job.model, left) * pooled(job.model, right)).sum(-1)  # unit vectors: their cosine
        loss = torch.nn.functional.mse_loss(cosine.float(), targets)
        loss.backward()
        return loss

    def step(self, index: int, rows: list[int]) -> None:
        """A step; Stop still fits the head on the body tuned so far, so the model kept predicts."""
        try:
            super().step(index, rows)
        except Cancelled:
            self.fit_head()
            raise

    def evaluate(self, control: TrainerControl) -> None:
        self.fit_head()
        super().evaluate(control)

    def fit_head(self) -> None:
        """Embed the training rows with the tuned body; fit SetFit's head on them into the classifier."""
        job, rows = self.job, self.rows
        job.model.eval()
        embeddings = []
        with torch.inference_mode(), autocast(job.device, job.precision):
            for start in range(0, len(rows.labels), EMBED_BATCH):
                batch = rows.batch(list(range(start, min(start + EMBED_BATCH, len(rows.labels)))), job.tokenizer,
                                   job.device)
                embeddings.append(pooled(job.model, batch).float().cpu().numpy())
        head = LogisticRegression(max_iter=1000).fit(np.concatenate(embeddings), rows.labels)
        write_head(job.model.classifier, head)
        job.model.train()
