"""Runs compiled state machines on moto's Step Functions interpreter, tasks in this process."""
