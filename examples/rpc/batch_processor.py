"""The batch service the worker nodes serve: ``batch_processor.process_batch(items)``."""

from hornbeam_erlang import node

import faults
import inference


def process_item(item):
    """One item's result; names the node that processed it."""
    return {"node": node(), "item": item, "prediction": inference.predict(item)}


def process_batch(items):
    faults.apply("batch_processor.process_batch")
    return [process_item(item) for item in items]
