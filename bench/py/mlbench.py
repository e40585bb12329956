"""Worker-side functions of the ML benchmark: one text per item, batched by
the host or not."""
import hornbeam_ml
from hornbeam_ml import batched


@batched(max_batch_size=64, max_wait_ms=5)
def embed(texts):
    return list(hornbeam_ml.get_model().encode(list(texts)))


def embed_unbatched(texts):
    return list(hornbeam_ml.get_model().encode(list(texts)))
