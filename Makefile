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

# The main job: until the filesystem exists, a demo that writes a dumpfile
# to a fresh virtual library and prints where its parts went.
run: build
	rm -rf $(RUN_DIR)/demo-library
	$(BUILD)/tests/tape/tapefs-demo $(RUN_DIR)/demo-library

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
