package pybridge

import "testing"

// The arena's ring hands out contiguous, disjoint ranges, wraps past a tail too
// short for a call, refuses what does not fit, and frees in order.
func TestRingReserve(t *testing.T) {
	type step struct {
		reserve uintptr // bytes to reserve, or 0 to release the oldest reservation
		off     uintptr // where the reservation must start
		ok      bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"fills then refuses", []step{{40, 0, true}, {60, 40, true}, {1, 0, false}}},
		{"exact fill after a wrap", []step{{60, 0, true}, {40, 60, true}, {0, 0, true}, {60, 0, true}, {1, 0, false}}},
		{"skips a short tail", []step{{60, 0, true}, {30, 60, true}, {0, 0, true}, {50, 0, true}, {11, 0, false}, {10, 50, true}}},
		{"refuses when neither end fits", []step{{50, 0, true}, {30, 50, true}, {0, 0, true}, {51, 0, false}, {20, 80, true}}},
		{"starts over once empty", []step{{70, 0, true}, {0, 0, true}, {70, 0, true}}},
		{"larger than the ring", []step{{101, 0, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ring{size: 100}
			type live struct{ off, n, used uintptr }
			var fifo []live
			for i, s := range tc.steps {
				if s.reserve == 0 { // release the oldest, as the loop does
					old := fifo[0]
					fifo = fifo[1:]
					r.head = old.off + old.n
					r.used -= old.used
					continue
				}
				off, used, ok := r.reserve(s.reserve)
				if ok != s.ok || (ok && off != s.off) {
					t.Fatalf("step %d: reserve(%d) = %d, %v; want %d, %v", i, s.reserve, off, ok, s.off, s.ok)
				}
				if !ok {
					continue
				}
				if off+s.reserve > r.size {
					t.Fatalf("step %d: [%d, %d) runs past the ring", i, off, off+s.reserve)
				}
				for _, l := range fifo {
					if off < l.off+l.n && l.off < off+s.reserve {
						t.Fatalf("step %d: [%d, %d) overlaps live [%d, %d)", i, off, off+s.reserve, l.off, l.off+l.n)
					}
				}
				fifo = append(fifo, live{off, s.reserve, used})
			}
		})
	}
}
