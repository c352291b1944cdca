# Thin wrapper around meson. `make run` and `make test` install what is missing first.
BUILD ?= build
CONF ?= conf/meshgate.conf
# Where the packages and static binaries go (docs/packaging.md).
PKG_OUT ?= build-pkg
DEB_OUT ?= $(PKG_OUT)/deb
RPM_OUT ?= $(PKG_OUT)/rpm
ARCH ?= arm64

.PHONY: all deps test-deps build run test clean deb rpm static cross

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The shipped configuration keeps queue events on disk ([queue] store = disk): in $(BUILD)/state
# here, as systemd's StateDirectory= gives the packaged service /var/lib/meshgate.
run: build
	mkdir -p $(BUILD)/state
	STATE_DIRECTORY=$(abspath $(BUILD)/state) ./$(BUILD)/meshgate -c $(CONF)

test: test-deps $(BUILD)/build.ninja
	ninja -C $(BUILD)
	scripts/run-tests.sh $(BUILD)

# Debian package with debhelper, checked by lintian: $(DEB_OUT)/meshgate_<version>_<arch>.deb
deb:
	@scripts/install-deps.sh deb
	OUT=$(abspath $(DEB_OUT)) scripts/build-deb.sh

# RPM with rpmbuild from packaging/rpm/meshgate.spec, checked by rpmlint: $(RPM_OUT)/*.rpm
rpm:
	@scripts/install-deps.sh rpm
	OUT=$(abspath $(RPM_OUT)) scripts/build-rpm.sh

# One statically linked x86_64 binary: $(PKG_OUT)/static/x86_64/meshgate
static:
	@scripts/install-deps.sh static
	OUT=$(abspath $(PKG_OUT))/static scripts/build-static.sh x86_64

# The same for arm: make cross ARCH=arm64 (or armhf): $(PKG_OUT)/static/$(ARCH)/meshgate
cross:
	@scripts/install-deps.sh cross-$(ARCH)
	OUT=$(abspath $(PKG_OUT))/static scripts/build-static.sh $(ARCH)

clean:
	rm -rf $(BUILD) $(PKG_OUT)
