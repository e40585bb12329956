package main

import (
	"sort"
	"sync"
	"time"
)

// latencies times n sequential calls after warm-up calls and returns the
// median, the 99th percentile and the sequential rate.
func latencies(call func(), warmup, n int) (p50, p99 time.Duration, perSec float64) {
	for range warmup {
		call()
	}
	d := make([]time.Duration, n)
	start := time.Now()
	for i := range d {
		t0 := time.Now()
		call()
		d[i] = time.Since(t0)
	}
	total := time.Since(start)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[n/2], d[n*99/100], float64(n) / total.Seconds()
}

// throughput runs call from workers goroutines for rounds of dur each and
// returns the median rate.
func throughput(call func(), workers, rounds int, dur time.Duration) float64 {
	rates := make([]float64, 0, rounds)
	for range rounds {
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		stop := time.Now().Add(dur)
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				for time.Now().Before(stop) {
					call()
					n++
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		rates = append(rates, float64(total)/time.Since(start).Seconds())
	}
	return median(rates)
}

// median returns the middle value of v (the upper of the two middle ones when
// len(v) is even), leaving v as it was.
func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
