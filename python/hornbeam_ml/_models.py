"""Embedding models: loading by name or alias, the fallback, and encode()."""

import logging
import os
import threading
from typing import Any, Dict, List, Optional, Union

import numpy as np

from . import _fallback
from ._batching import batched

ALIASES = {
    "default": "all-MiniLM-L6-v2",
    "large": "all-mpnet-base-v2",
    "multilingual": "paraphrase-multilingual-MiniLM-L12-v2",
}

log = logging.getLogger("hornbeam_ml")


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here; the message names what is missing."""


class Model:
    """A loaded encoder: a sentence-transformers model, or a named fallback."""

    def __init__(self, name: str, resolved: str, impl: Any, kind: str, device: str, dim: int,
                 missing: Optional[str] = None) -> None:
        self.name, self.resolved, self.impl, self.kind = name, resolved, impl, kind
        self.device, self.dim, self.missing = device, dim, missing

    def encode(self, texts: List[str], batch_size: Optional[int] = None) -> np.ndarray:
        if self.kind == "sentence-transformers":
            arr = self.impl.encode(texts, batch_size=batch_size or 32, convert_to_numpy=True,
                                   show_progress_bar=False)
        else:
            arr = self.impl.encode(texts, batch_size=batch_size or 32)
        return np.asarray(arr, dtype=np.float32)

    def info(self) -> Dict[str, Any]:
        d = {"name": self.name, "model": getattr(self.impl, "name", self.resolved), "kind": self.kind,
             "device": self.device, "dimensions": self.dim, "fallback": self.kind.startswith("fallback")}
        if self.missing:
            d["stands_in_because"] = self.missing
        return d


_models: Dict[str, Model] = {}
_lock = threading.Lock()


def resolve(name: str) -> str:
    """The model a name or alias means."""
    return ALIASES.get(name, name)


def _locate(resolved: str) -> str:
    """A local directory for the model if there is one, else the name (a hub id)."""
    if os.path.isdir(resolved):
        return resolved
    base = os.environ.get("HORNBEAM_MODEL_DIR")
    if base:
        for cand in (os.path.join(base, resolved), os.path.join(base, resolved.rsplit("/", 1)[-1])):
            if os.path.isdir(cand):
                return cand
    return resolved


def default_device() -> str:
    """``cuda`` when torch sees a GPU, else ``cpu``."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def fallback_mode() -> Optional[str]:
    """The node's --ml-fallback (HORNBEAM_ML_FALLBACK): 'hash', 'torch' or None."""
    return os.environ.get("HORNBEAM_ML_FALLBACK") or None


def _load(name: str, device: Optional[str]) -> Model:
    if not isinstance(name, str) or not name:
        raise TypeError(f"model name must be a non-empty str, not {name!r}")
    resolved = resolve(name)
    where = _locate(resolved)
    try:
        import sentence_transformers
    except ImportError:
        missing = "the Python package sentence_transformers is not installed"
    else:
        dev = device or default_device()
        try:
            st = sentence_transformers.SentenceTransformer(where, device=dev)
        except Exception as e:  # no weights, no network, a broken directory
            missing = (f"the weights of {resolved} could not be loaded from {where!r} "
                       f"({type(e).__name__}: {e}); put them under HORNBEAM_MODEL_DIR")
        else:
            return Model(name, resolved, st, "sentence-transformers", str(st.device),
                         st.get_sentence_embedding_dimension())
    mode = fallback_mode()
    if mode not in _fallback.FALLBACKS:
        raise ModelUnavailable(
            f"cannot load model {name!r} ({resolved}): {missing}. Install sentence-transformers and the "
            f"weights, or start the node with --ml-fallback hash to use a stand-in encoder")
    impl = _fallback.FALLBACKS[mode](resolved, device or (default_device() if mode == "torch" else "cpu"))
    log.warning("MODEL %r IS A FALLBACK: %s, because %s", name, impl.name, missing)
    return Model(name, resolved, impl, impl.kind, impl.device, impl.dim, missing)


def load_model(name: str = "default", device: Optional[str] = None) -> Model:
    """Load (once per node process) and return model ``name``: an alias
    (``default``, ``large``, ``multilingual``), a sentence-transformers name, or a
    local directory (also looked up under ``HORNBEAM_MODEL_DIR``). ``device``
    defaults to ``cuda`` when available, else ``cpu``. Raises ModelUnavailable
    naming what is missing, unless the node runs with ``--ml-fallback``."""
    with _lock:
        m = _models.get(name)
        if m is None or (device is not None and device != m.device):
            m = _models[name] = _load(name, device)
        return m


def get_model(name: str = "default") -> Model:
    """The loaded model ``name``, loading it on first use."""
    m = _models.get(name)
    return m if m is not None else load_model(name)


@batched(max_batch_size=64, max_wait_ms=5)
def _encode_rows(texts: List[str], model: str = "default", batch_size: Optional[int] = None) -> List[np.ndarray]:
    return list(get_model(model).encode(texts, batch_size))


def encode(texts: Union[str, List[str]], model: str = "default", batch_size: Optional[int] = None,
           as_list: bool = False) -> Union[np.ndarray, List[Any]]:
    """Embed ``texts`` with ``model``: a float32 array of shape (len(texts), dim)
    (or (dim,) for one str), or nested lists with ``as_list=True``. Concurrent
    calls are batched together by the host (``@batched``)."""
    single = isinstance(texts, str)
    items = [texts] if single else texts
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"texts must be a str or a list of str, not {type(texts).__name__}")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
    if items:
        arr = np.stack(_encode_rows(list(items), model, batch_size)).astype(np.float32, copy=False)
    else:
        arr = np.zeros((0, get_model(model).dim), dtype=np.float32)
    if single:
        arr = arr[0]
    return arr.tolist() if as_list else arr


def model_info(name: Optional[str] = None) -> Dict[str, Any]:
    """What this node can encode with: the loaded models (each with its kind,
    device, dimensions and whether it is a fallback), the fallback setting, and
    whether sentence-transformers is importable. With ``name``, that model
    (loading it)."""
    if name is not None:
        return get_model(name).info()
    try:
        import sentence_transformers  # noqa: F401
        st = True
    except ImportError:
        st = False
    return {"models": [m.info() for m in list(_models.values())], "fallback": fallback_mode(),
            "sentence_transformers": st, "device": default_device()}


try:
    from sentence_transformers import SentenceTransformer  # the real class where it exists
except ImportError:
    class SentenceTransformer:  # type: ignore[no-redef]
        """Stands in for ``sentence_transformers.SentenceTransformer`` where it is
        not installed: loads through ``load_model`` (a clear ModelUnavailable, or
        the node's fallback encoder)."""

        def __init__(self, model_name_or_path: str = "all-MiniLM-L6-v2", device: Optional[str] = None,
                     **kwargs: Any) -> None:
            self._model = _load(model_name_or_path, device)

        @property
        def device(self) -> str:
            return self._model.device

        def get_sentence_embedding_dimension(self) -> int:
            return self._model.dim

        def encode(self, sentences: Union[str, List[str]], batch_size: int = 32, show_progress_bar: Any = None,
                   convert_to_numpy: bool = True, normalize_embeddings: bool = False, **kwargs: Any) -> Any:
            single = isinstance(sentences, str)
            items = [sentences] if single else list(sentences)
            for i, t in enumerate(items):
                if not isinstance(t, str):
                    raise TypeError(f"sentences[{i}] is {type(t).__name__}, not str")
            arr = self._model.encode(items, batch_size)
            if normalize_embeddings and len(arr):
                arr = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)
            if single:
                arr = arr[0]
            return arr if convert_to_numpy else list(arr)
