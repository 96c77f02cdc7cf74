"""The airstep compiler: graph model -> Amazon States Language (JSONPath, Standard workflow)."""

from airstep_compiler.compile import CompiledDag, CompileError, CompileOptions, DagSource, compile_dag
from airstep_compiler.model import DagModel

__all__ = ["CompileError", "CompileOptions", "CompiledDag", "DagModel", "DagSource", "compile_dag"]
