package bus

import (
	"io"
	"log/slog"
	"math/rand"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/nats-io/nats.go"
)

// fuzzTarget is a node whose rpc, sys and heartbeat subjects receive the fuzz
// input straight from a raw NATS client, as a hostile peer would send it.
type fuzzTarget struct {
	node *Bus
	raw  *nats.Conn
}

func newFuzzTarget(tb testing.TB) *fuzzTarget {
	tb.Helper()
	b, err := Start(Config{Name: "fz@127.0.0.1", Cookie: "fuzz", ClusterHost: "127.0.0.1",
		Handler: echoHandler{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	url, token := b.ClientURL()
	raw, err := nats.Connect(url, nats.Token(token), nats.Secure(b.id.config()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(raw.Close)
	return &fuzzTarget{node: b, raw: raw}
}

func (f *fuzzTarget) send(tb testing.TB, data []byte) {
	b := f.node
	f.raw.Publish(b.rpcSubject(b.name), data)
	f.raw.PublishRequest(b.rpcSubject(b.name), "_INBOX.fuzz", data)
	f.raw.Publish(b.hbSubject(), data)
	f.raw.Publish(b.sysSubject(b.name), data)
	f.raw.Publish(b.inbox+".1", data)
}

// alive checks the node still serves a well-formed call.
func (f *fuzzTarget) alive(tb testing.TB) {
	tb.Helper()
	req, _ := encMode.Marshal(&request{Module: "m", Function: "echo", Args: cbor.RawMessage{0x81, 0x01}})
	msg, err := f.raw.Request(f.node.rpcSubject(f.node.name), req, 5*time.Second)
	if err != nil {
		tb.Fatalf("node stopped answering: %v", err)
	}
	if r := decodeReply("fz", msg.Data); r.err != nil || string(r.value) != "\x81\x01" {
		tb.Fatalf("node answers wrongly: %+v", r)
	}
}

func seedEnvelopes() [][]byte {
	var out [][]byte
	for _, v := range []any{
		&request{Module: "m", Function: "echo", Args: cbor.RawMessage{0x80}},
		&request{Module: "m", Function: "sleep", Args: cbor.RawMessage{0x80}, Budget: 1},
		&request{Module: "m", Function: "sleep", Args: cbor.RawMessage{0x80}, Budget: -1 << 62},
		&request{Module: "m", Function: "echo", Args: cbor.RawMessage{0x80}, Budget: 1 << 62},
		&heartbeat{Name: "x@127.0.0.1", Incarnation: 7, Roles: []string{"gpu"}},
		&heartbeat{Name: "fz@127.0.0.1", Incarnation: 1, Leaving: true},
		&reply{Status: statusRemote, Type: "E", Message: "m"},
	} {
		b, _ := encMode.Marshal(v)
		out = append(out, b)
	}
	return append(out, []byte("ping"), []byte("info"), []byte{0x9f}, []byte{0x84, 0x61})
}

// TestFuzzedEnvelopes mutates valid envelopes for a bounded number of rounds;
// the node must keep serving (run FuzzEnvelope for open-ended fuzzing).
func TestFuzzedEnvelopes(t *testing.T) {
	f := newFuzzTarget(t)
	rng := rand.New(rand.NewSource(1))
	seeds := seedEnvelopes()
	for i := range 3000 {
		d := append([]byte(nil), seeds[rng.Intn(len(seeds))]...)
		for range 1 + rng.Intn(4) {
			switch op := rng.Intn(3); {
			case op == 0 && len(d) > 0:
				d[rng.Intn(len(d))] = byte(rng.Intn(256))
			case op == 1:
				d = append(d, byte(rng.Intn(256)))
			case len(d) > 1:
				d = d[:rng.Intn(len(d))]
			}
		}
		f.send(t, d)
		if i%500 == 0 {
			f.alive(t)
		}
	}
	f.alive(t)
	if got := f.node.Nodes(Connected); len(got) > 1 {
		t.Logf("fuzzed heartbeats added members: %v", got)
	}
}

func FuzzEnvelope(fz *testing.F) {
	for _, s := range seedEnvelopes() {
		fz.Add(s)
	}
	f := newFuzzTarget(fz)
	fz.Fuzz(func(t *testing.T, data []byte) {
		f.send(t, data)
		f.alive(t)
	})
}
