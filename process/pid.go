// Package process keeps a node's Erlang-style processes: their pids, their
// mailboxes (bounded in messages and in bytes), registered names, monitors,
// links and process groups. It knows nothing of Python or of the network: the
// host runs process bodies (threads and asyncio tasks), and a Transport carries
// frames to the same table on other nodes.
package process

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// TagPid is the CBOR tag of a Pid: a number in the first-come-first-served
// range, beside the tuple tag 0x48420001 (both spell "HB" in their high bytes).
// Its content is the array [node, id].
const TagPid = 0x48420002

// TagTuple is the tag under which Python tuples travel (pybridge's HB_TAG_TUPLE).
const TagTuple = 0x48420001

// Pid names a process: the node it runs on and a number unique on that node
// for the node's lifetime.
type Pid struct {
	Node string
	ID   uint64
}

func (p Pid) String() string { return fmt.Sprintf("<%s.%d.0>", p.Node, p.ID) }

type pidContent struct {
	_    struct{} `cbor:",toarray"`
	Node string
	ID   uint64
}

// MarshalCBOR writes the pid as tag TagPid over [node, id].
func (p Pid) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: TagPid, Content: pidContent{Node: p.Node, ID: p.ID}})
}

// ErrBadPid reports CBOR that is not a pid.
var ErrBadPid = errors.New("process: not a pid")

// UnmarshalCBOR reads a pid written by MarshalCBOR or by Python's Pid.
func (p *Pid) UnmarshalCBOR(b []byte) error {
	var t cbor.RawTag
	if err := decMode.Unmarshal(b, &t); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPid, err)
	}
	if t.Number != TagPid {
		return fmt.Errorf("%w: tag %d", ErrBadPid, t.Number)
	}
	var c pidContent
	if err := decMode.Unmarshal(t.Content, &c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPid, err)
	}
	// The zero Pid (no process) is ["", 0]; any other names a node.
	if (c.Node == "" && c.ID != 0) || strings.ContainsAny(c.Node, " \t\r\n") {
		return fmt.Errorf("%w: bad node %q", ErrBadPid, c.Node)
	}
	p.Node, p.ID = c.Node, c.ID
	return nil
}

// Tuple is a value that Python receives as a tuple.
func Tuple(items ...any) cbor.Tag { return cbor.Tag{Number: TagTuple, Content: items} }

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	// Frames come from other nodes: limits as the bus's own decoder.
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:  136,
		MaxArrayElements: 1 << 24,
		MaxMapPairs:      1 << 24,
		IndefLength:      cbor.IndefLengthForbidden,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}
