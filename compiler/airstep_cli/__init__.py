"""The `airstep` command line and the local engine (moto). Never shipped to Lambda."""
