"""The async sources of every I/O behaviour; ``core/_sync`` is generated from them."""
