# The README's test command is `make test`; .ci/run calls exactly that.
.PHONY: test quickstart install
# `make install PREFIX=/opt/keyward`: the C library, header and pkg-config files (scripts/install-c.sh).
PREFIX ?= /usr/local
test:
	bash scripts/test.sh
quickstart:
	cargo run --quiet --example quickstart
install:
	bash scripts/install-c.sh --prefix "$(PREFIX)"
