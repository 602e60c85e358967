# Thin wrapper around meson so that a fresh Debian 12 machine needs two
# commands: `make run` and `make test`. Each installs what is missing first.
BUILD ?= build
ASAN  ?= build-asan
RUN_DIR ?= run

.PHONY: all deps build asan run test unit bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true

$(ASAN)/build.ninja:
	meson setup $(ASAN) -Dwerror=true -Dbuildtype=debug \
	    -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

asan: deps $(ASAN)/build.ninja
	ninja -C $(ASAN)

# The main job, until the filesystem is mounted by fs/: the core end to end
# without FUSE. A store with four virtual volumes in run/store gets a copy
# of RUN_SOURCE, a snapshot, a change, a sync to tape; the snapshot is read
# back from tape and compared byte for byte, then the store is rebuilt from
# the volumes alone (run/store.recovered) and compared again.
RUN_SOURCE ?= /usr/include
run: build
	rm -rf $(RUN_DIR)/store $(RUN_DIR)/store.recovered
	mkdir -p $(RUN_DIR)
	$(BUILD)/tests/core/tapefs-core-demo $(RUN_DIR)/store $(RUN_SOURCE)

# Every suite: all of them in the normal build, the unit tests again under
# AddressSanitizer and UBSan. Ends with "N passed, N failed".
test: build asan
	tests/run.py $(BUILD) $(ASAN):unit

unit: build
	tests/run.py --suite unit $(BUILD)

bench: build
	tests/bench/run.py $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN) $(RUN_DIR)
