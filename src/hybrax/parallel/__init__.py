"""hybrax.parallel"""
