package bus

// The sent window (bytebudget) bounds the bytes of large requests a node has
// sent and not yet heard back about. Routes carry membership and payloads on
// one connection between two servers, so a heartbeat waits behind whatever
// payload bytes are queued ahead of it; keeping that queue to a few payloads
// keeps heartbeats on time however hard Python code casts.

// windowed is the request size from which the window applies: smaller
// requests cannot delay a heartbeat noticeably.
const windowed = 64 << 10
