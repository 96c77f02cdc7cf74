"""The amazon provider's operators that airstep compiles to Step Functions service integrations."""
