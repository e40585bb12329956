"""The service of the nodes named gpu*: ``resilient_call('gpu', 'encode', [text])``
finds every node whose name contains 'gpu' and calls ``gpu.encode`` on the first
that answers a ping. It is the embedding service under the service's name.
"""

from hornbeam_erlang import node

import embedding_model
import faults


def encode(text):
    faults.apply("gpu.encode")
    return {"node": node(), "text": text, "vector": embedding_model.encode(text)}
