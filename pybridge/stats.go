package pybridge

// PoolThreads returns the number of pool threads for synchronous calls, over
// every lane, and how many of them are running calls now (holding or waiting
// for the GIL).
func (ip *Interpreter) PoolThreads() (threads, busy int) {
	for _, q := range ip.lanes {
		if q == nil {
			continue
		}
		total, _ := q.size()
		threads += total
		busy += q.busy()
	}
	return threads, busy
}
