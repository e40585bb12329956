# Hornbeam: one Go binary that hosts Python.
#   make deps   install the Debian packages a fresh machine lacks
#   make build  build bin/hornbeam
#   make test   vet, Go tests, Python tests (installs what it needs)
#   make bench  run bench/ and write docs/BENCHMARKS.md
#   make pgo    profile the node under HTTP load into cmd/hornbeam/default.pgo
#   make demo   build, then run the distributed ML example: a web node and two workers
#   make demo-rpc  the state tour and the RPC patterns on a five-node cluster

GO      ?= go
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/hornbeam

# Debian packages: the CPython to embed, and what the tests and benchmarks import.
APT_PKGS := pkg-config python3-dev python3-numpy python3-pytest python3-cbor2 iproute2 \
            python3-fastapi python3-flask python3-uvloop nats-server python3-django chromium \
            python3-uvicorn python3-httptools python3-wsproto python3-multipart gunicorn

# The peers the benchmarks measure beside hornbeam (make bench only).
BENCH_PKGS := erlang-base python3-distributed wrk python3-hypercorn \
              python3-torch

# CPython is linked into the binary from Debian's static libpython, as python3
# itself is (see pybridge/link_static.go for why), when libpythonX.Y-dev has
# one; else from the shared library. Recursive (=) so that they are computed
# after `deps` has installed pkg-config and the Python headers.
py_pc      = $(shell pkg-config $(1) python3-embed 2>/dev/null)
py_archive = $(wildcard $(call py_pc,--variable=libdir)/libpython$(call py_pc,--modversion).a)
py_syslibs = $(shell $(call py_pc,--variable=exec_prefix)/bin/python$(call py_pc,--modversion) -c \
               'import sysconfig as s; print(*{f: 0 for v in ("LIBS", "SYSLIBS", "MODLIBS") for f in s.get_config_var(v).split()})')
export CGO_CFLAGS  = -O2 -g $(if $(py_archive),$(call py_pc,--cflags))
export CGO_LDFLAGS = $(if $(py_archive),$(py_archive) $(py_syslibs))
export GOFLAGS     = $(if $(py_archive),-tags=pystatic)

.PHONY: deps bench-deps build test test-go test-python fuzz bench pgo demo demo-rpc clean

# apt-install installs the Debian packages in $(1) that are missing.
define apt-install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt-install,$(APT_PKGS))

bench-deps:
	$(call apt-install,$(BENCH_PKGS))

build: deps
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/hornbeam

test: build
	$(GO) vet ./...
	$(MAKE) test-go test-python

# The race detector runs where it is affordable: the pure-Go packages. pybridge
# and the multi-process tests run without it (CPython's threads are not
# instrumented and the detector multiplies their cost), one package at a time
# (-p 1) so that pybridge's soak does not skew the cluster's timing checks.
test-go:
	$(GO) test -race -count=1 ./state/ ./host/ ./bus/ ./process/ ./batch/ ./web/ ./supervisor/ ./sysinfo/ ./metrics/ ./mapper/ ./dashboard/ ./internal/...
	HORNBEAM_BIN=$(abspath $(BIN)) $(GO) test -p 1 -count=1 -timeout 15m ./pybridge/ ./tests/ ./cmd/...
	# A node confined to one CPU runs Go on one P, where wake-ups of Python
	# threads are deferred (pybridge/deferwake.go): the bridge and a set of
	# node tests again there.
	GOMAXPROCS=1 HORNBEAM_BIN=$(abspath $(BIN)) $(GO) test -p 1 -count=1 -timeout 10m ./pybridge/
	GOMAXPROCS=1 HORNBEAM_BIN=$(abspath $(BIN)) $(GO) test -p 1 -count=1 -timeout 10m \
		-run '^(TestWSGI|TestASGI|TestASGIClientDisconnect|TestClusterCallsInEveryDirection|TestCluster10kConcurrentCalls|TestStuckThreadsDoNotHoldTheNode|TestRPCLoadDoesNotStarveHTTP|TestASGIWebSocket|TestWebSocketHostile|TestSlowBodies)$$' ./tests/

test-python:
	$(BIN) run -m pytest -q -p no:cacheprovider tests/python

fuzz: build
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./pybridge/
	$(GO) test -run '^$$' -fuzz FuzzParseHead -fuzztime 60s ./web/

# Run with nothing else on the machine: the peers are measured in the same run.
bench: build bench-deps
	$(GO) run ./bench -out docs/BENCHMARKS.md

# The CPU profile that go build optimises the node with (profile-guided
# optimisation; go build reads cmd/hornbeam/default.pgo by itself): the node
# under the HTTP loads of the per-core benchmark. Run it again after large
# changes to the request path; an old profile still helps what has not changed.
pgo: build bench-deps
	$(GO) run ./bench -pgo cmd/hornbeam/default.pgo

# The seed's distributed ML app: a FastAPI web node and two worker nodes on
# loopback, real requests, every node stopped at the end.
demo: build
	HORNBEAM_BIN=$(BIN) bash examples/distributed_ml/run_demo.sh

# A node's state, then a five-node cluster on loopback running the RPC patterns.
demo-rpc: build
	$(BIN) run examples/state_tour.py
	HORNBEAM_BIN=$(BIN) bash examples/rpc/run_demo.sh

clean:
	rm -rf bin
