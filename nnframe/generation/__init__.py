"""Text generation: model-agnostic, seeded sampling (:mod:`~nnframe.generation.sampling`) and
the ``nnframe generate`` command (:mod:`~nnframe.generation.command`)."""

from nnframe.generation.sampling import generate, sample_logits, sample_text, stateful_copy, vocabulary_of

__all__ = ["generate", "sample_logits", "sample_text", "stateful_copy", "vocabulary_of"]
