"""Processor implementations of the DSL operators: pure logic, no I/O."""
