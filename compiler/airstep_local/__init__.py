"""The local engine: compiled state machines run on moto's Step Functions, tasks in this process.

Used by `airstep run`, the tests and the benchmarks; never shipped to Lambda.
"""
