# stacksnap. `make local` runs the whole system on this machine; `make test`
# runs every test. Both install what they need (Go modules, the pinned Node
# tools) on first use. See README.md.

GO ?= go
NODE_TOOLS := node/node_modules/.package-lock.json
# sam build passes ARTIFACTS_DIR; by hand the binaries land in bin/<LogicalId>.
ARTIFACTS_DIR ?= bin/$(patsubst build-%,%,$@)
LAMBDA_ENV := CGO_ENABLED=0 GOOS=linux GOARCH=arm64
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
LOCAL_FLAGS ?=

.PHONY: build build-ApiFunction build-WorkflowFunction build-EventsFunction test unit lint bench local deploy clean tools

build: build-ApiFunction build-WorkflowFunction build-EventsFunction

# One target per function of template.yaml (BuildMethod: makefile).
build-ApiFunction:
	mkdir -p $(ARTIFACTS_DIR)
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/api

build-WorkflowFunction:
	mkdir -p $(ARTIFACTS_DIR)
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/workflow

build-EventsFunction:
	mkdir -p $(ARTIFACTS_DIR)
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/events

# The Node tools (dynalite, aws-local-stepfunctions, asl-validator), pinned by the lockfile.
tools: $(NODE_TOOLS)
$(NODE_TOOLS): node/package.json node/package-lock.json
	cd node && npm ci --no-audit --no-fund
	touch $@

test: tools lint
	$(GO) test -count=1 -timeout 9m ./...

STATICCHECK_VERSION := v0.8.2

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	node/node_modules/.bin/asl-validator --json-path statemachine/snapshot.asl.json

# The Lambda runtime interface emulator runs the bootstraps for the cold-start benchmark.
RIE := bin/aws-lambda-rie
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
$(RIE):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

bench: tools $(RIE)
	STACKSNAP_RIE=$(CURDIR)/$(RIE) $(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

# The API on a loopback port, DynamoDB (dynalite), Step Functions
# (aws-local-stepfunctions) and a simulated cloud loaded with local/stacks.
local: tools
	$(GO) run ./local $(LOCAL_FLAGS)

deploy: build
	sam build && sam deploy --guided

clean:
	rm -rf bin .aws-sam .local
