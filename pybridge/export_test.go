package pybridge

// Borrowed returns how many results are out in C memory, not yet released.
func (ip *Interpreter) Borrowed() int64 { return ip.borrowed.Load() }
