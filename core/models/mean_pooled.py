"""A BERT encoder read as a sentence encoder, for the few-shot mode (``core.train.few_shot``): a linear classifier
over the attention-mask-weighted mean of the last hidden states, L2-normalised.

Both shipped text encoders (all-MiniLM-L6-v2, multilingual-e5-small) were trained as sentence-transformers with
exactly this pooling, and their pipelines end in a Normalize module, so the embedding the classifier reads is the one
they were trained to give. A base checkpoint's BERT weights load into ``bert.`` (transformers adds the prefix); its
pooler is not used. Importing this module registers the architecture with transformers' Auto classes.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class MeanPooledBertConfig(BertConfig):
    model_type = "mean_pooled_bert"


class MeanPooledBertForSequenceClassification(BertPreTrainedModel):
    config_class = MeanPooledBertConfig

    def __init__(self, config: MeanPooledBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """B x hidden: each row's mean over its real tokens, of unit length."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return nn.functional.normalize(pooled.float(), dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **_) -> SequenceClassifierOutput:
        """BERT's positional order (input ids, attention mask, token types), which an ONNX export traces."""
        logits = self.classifier(self.embed(input_ids, attention_mask, token_type_ids).to(self.classifier.weight.dtype))
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MeanPooledBertConfig.model_type, MeanPooledBertConfig, exist_ok=True)
AutoModelForSequenceClassification.register(MeanPooledBertConfig, MeanPooledBertForSequenceClassification,
                                            exist_ok=True)
