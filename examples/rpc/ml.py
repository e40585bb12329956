"""The ``ml`` module of the guide's best practices: encode, batch_encode, predict.

The same calls run remotely (``rpc_call(gpu_node, 'ml', 'encode', [text])``) or
locally as the fallback (``ml.encode(text)``); results name the node that ran them.
"""

from hornbeam_erlang import node

import embedding_model
import faults
import inference


def encode(text):
    faults.apply("ml.encode")
    return {"node": node(), "text": text, "vector": embedding_model.encode(text)}


def batch_encode(texts):
    faults.apply("ml.batch_encode")
    return [{"node": node(), "text": t, "vector": embedding_model.encode(t)} for t in texts]


def predict(input_data):
    faults.apply("ml.predict")
    return {"node": node(), "input": input_data, "prediction": inference.predict(input_data)}
