"""The airstep compiler: graph model -> Amazon States Language (JSONPath, Standard workflow)."""

from airstep_compiler.compile import CompiledDag, CompileError, CompileOptions, DagSource, compile_dag

__all__ = ["CompileError", "CompileOptions", "CompiledDag", "DagSource", "compile_dag"]
