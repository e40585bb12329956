package bus

import (
	"github.com/fxamacker/cbor/v2"
)

// Everything that crosses a node boundary is CBOR, decoded with limits: a peer
// (or anyone who guessed a subject) may send anything.

// request is an RPC call on the wire. Args stays raw: it is handed to Python
// as it came, never decoded in Go.
type request struct {
	_        struct{} `cbor:",toarray"`
	Module   string
	Function string
	Args     cbor.RawMessage
	// Budget is the time left to the caller's deadline when the request was
	// sent, in milliseconds (0: none). Relative, so the two machines' clocks
	// need not agree; the receiver starts its own timer on arrival.
	Budget int64
	From   string
}

// Reply statuses.
const (
	statusOK     = 0
	statusRemote = 1 // the function raised: Type, Message, Traceback
	statusBadRPC = 2 // no such module or function
	statusBusy   = 3 // the node refused the call (overloaded, shutting down, too big)
)

type reply struct {
	_         struct{} `cbor:",toarray"`
	Status    int
	Value     cbor.RawMessage
	Type      string
	Message   string
	Traceback string
}

// heartbeat announces a node and its liveness.
type heartbeat struct {
	_           struct{} `cbor:",toarray"`
	Name        string
	Incarnation uint64 // random per process: a restart under the same name is a new node
	Hidden      bool
	Roles       []string
	Addr        string             // cluster (route) address
	Leaving     bool               // sent once on graceful shutdown
	Caps        map[string]float64 // capabilities: gpu, cpu, memory_gb, ...
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	// Raw arguments are validated here too, so the nesting limit matches the C
	// decoder's (128) with room for the envelope; sizes are bounded by the
	// payload limit rather than element counts.
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:  136,
		MaxArrayElements: 1 << 30,
		MaxMapPairs:      1 << 30,
		IndefLength:      cbor.IndefLengthForbidden,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// rawArgs is the CBOR of an empty argument list.
var emptyArgs = cbor.RawMessage{0x80}
