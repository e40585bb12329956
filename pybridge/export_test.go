package pybridge

// Borrowed returns how many results are out in C memory, not yet released.
func (ip *Interpreter) Borrowed() int64 { return ip.borrowed.Load() }

// Inflight returns how many calls wait for their result.
func (ip *Interpreter) Inflight() int64 { return int64(ip.inflight.Load()) }
