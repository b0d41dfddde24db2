# The README's test command is `make test`; .ci/run calls exactly that.
.PHONY: test quickstart
test:
	bash scripts/test.sh
quickstart:
	cargo run --quiet --example quickstart
