package pybridge

// #include "bridge.h"
import "C"

// InterruptMainSIGINT passes a SIGINT on to the script RunMain runs, as the
// signal reaches python3: KeyboardInterrupt at once, also in a blocking call
// such as time.sleep. It reports false when Python's SIGINT handler is not
// in place (no RunMain yet); InterruptMain is then the way.
func (ip *Interpreter) InterruptMainSIGINT() bool { return C.hb_sigint_main() != 0 }
