# Thin wrapper around meson. `make run` and `make test` install what is missing first.
BUILD ?= build
CONF ?= conf/meshgate.conf

.PHONY: all deps test-deps build run test clean

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./$(BUILD)/meshgate -c $(CONF)

test: test-deps $(BUILD)/build.ninja
	ninja -C $(BUILD)
	scripts/run-tests.sh $(BUILD)

clean:
	rm -rf $(BUILD)
