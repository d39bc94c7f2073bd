# One-word tasks; each is the README's documented script.
.PHONY: run test bench bench-fleet
run:
	./scripts/run
test:
	./scripts/test
bench:
	./scripts/bench
bench-fleet:
	./scripts/bench fleet
