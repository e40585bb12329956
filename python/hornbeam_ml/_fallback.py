"""Stand-in encoders for nodes without sentence-transformers or weights.

They let the whole pipeline (HTTP, RPC, batching, caching) run and be tested
where no real model can be loaded. Their names say what they are; they never
claim to be the model asked for.
"""

import zlib
from typing import List

import numpy as np

DIM = 384


class HashEncoder:
    """Hashed character n-grams (3 to 5, over the lower-cased text with word
    boundaries) and words, signed-hashed into 384 dimensions and L2-normalised.
    Deterministic across processes and machines; similar strings get similar
    vectors, which is all it promises."""

    kind = "fallback:hash-ngram"

    def __init__(self, stands_for: str, device: str = "cpu") -> None:
        self.name = f"hash-ngram-{DIM} (fallback standing in for {stands_for})"
        self.stands_for = stands_for
        self.device = "cpu"
        self.dim = DIM

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(DIM, dtype=np.float32)
        t = f" {text.lower()} "
        feats = t.split()
        for n in (3, 4, 5):
            feats.extend(t[i:i + n] for i in range(len(t) - n + 1))
        if feats:
            hs = np.fromiter((zlib.crc32(f.encode()) for f in feats), dtype=np.uint32, count=len(feats))
            sign = np.where(hs & 0x80000000, -1.0, 1.0).astype(np.float32)
            np.add.at(v, hs % DIM, sign)
        norm = float(np.linalg.norm(v))
        return v / norm if norm else v

    def encode(self, texts: List[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([self._one(t) for t in texts])


class TorchEncoder:
    """A small transformer encoder with random weights (seed 0): MiniLM's
    width (384, 12 heads) but 2 layers and a 768-wide feed-forward, mean
    pooling, L2-normalised, over hashed word and sub-word tokens. Real tensor
    work, about a sixth of MiniLM-L6's, without meaning; for benchmarks where
    weights cannot be had (Debian's CPU torch is too slow for the full shape)."""

    layers_n = 2
    ffn = 768

    kind = "fallback:torch-random"
    vocab = 30522
    max_len = 128

    def __init__(self, stands_for: str, device: str = "cpu") -> None:
        import torch  # noqa: only this fallback needs it

        self.torch = torch
        self.name = f"random-transformer-{self.layers_n}x{DIM} (fallback standing in for {stands_for})"
        self.stands_for = stands_for
        self.device = device
        self.dim = DIM
        g = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(self.vocab, DIM)
        self.pos = torch.nn.Embedding(self.max_len, DIM)
        with torch.no_grad():
            self.embed.weight.copy_(torch.randn(self.vocab, DIM, generator=g) * 0.02)
            self.pos.weight.copy_(torch.randn(self.max_len, DIM, generator=g) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(DIM, 12, self.ffn, dropout=0.0, batch_first=True, activation="gelu")
        self.layers = torch.nn.TransformerEncoder(layer, self.layers_n, enable_nested_tensor=False)
        for m in (self.embed, self.pos, self.layers):
            m.to(device).eval()

    def _tokens(self, text: str) -> List[int]:
        ids = [101]
        for w in text.lower().split():
            ids.append(zlib.crc32(w.encode()) % (self.vocab - 1000) + 1000)
            if len(w) > 6:  # long words split in two, as WordPiece would
                ids.append(zlib.crc32(w[4:].encode()) % (self.vocab - 1000) + 1000)
        return ids[: self.max_len - 1] + [102]

    def encode(self, texts: List[str], batch_size: int = 32) -> np.ndarray:
        torch = self.torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size or 32):
                toks = [self._tokens(t) for t in texts[i:i + (batch_size or 32)]]
                n = max(len(t) for t in toks)
                ids = torch.zeros((len(toks), n), dtype=torch.long)
                mask = torch.zeros((len(toks), n), dtype=torch.bool)
                for j, t in enumerate(toks):
                    ids[j, :len(t)] = torch.tensor(t)
                    mask[j, :len(t)] = True
                ids, mask = ids.to(self.device), mask.to(self.device)
                x = self.embed(ids) + self.pos(torch.arange(n, device=self.device))[None]
                x = self.layers(x, src_key_padding_mask=~mask)
                m = mask.unsqueeze(-1).to(x.dtype)
                x = (x * m).sum(1) / m.sum(1).clamp(min=1)
                x = torch.nn.functional.normalize(x, dim=1)
                out.append(x.float().cpu().numpy())
        if not out:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


FALLBACKS = {"hash": HashEncoder, "torch": TorchEncoder}
