"""The embedding service the GPU nodes serve (the guide's embedding_service).

``encode`` and ``batch_encode`` run the model (see embedding_model, a CPU
stand-in) and say which node served the call.
"""

from hornbeam_erlang import node

import embedding_model
import faults


def encode(text):
    faults.apply("embedding_service.encode")
    return {"node": node(), "text": text, "vector": embedding_model.encode(text)}


def batch_encode(texts):
    faults.apply("embedding_service.batch_encode")
    return [{"node": node(), "text": t, "vector": embedding_model.encode(t)} for t in texts]
