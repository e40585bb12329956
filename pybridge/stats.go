package pybridge

// PoolThreads returns the number of pool threads for synchronous calls and
// how many of them are running calls now (holding or waiting for the GIL).
func (ip *Interpreter) PoolThreads() (threads, busy int) {
	return ip.cfg.Threads, int(ip.queue.busy.Load())
}
