# vpc-cni — the two commands a newcomer needs are `make demo` and `make test`.

GO      ?= go
BIN     ?= bin
GOBIN   := $(shell $(GO) env GOPATH)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/vpc-cni/vpc-cni/pkg/version.Version=$(VERSION)

CMDS := $(notdir $(wildcard cmd/*))
# No binary uses grpc's x/net/trace. It links html/template, whose
# reflective method calls make the linker keep every exported method of
# every reachable type (all of the EC2 client's operations, for one):
# without it ipamd is half the size, and its file-backed RSS with it.
TAGS := grpcnotrace
# Static: no dynamic loader or libc mapped beside ipamd, and aws-cni, which
# runs once per pod on the critical path, starts faster.
# pkg/testutil/agentbin and the plugin's tests build the plugin the same way.
BUILD_ENV   := CGO_ENABLED=0
# The plugin never runs a GC cycle (its heap stays far below the first
# target), but Go 1.26's default collector puts mark bits at the end of
# every small-object span, which a fresh process faults in with the span:
# without it an ADD takes ~23 fewer page faults, each costly on a VM.
PLUGIN_ENV  := $(BUILD_ENV) GOEXPERIMENT=nogreenteagc
PLUGIN_TAGS := $(TAGS)
# The plugins kubelet execs once per pod, built with PLUGIN_ENV.
PLUGINS     := $(filter aws-cni egress-cni,$(CMDS))

.PHONY: all build deps test demo bench lint generate clean image demo-k8s

all: build

deps:
	@scripts/install-deps.sh

build:
	@mkdir -p $(BIN)
	$(BUILD_ENV) $(GO) build -trimpath -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(filter-out $(PLUGINS),$(CMDS)))
	$(PLUGIN_ENV) $(GO) build -trimpath -tags $(PLUGIN_TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(PLUGINS))

# Without root, test runs the unit tier alone (scripts/test.sh says so):
# deps would stop it on the first package it may not install.
test:
	@if [ "$$(id -u)" -eq 0 ]; then $(MAKE) --no-print-directory deps; \
	else echo "make test: not root: packages are not installed (make deps as root installs them)" >&2; fi
	@scripts/test.sh

# The targets that need root say so before installing or building anything:
# as prerequisites, deps and build ran first and failed on something else
# (a module cache, bin/) or took minutes before the refusal.
need-root = @[ "$$(id -u)" -eq 0 ] || { echo "make $@: needs root: $(1)" >&2; exit 1; }

demo:
	$(call need-root,it creates network and mount namespaces; the machine's own network namespace is never changed)
	@$(MAKE) --no-print-directory deps build
	@scripts/demo.sh

bench:
	$(call need-root,it creates network and mount namespaces)
	@$(MAKE) --no-print-directory deps build
	@scripts/bench.sh

# The aws-node and init images as OCI archives in $(BIN)/images (buildah, no
# registry): load with `ctr -n k8s.io images import`.
image: deps
	@BIN=$(BIN) scripts/build-image.sh -t $(or $(IMAGE_TAG),dev)

# A local VPC whose nodes run containerd + kubelet with aws-node deployed
# from misc/aws-k8s-cni.yaml and our image.
demo-k8s:
	$(call need-root,network and mount namespaces and containerd)
	@$(MAKE) --no-print-directory deps build
	@scripts/demo-k8s.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

generate: deps
	PATH="$(GOBIN):$$PATH" protoc -I rpc -I /usr/include \
		--go_out=rpc --go_opt=paths=source_relative \
		--go-grpc_out=rpc --go-grpc_opt=paths=source_relative \
		rpc/rpc.proto

clean:
	rm -rf $(BIN)
