# ml_service.py: the guide's Python service (docs "Distributed ML"), unchanged
# but for one import: SentenceTransformer comes from hornbeam_ml, which is the
# real class where sentence-transformers is installed and otherwise loads
# through hornbeam_ml's rules (a clear error, or the node's --ml-fallback).
from hornbeam_ml import SentenceTransformer
from hornbeam_ml import cached_inference, cache_stats as get_cache_stats
from hornbeam_erlang import state_get, state_set

# Load model at import
models = {}

def get_model(name='default'):
    if name not in models:
        model_map = {
            'default': 'all-MiniLM-L6-v2',
            'large': 'all-mpnet-base-v2',
            'multilingual': 'paraphrase-multilingual-MiniLM-L12-v2'
        }
        model_name = model_map.get(name, name)
        models[name] = SentenceTransformer(model_name)
    return models[name]

def encode(texts, model_name='default'):
    """Encode texts with caching."""
    model = get_model(model_name)

    embeddings = []
    cached_count = 0

    for text in texts:
        cache_key = f'{model_name}:{hash(text)}'
        cached = state_get(f'emb:{cache_key}')

        if cached:
            embeddings.append(cached)
            cached_count += 1
        else:
            emb = model.encode(text).tolist()
            state_set(f'emb:{cache_key}', emb)
            embeddings.append(emb)

    return {
        'embeddings': embeddings,
        'cached': cached_count
    }

def predict(input_data, model_name='default'):
    """Run prediction."""
    model = get_model(model_name)
    return model.encode(input_data).tolist()

def get_model_info():
    """Get loaded model info."""
    return {
        'loaded_models': list(models.keys()),
        'default_dimensions': get_model().get_sentence_embedding_dimension()
    }

def cache_stats():
    return get_cache_stats()
