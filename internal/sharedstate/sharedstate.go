// Package sharedstate serves a node's state.Store to the node's worker
// processes over a Unix socket, so that state_* is node-wide when a node runs
// several interpreters (hornbeam start --workers N).
//
// The protocol is a request/response exchange of length-prefixed frames on a
// connection used by one caller at a time; a Client keeps a small pool of
// connections so that concurrent callers do not queue behind each other.
package sharedstate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hornbeam-go/hornbeam/state"
)

// Operations.
const (
	opGet    = 'g'
	opSet    = 's'
	opDelete = 'd'
	opIncr   = 'i'
	opKeys   = 'k'
	// The inference cache: the request's key field is the prefix.
	opCacheGet   = 'G'
	opCachePut   = 'P'
	opCacheStats = 'S'
	opCacheClear = 'C'
)

// Response statuses.
const (
	stOK = iota
	stMissing
	stNotInteger
	stOverflow
	stFull
	stError
)

// MaxFrame bounds one frame (key plus value plus header): a value that fits the
// store's default 1 GiB limit but not here gets a clear error instead of an
// unbounded allocation on either side.
const MaxFrame = 256 << 20

// ErrUnavailable reports that the node's state cannot be reached (the node's
// supervising process is gone).
var ErrUnavailable = errors.New("node-wide state unavailable")

// Serve answers requests on ln from store and cache until ln is closed.
func Serve(ln net.Listener, store *state.Store, cache *state.Cache) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("sharedstate: %w", err)
		}
		go serveConn(c, store, cache)
	}
}

func serveConn(c net.Conn, store *state.Store, cache *state.Cache) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	var buf []byte
	for {
		var err error
		buf, err = readFrame(r, buf)
		if err != nil {
			return
		}
		out := handle(store, cache, buf)
		if err := writeFrame(w, out); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// handle runs one request frame: op, uvarint key length, key, operands.
func handle(store *state.Store, cache *state.Cache, req []byte) []byte {
	if len(req) < 1 {
		return errFrame(stError, "empty request")
	}
	op := req[0]
	klen, n := binary.Uvarint(req[1:])
	if n <= 0 || uint64(len(req)-1-n) < klen {
		return errFrame(stError, "malformed request")
	}
	key := string(req[1+n : 1+n+int(klen)])
	rest := req[1+n+int(klen):]
	switch op {
	case opGet:
		v, ok := store.Get(key)
		if !ok {
			return []byte{stMissing}
		}
		return append([]byte{stOK}, v...)
	case opSet:
		if len(rest) < 8 {
			return errFrame(stError, "malformed set")
		}
		ttl := time.Duration(binary.LittleEndian.Uint64(rest))
		if err := store.Set(key, rest[8:], ttl); err != nil {
			return errFrame(status(err), err.Error())
		}
		return []byte{stOK}
	case opDelete:
		if store.Delete(key) {
			return []byte{stOK}
		}
		return []byte{stMissing}
	case opIncr:
		if len(rest) < 8 {
			return errFrame(stError, "malformed incr")
		}
		v, err := store.Incr(key, int64(binary.LittleEndian.Uint64(rest)))
		if err != nil {
			return errFrame(status(err), err.Error())
		}
		return binary.LittleEndian.AppendUint64([]byte{stOK}, uint64(v))
	case opKeys:
		out := []byte{stOK}
		for _, k := range store.Keys(key) {
			out = binary.AppendUvarint(out, uint64(len(k)))
			out = append(out, k...)
			if len(out) > MaxFrame-16 {
				return errFrame(stError, "the key list is over the limit between a node's workers; use a longer prefix")
			}
		}
		return out
	case opCacheGet:
		v, ok := cache.Get(key, string(rest))
		if !ok {
			return []byte{stMissing}
		}
		return append([]byte{stOK}, v...)
	case opCachePut:
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n+8 {
			return errFrame(stError, "malformed cache put")
		}
		ck := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		ttl := time.Duration(binary.LittleEndian.Uint64(rest))
		if err := cache.Put(key, ck, rest[8:], ttl); err != nil {
			return errFrame(status(err), err.Error())
		}
		return []byte{stOK}
	case opCacheStats:
		b, err := cbor.Marshal(cache.Stats())
		if err != nil {
			return errFrame(stError, err.Error())
		}
		return append([]byte{stOK}, b...)
	case opCacheClear:
		cache.Clear(key)
		return []byte{stOK}
	default:
		return errFrame(stError, fmt.Sprintf("unknown operation %q", op))
	}
}

func status(err error) byte {
	switch {
	case errors.Is(err, state.ErrNotInteger):
		return stNotInteger
	case errors.Is(err, state.ErrOverflow):
		return stOverflow
	case errors.Is(err, state.ErrFull):
		return stFull
	default:
		return stError
	}
}

func errFrame(st byte, msg string) []byte { return append([]byte{st}, msg...) }

func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return buf, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return buf, fmt.Errorf("sharedstate: frame of %d bytes is over the %d-byte limit", n, MaxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func writeFrame(w *bufio.Writer, data []byte) error {
	var hdr [4]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(data)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// Client reaches a node's state from a worker process. It is safe for
// concurrent use.
type Client struct {
	// Timeout bounds each request's round trip (a stopped or hung node);
	// 0 = DefaultTimeout.
	Timeout time.Duration
	path    string
	mu      sync.Mutex
	idle    []*conn // at most maxIdle
}

const maxIdle = 16

// DefaultTimeout is Client.Timeout when it is 0.
const DefaultTimeout = 5 * time.Second

// Blocking reports that the client's operations wait on another process, so
// that its caller lets other threads run meanwhile (pybridge releases the GIL).
func (c *Client) Blocking() bool { return true }

type conn struct {
	c   net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	buf []byte
}

// Dial makes a client of the socket at path and checks that it answers.
func Dial(path string) (*Client, error) {
	c := &Client{path: path}
	cn, err := c.get()
	if err != nil {
		return nil, err
	}
	c.put(cn)
	return c, nil
}

func (c *Client) get() (*conn, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		cn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	nc, err := net.DialTimeout("unix", c.path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return &conn{c: nc, r: bufio.NewReaderSize(nc, 16<<10), w: bufio.NewWriterSize(nc, 16<<10)}, nil
}

func (c *Client) put(cn *conn) {
	c.mu.Lock()
	if len(c.idle) < maxIdle {
		c.idle = append(c.idle, cn)
		cn = nil
	}
	c.mu.Unlock()
	if cn != nil {
		cn.c.Close()
	}
}

// Close closes the idle connections.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cn := range idle {
		cn.c.Close()
	}
	return nil
}

// do sends one request and returns the response's status and body; the body
// is valid until the next call with the same connection, so callers copy.
func (c *Client) do(op byte, key string, operand []byte, value []byte) (byte, []byte, error) {
	size := 1 + binary.MaxVarintLen64 + len(key) + len(operand) + len(value)
	if size > MaxFrame {
		return 0, nil, fmt.Errorf("%w: the value is %d bytes, over the %d-byte limit between a node's workers", state.ErrFull, size, MaxFrame)
	}
	cn, err := c.get()
	if err != nil {
		return 0, nil, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// A connection whose exchange timed out is closed below, never reused
	// out of step.
	cn.c.SetDeadline(time.Now().Add(timeout))
	head := binary.AppendUvarint([]byte{op}, uint64(len(key)))
	var hdr [4]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(head)+len(key)+len(operand)+len(value)))
	cn.w.Write(hdr[:])
	cn.w.Write(head)
	cn.w.WriteString(key)
	cn.w.Write(operand)
	cn.w.Write(value)
	if err := cn.w.Flush(); err != nil {
		cn.c.Close()
		return 0, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	cn.buf, err = readFrame(cn.r, cn.buf)
	if err != nil || len(cn.buf) == 0 {
		cn.c.Close()
		return 0, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	st, body := cn.buf[0], cn.buf[1:]
	switch st {
	case stOK, stMissing:
	case stNotInteger:
		err = fmt.Errorf("%w (%s)", state.ErrNotInteger, body)
	case stOverflow:
		err = fmt.Errorf("%w (%s)", state.ErrOverflow, body)
	case stFull:
		err = fmt.Errorf("%w (%s)", state.ErrFull, body)
	default:
		err = fmt.Errorf("sharedstate: %s", body)
	}
	if err != nil {
		body = nil
	} else {
		body = append([]byte(nil), body...)
	}
	c.put(cn)
	return st, body, err
}

// Get returns key's value.
func (c *Client) Get(key string) ([]byte, bool, error) {
	st, v, err := c.do(opGet, key, nil, nil)
	return v, err == nil && st == stOK, err
}

// Set stores value under key; ttl <= 0 means no expiry.
func (c *Client) Set(key string, value []byte, ttl time.Duration) error {
	var op [8]byte
	binary.LittleEndian.PutUint64(op[:], uint64(ttl))
	_, _, err := c.do(opSet, key, op[:], value)
	return err
}

// Delete removes key and reports whether it existed.
func (c *Client) Delete(key string) (bool, error) {
	st, _, err := c.do(opDelete, key, nil, nil)
	return err == nil && st == stOK, err
}

// Incr adds delta to the integer under key and returns the new value.
func (c *Client) Incr(key string, delta int64) (int64, error) {
	var op [8]byte
	binary.LittleEndian.PutUint64(op[:], uint64(delta))
	_, v, err := c.do(opIncr, key, op[:], nil)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, errors.New("sharedstate: malformed incr reply")
	}
	return int64(binary.LittleEndian.Uint64(v)), nil
}

// Keys returns the keys that start with prefix.
func (c *Client) Keys(prefix string) ([]string, error) {
	_, v, err := c.do(opKeys, prefix, nil, nil)
	if err != nil {
		return nil, err
	}
	var keys []string
	for len(v) > 0 {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return nil, errors.New("sharedstate: malformed keys reply")
		}
		keys = append(keys, string(v[k:k+int(n)]))
		v = v[k+int(n):]
	}
	return keys, nil
}

// CacheGet returns the inference cache's value under prefix and key.
func (c *Client) CacheGet(prefix, key string) ([]byte, bool, error) {
	st, v, err := c.do(opCacheGet, prefix, []byte(key), nil)
	return v, err == nil && st == stOK, err
}

// CachePut caches value under prefix and key; ttl <= 0: until evicted.
func (c *Client) CachePut(prefix, key string, value []byte, ttl time.Duration) error {
	op := binary.AppendUvarint(nil, uint64(len(key)))
	op = append(op, key...)
	op = binary.LittleEndian.AppendUint64(op, uint64(ttl))
	_, _, err := c.do(opCachePut, prefix, op, value)
	return err
}

// CacheStats returns the inference cache's counters.
func (c *Client) CacheStats() (state.CacheStats, error) {
	var out state.CacheStats
	_, v, err := c.do(opCacheStats, "", nil, nil)
	if err == nil {
		err = cbor.Unmarshal(v, &out)
	}
	return out, err
}

// CacheClear drops prefix's entries ("" = all).
func (c *Client) CacheClear(prefix string) error {
	_, _, err := c.do(opCacheClear, prefix, nil, nil)
	return err
}
