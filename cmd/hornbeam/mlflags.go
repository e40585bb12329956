package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/hornbeam-go/hornbeam/state"
)

// mlFlags configure hornbeam_ml on a node.
type mlFlags struct {
	fallback     string
	cacheEntries int
	cacheMiB     int
}

func (f *mlFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.fallback, "ml-fallback", os.Getenv("HORNBEAM_ML_FALLBACK"),
		"when sentence-transformers or a model's weights are missing, use a stand-in encoder instead of failing: "+
			"hash (hashed character n-grams) or torch (a small random-weight transformer); never the model asked for (env HORNBEAM_ML_FALLBACK)")
	fs.IntVar(&f.cacheEntries, "ml-cache-entries", envInt("HORNBEAM_ML_CACHE_ENTRIES", 100_000), "entries of the node's inference cache (least recently used evicted)")
	fs.IntVar(&f.cacheMiB, "ml-cache-mib", envInt("HORNBEAM_ML_CACHE_MIB", 256), "MiB of the node's inference cache (keys and values)")
}

// apply checks the flags, hands the fallback to Python (hornbeam_ml reads
// HORNBEAM_ML_FALLBACK) and says loudly that embeddings will not be real.
func (f *mlFlags) apply(log *slog.Logger) error {
	switch f.fallback {
	case "", "hash", "torch":
	default:
		return fmt.Errorf("--ml-fallback %q: want hash or torch", f.fallback)
	}
	if f.cacheEntries < 1 || f.cacheMiB < 1 {
		return fmt.Errorf("--ml-cache-entries and --ml-cache-mib must be at least 1")
	}
	if f.fallback == "" {
		os.Unsetenv("HORNBEAM_ML_FALLBACK")
		return nil
	}
	os.Setenv("HORNBEAM_ML_FALLBACK", f.fallback)
	log.Warn("ML FALLBACK ENABLED: models that cannot be loaded are replaced by a stand-in encoder; "+
		"its embeddings are deterministic but carry no meaning", "fallback", f.fallback)
	return nil
}

func (f *mlFlags) cacheConfig() state.CacheConfig {
	return state.CacheConfig{MaxEntries: f.cacheEntries, MaxBytes: int64(f.cacheMiB) << 20}
}
